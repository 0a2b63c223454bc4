import Foundation

/// The raw disk image: created at its final size with `ftruncate`, so every byte nobody
/// writes stays a hole on the host filesystem. Writers only write used ranges (GPT tables,
/// filesystem blocks, raw partition files) and never write zeros for holes, so no
/// hole-punching pass is needed; `copyFile` also skips all-zero 4 KiB blocks of its input.
public enum RawImageOutput {
  /// Creates `path` (via a temporary name in the same directory) as an all-hole file of
  /// `size` bytes. Write into `file.fd`, then call `file.commit()`.
  public static func create(path: String, size: UInt64) throws -> AtomicOutputFile {
    try AtomicOutputFile(path: path, size: size)
  }

  /// Copies the file at `source` into the image at byte `offset`, in 4 MiB chunks with
  /// `pwrite`. Fails if the file is larger than `capacity` (the partition size). All-zero
  /// 4 KiB blocks are not written (they stay holes and read as zeros). Returns the number
  /// of bytes of the source; the caller marks `[offset, offset + capacity)` used.
  @discardableResult
  public static func copyFile(
    _ source: String, into fd: Int32, imagePath: String, offset: UInt64, capacity: UInt64,
    label: String
  ) throws -> UInt64 {
    let input = try FileIO.open(source, flags: O_RDONLY)
    defer { close(input) }
    let size = try FileIO.size(input, path: source)
    guard size <= capacity else {
      throw DiskError.partitionDoesNotFit(label: label, needed: size, available: capacity)
    }
    let buffer = FileIO.allocate(FileIO.chunkSize)
    defer { buffer.deallocate() }
    var position: UInt64 = 0
    while position < size {
      let n = try FileIO.read(input, into: buffer, at: position, path: source)
      if n == 0 { break }
      try writeSkippingZeroBlocks(
        UnsafeRawBufferPointer(rebasing: buffer[0..<n]), to: fd, path: imagePath,
        at: offset + position)
      position += UInt64(n)
    }
    guard position == size else {
      throw DiskError.invalidInput(path: source, reason: "file shrank while being copied")
    }
    return size
  }

  /// Writes `data` at `offset`, leaving out runs of all-zero 4 KiB blocks.
  static func writeSkippingZeroBlocks(
    _ data: UnsafeRawBufferPointer, to fd: Int32, path: String, at offset: UInt64
  )
    throws
  {
    guard let base = data.baseAddress else { return }
    let block = 4096
    var runStart: Int? = nil
    var i = 0
    while i < data.count {
      let length = min(block, data.count - i)
      let zero = isZero(base + i, length)
      if zero, let start = runStart {
        try FileIO.write(
          fd, UnsafeRawBufferPointer(start: base + start, count: i - start),
          at: offset + UInt64(start), path: path)
        runStart = nil
      } else if !zero && runStart == nil {
        runStart = i
      }
      i += length
    }
    if let start = runStart {
      try FileIO.write(
        fd, UnsafeRawBufferPointer(start: base + start, count: data.count - start),
        at: offset + UInt64(start), path: path)
    }
  }

  /// True if `count` bytes at `pointer` are all zero (memcmp against itself shifted).
  static func isZero(_ pointer: UnsafeRawPointer, _ count: Int) -> Bool {
    guard count > 0 else { return true }
    if pointer.load(as: UInt8.self) != 0 { return false }
    return count == 1 || memcmp(pointer, pointer + 1, count - 1) == 0
  }

  /// Fills `buffer` with the image bytes at `offset`, reading only the ranges the map marks
  /// used; holes (and bytes past the end of the file) are zeros. With `map` nil, reads all.
  static func readMapped(
    _ fd: Int32, path: String, map: AllocationMap?, offset: UInt64,
    into buffer: UnsafeMutableRawBufferPointer
  ) throws {
    guard let base = buffer.baseAddress else { return }
    guard let map else {
      let n = try FileIO.read(fd, into: buffer, at: offset, path: path)
      if n < buffer.count { memset(base + n, 0, buffer.count - n) }
      return
    }
    var cursor = 0
    for extent in map.extents(inRange: offset, length: UInt64(buffer.count)) {
      let start = Int(extent.offset - offset)
      if start > cursor { memset(base + cursor, 0, start - cursor) }
      let part = UnsafeMutableRawBufferPointer(start: base + start, count: Int(extent.length))
      let n = try FileIO.read(fd, into: part, at: extent.offset, path: path)
      if n < part.count { memset(base + start + n, 0, part.count - n) }
      cursor = start + Int(extent.length)
    }
    if cursor < buffer.count { memset(base + cursor, 0, buffer.count - cursor) }
  }
}

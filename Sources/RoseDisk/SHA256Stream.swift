import CNettle
import CRoseSystem
import Foundation

/// Incremental SHA-256, nettle's (used by bmap and the manifest; see CNettle's shim.h).
public final class SHA256Stream {
  private var context = sha256_ctx()

  /// Starts a new digest.
  public init() { nettle_sha256_init(&context) }

  /// Feeds bytes.
  public func update(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
    nettle_sha256_update(&context, bytes.count, base)
  }

  /// Feeds bytes.
  public func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  /// Finishes and returns the 32-byte digest. The stream is reset and can be reused.
  public func finalize() -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    // nettle's digest also starts the context over.
    digest.withUnsafeMutableBufferPointer { nettle_sha256_digest(&context, 32, $0.baseAddress) }
    return digest
  }

  /// Finishes and returns the lowercase hex digest.
  public func finalizeHex() -> String { SHA256Stream.hex(finalize()) }

  /// One-shot digest of a byte buffer.
  public static func digest(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    let stream = SHA256Stream()
    stream.update(bytes)
    return stream.finalize()
  }

  /// One-shot digest of a byte array.
  public static func digest(_ bytes: [UInt8]) -> [UInt8] {
    bytes.withUnsafeBytes { digest($0) }
  }

  /// Lowercase hex string of bytes.
  public static func hex(_ bytes: [UInt8]) -> String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// SHA-256 (hex) of a whole file, read in 4 MiB chunks. Holes (found with SEEK_DATA/SEEK_HOLE) are
  /// hashed from a zero buffer instead of being read, so a sparse 8 GiB disk image costs the hashing
  /// of its zeros but not the kernel's zero-filling of every page.
  public static func file(path: String) throws -> String {
    let fd = try FileIO.open(path, flags: O_RDONLY)
    defer { close(fd) }
    let size = try FileIO.size(path: path)
    let stream = SHA256Stream()
    let buffer = FileIO.allocate(FileIO.chunkSize)
    defer { buffer.deallocate() }
    let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: FileIO.chunkSize, alignment: 64)
    zeros.initializeMemory(as: UInt8.self, repeating: 0)
    defer { zeros.deallocate() }
    func hashZeros(_ n: UInt64) {
      var left = n
      while left > 0 {
        let k = Int(min(left, UInt64(zeros.count)))
        stream.update(UnsafeRawBufferPointer(rebasing: zeros[0..<k]))
        left -= UInt64(k)
      }
    }
    var offset: UInt64 = 0
    while offset < size {
      let found = lseek(fd, off_t(offset), rose_seek_data)
      let dataStart = found < 0 ? size : min(UInt64(found), size)  // ENXIO: only a hole is left
      hashZeros(dataStart - offset)
      offset = dataStart
      guard offset < size else { break }
      let holeStart = min(
        UInt64(max(lseek(fd, off_t(offset), rose_seek_hole), off_t(offset + 1))), size)
      while offset < holeStart {
        let want = Int(min(UInt64(buffer.count), holeStart - offset))
        let n = try FileIO.read(
          fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: offset,
          path: path)
        if n == 0 { break }
        stream.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        offset += UInt64(n)
      }
      if offset < holeStart { break }
    }
    return stream.finalizeHex()
  }
}

extension SHA256Stream {
  /// SHA-256 (hex) of the bytes of `ranges` of a file, concatenated in the given order; bytes past
  /// the end of the file are not hashed (a range is cut at EOF, as bmap's checksums are).
  public static func ranges(path: String, _ ranges: [AllocationMap.Extent]) throws -> String {
    let fd = try FileIO.open(path, flags: O_RDONLY)
    defer { close(fd) }
    let size = try FileIO.size(fd, path: path)
    let stream = SHA256Stream()
    let buffer = FileIO.allocate(FileIO.chunkSize)
    defer { buffer.deallocate() }
    for range in ranges where range.offset < size {
      var offset = range.offset
      let end = min(range.end, size)
      while offset < end {
        let want = Int(min(UInt64(buffer.count), end - offset))
        let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want])
        try FileIO.readExactly(fd, into: chunk, at: offset, path: path)
        stream.update(UnsafeRawBufferPointer(chunk))
        offset += UInt64(want)
      }
    }
    return stream.finalizeHex()
  }
}

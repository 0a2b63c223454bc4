#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A volume inside a file: the builder writes blocks at `baseOffset + block * 4096`, so the same code
/// writes a bare image or a partition of a disk image.
public final class ImageFile {
  public let fd: Int32
  public let path: String
  public let baseOffset: UInt64
  /// Bytes of the container from `baseOffset` (a partition's size), when the volume lives in a part
  /// of the file; nil: the container runs to the end of the file. Reads past it fail, and a volume
  /// larger than its container is refused by the reader and fsck (FORMAT.md section 2).
  public let length: UInt64?
  private let ownsDescriptor: Bool

  public init(fd: Int32, path: String, baseOffset: UInt64 = 0, length: UInt64? = nil) {
    self.fd = fd
    self.path = path
    self.baseOffset = baseOffset
    self.length = length
    ownsDescriptor = false
  }

  /// Opens an existing image read-only (reader, fsck) or read-write.
  public init(
    openPath path: String, writable: Bool = false, baseOffset: UInt64 = 0, length: UInt64? = nil
  ) throws {
    let fd = open(path, writable ? O_RDWR : O_RDONLY)
    guard fd >= 0 else { throw RoseFSError.io(path: path, operation: "open", errno: errno) }
    self.fd = fd
    self.path = path
    self.baseOffset = baseOffset
    self.length = length
    ownsDescriptor = true
  }

  /// Bytes available to the volume: the container's length, cut to what the file holds.
  public var containerSize: UInt64 {
    let inFile = fileSize > baseOffset ? fileSize - baseOffset : 0
    return length.map { min($0, inFile) } ?? inFile
  }

  /// Whether the RoseFS magic "ROSE" is at byte 1024 (superblock copy 0) or, when copy 0 is
  /// damaged, at byte 4096 + 1024 (copy 1) of the volume (FORMAT.md section 2).
  public func hasRoseFSMagic() -> Bool {
    RosePartitionType.magicOffsets.contains { offset in
      guard let b = try? read(count: 4, atByte: offset) else { return false }
      return ByteReader(b).u32(0) == Magic.superblock
    }
  }

  deinit { if ownsDescriptor { close(fd) } }

  public func write(_ bytes: UnsafeRawBufferPointer, atByte offset: UInt64) throws {
    var done = 0
    while done < bytes.count {
      let n = pwrite(
        fd, bytes.baseAddress! + done, bytes.count - done, off_t(baseOffset + offset) + off_t(done))
      if n < 0 {
        if errno == EINTR { continue }
        throw RoseFSError.io(path: path, operation: "write", errno: errno)
      }
      done += n
    }
  }

  public func write(_ bytes: [UInt8], atByte offset: UInt64) throws {
    try bytes.withUnsafeBytes { try write($0, atByte: offset) }
  }

  /// Reads exactly `buffer.count` bytes; bytes past the end of the file read as zero, bytes past
  /// the end of the container (`length`) are an error.
  public func read(into buffer: UnsafeMutableRawBufferPointer, atByte offset: UInt64) throws {
    if let length, offset > length || UInt64(buffer.count) > length - offset {
      throw RoseFSError.corrupt(
        "\(path): read of \(buffer.count) bytes at byte \(offset) of the volume goes past the end of its container (\(length) bytes)"
      )
    }
    var done = 0
    while done < buffer.count {
      let n = pread(
        fd, buffer.baseAddress! + done, buffer.count - done,
        off_t(baseOffset + offset) + off_t(done))
      if n < 0 {
        if errno == EINTR { continue }
        throw RoseFSError.io(path: path, operation: "read", errno: errno)
      }
      if n == 0 {
        (buffer.baseAddress! + done).initializeMemory(
          as: UInt8.self, repeating: 0, count: buffer.count - done)
        return
      }
      done += n
    }
  }

  public func readBlock(_ block: UInt32) throws -> [UInt8] {
    var b = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    try b.withUnsafeMutableBytes {
      try read(into: $0, atByte: UInt64(block) * UInt64(RoseLayout.blockSize))
    }
    return b
  }

  public func read(count: Int, atByte offset: UInt64) throws -> [UInt8] {
    var b = [UInt8](repeating: 0, count: count)
    try b.withUnsafeMutableBytes { try read(into: $0, atByte: offset) }
    return b
  }

  public var fileSize: UInt64 {
    var st = stat()
    guard fstat(fd, &st) == 0 else { return 0 }
    return UInt64(st.st_size)
  }
}

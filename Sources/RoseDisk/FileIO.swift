import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Thin, error-checked wrappers over POSIX file calls (pread/pwrite loops, sizes).
enum FileIO {
  static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
    let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
    if fd < 0 { throw DiskError.io(path: path, operation: "open", code: errno) }
    return fd
  }

  /// `value` as an `off_t`, or EFBIG naming the file: a size or offset from a recipe or an image can
  /// be any 64-bit number, and `off_t(value)` would trap at 2^63.
  static func fileOffset(_ value: UInt64, plus extra: Int = 0, path: String, operation: String)
    throws -> off_t
  {
    let (sum, overflow) = value.addingReportingOverflow(UInt64(extra))
    guard !overflow, let v = off_t(exactly: sum) else {
      throw DiskError.io(path: path, operation: "\(operation) at byte \(value)", code: EFBIG)
    }
    return v
  }

  /// Reads until `buffer` is full or end of file; returns the number of bytes read.
  static func read(
    _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, path: String
  ) throws -> Int {
    guard let base = buffer.baseAddress else { return 0 }
    var done = 0
    while done < buffer.count {
      let at = try fileOffset(offset, plus: done, path: path, operation: "read")
      let n = pread(fd, base + done, buffer.count - done, at)
      if n < 0 {
        if errno == EINTR { continue }
        throw DiskError.io(path: path, operation: "read at offset \(at)", code: errno)
      }
      if n == 0 { break }
      done += n
    }
    return done
  }

  /// Reads exactly `buffer.count` bytes or throws.
  static func readExactly(
    _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, path: String
  ) throws {
    let n = try read(fd, into: buffer, at: offset, path: path)
    if n != buffer.count {
      throw DiskError.invalidInput(
        path: path,
        reason:
          "file ends at \(offset + UInt64(n)) but \(buffer.count) bytes are needed at \(offset)")
    }
  }

  static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: UInt64, path: String)
    throws
  {
    guard let base = buffer.baseAddress else { return }
    var done = 0
    while done < buffer.count {
      let at = try fileOffset(offset, plus: done, path: path, operation: "write")
      let n = pwrite(fd, base + done, buffer.count - done, at)
      if n < 0 {
        if errno == EINTR { continue }
        throw DiskError.io(path: path, operation: "write at offset \(at)", code: errno)
      }
      done += n
    }
  }

  static func write(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, path: String) throws {
    try bytes.withUnsafeBytes { try write(fd, $0, at: offset, path: path) }
  }

  static func size(_ fd: Int32, path: String) throws -> UInt64 {
    var st = stat()
    if fstat(fd, &st) != 0 { throw DiskError.io(path: path, operation: "stat", code: errno) }
    return UInt64(clamping: st.st_size)
  }

  static func size(path: String) throws -> UInt64 {
    var st = stat()
    if stat(path, &st) != 0 { throw DiskError.io(path: path, operation: "stat", code: errno) }
    return UInt64(clamping: st.st_size)
  }

  static func truncate(_ fd: Int32, size: UInt64, path: String) throws {
    let length = try fileOffset(size, path: path, operation: "truncate")
    if ftruncate(fd, length) != 0 {
      throw DiskError.io(path: path, operation: "truncate to \(size) bytes", code: errno)
    }
  }

  static func allocate(_ count: Int) -> UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
  }

  /// Size of the I/O buffers used on hot paths.
  static let chunkSize = 4 << 20
}

/// A file written under a temporary name in the destination directory and renamed into
/// place by `commit()`. If it is never committed, the temporary file is removed.
public final class AtomicOutputFile {
  /// The final path.
  public let path: String
  /// The temporary path that receives the data until `commit()`.
  public let temporaryPath: String
  /// Open read-write descriptor of the temporary file (valid until commit/discard).
  public private(set) var fd: Int32
  private var finished = false

  /// Creates the temporary file; with `size`, it is extended with `ftruncate` (all holes).
  public init(path: String, size: UInt64? = nil) throws {
    self.path = path
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    let token = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    temporaryPath = directory + "/." + url.lastPathComponent + ".tmp-" + token
    fd = try FileIO.open(temporaryPath, flags: O_RDWR | O_CREAT | O_EXCL | O_TRUNC)
    if let size {
      // Named by the final path: the temporary name means nothing to the user.
      do { try FileIO.truncate(fd, size: size, path: path) } catch {
        discard()
        throw error
      }
    }
  }

  /// Closes the file and renames it to `path`.
  public func commit() throws {
    guard !finished else { return }
    finished = true
    let closeResult = close(fd)
    fd = -1
    if closeResult != 0 {
      let code = errno
      unlink(temporaryPath)
      throw DiskError.io(path: temporaryPath, operation: "close", code: code)
    }
    if rename(temporaryPath, path) != 0 {
      let code = errno
      unlink(temporaryPath)
      throw DiskError.io(path: path, operation: "rename from \(temporaryPath)", code: code)
    }
  }

  /// Closes and deletes the temporary file.
  public func discard() {
    guard !finished else { return }
    finished = true
    close(fd)
    fd = -1
    unlink(temporaryPath)
  }

  deinit { discard() }
}

/// Sequential writer with a large buffer, used by the streaming output formats.
final class BufferedWriter {
  let fd: Int32
  let path: String
  private(set) var offset: UInt64
  private var buffer: UnsafeMutableRawBufferPointer
  private var used = 0

  init(fd: Int32, path: String, offset: UInt64 = 0, capacity: Int = FileIO.chunkSize) {
    self.fd = fd
    self.path = path
    self.offset = offset
    buffer = FileIO.allocate(capacity)
  }

  deinit { buffer.deallocate() }

  var position: UInt64 { offset + UInt64(used) }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    if bytes.count > buffer.count - used { try flush() }
    if bytes.count >= buffer.count {
      try FileIO.write(fd, bytes, at: offset, path: path)
      offset += UInt64(bytes.count)
      return
    }
    if let src = bytes.baseAddress, let dst = buffer.baseAddress {
      (dst + used).copyMemory(from: src, byteCount: bytes.count)
    }
    used += bytes.count
  }

  func write(_ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try write($0) }
  }

  func flush() throws {
    guard used > 0 else { return }
    try FileIO.write(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<used]), at: offset, path: path)
    offset += UInt64(used)
    used = 0
  }
}

extension Array where Element == UInt8 {
  mutating func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
    withUnsafeMutableBytes {
      $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
  }

  func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
    withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
  }
}

func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64? {
  let remainder = value % alignment
  if remainder == 0 { return value }
  let (sum, overflow) = value.addingReportingOverflow(alignment - remainder)
  return overflow ? nil : sum
}

func alignDown(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
  value - value % alignment
}

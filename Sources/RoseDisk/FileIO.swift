import Foundation
import SystemPackage

/// Error-checked file calls on swift-system's `FileDescriptor`: it retries EINTR and reports
/// `Errno`; this adds the short-read/short-write loops, the offsets a 64-bit size from a recipe
/// can overflow, and the one error every failure becomes, `DiskError.io` naming the path and
/// keeping errno.
enum FileIO {
  /// `flags` as `open(2)` takes them (`O_RDONLY`, `O_RDWR | O_CREAT | ...`); `O_CLOEXEC` is added.
  static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
    do {
      return try FileDescriptor.open(
        FilePath(path), FileDescriptor.AccessMode(rawValue: flags & O_ACCMODE),
        options: FileDescriptor.OpenOptions(rawValue: (flags & ~O_ACCMODE) | O_CLOEXEC),
        permissions: FilePermissions(rawValue: mode)
      ).rawValue
    } catch {
      throw ioError(error, path: path, operation: "open")
    }
  }

  /// `error` (an `Errno` from swift-system) as the one I/O error of RoseDisk.
  static func ioError(_ error: any Error, path: String, operation: String) -> DiskError {
    DiskError.io(path: path, operation: operation, code: (error as? Errno)?.rawValue ?? EIO)
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
    let file = FileDescriptor(rawValue: fd)
    var done = 0
    while done < buffer.count {
      let at = try fileOffset(offset, plus: done, path: path, operation: "read")
      let n: Int
      do {
        n = try file.read(
          fromAbsoluteOffset: Int64(at),
          into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
      } catch {
        throw ioError(error, path: path, operation: "read at offset \(at)")
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
    guard !buffer.isEmpty else { return }
    // The last byte's offset must fit too: the write would otherwise run past 2^63.
    _ = try fileOffset(offset, plus: buffer.count - 1, path: path, operation: "write")
    let at = try fileOffset(offset, path: path, operation: "write")
    do {
      try FileDescriptor(rawValue: fd).writeAll(toAbsoluteOffset: Int64(at), buffer)
    } catch {
      throw ioError(error, path: path, operation: "write at offset \(at)")
    }
  }

  static func write(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, path: String) throws {
    try bytes.withUnsafeBytes { try write(fd, $0, at: offset, path: path) }
  }

  static func size(_ fd: Int32, path: String) throws -> UInt64 {
    do {
      return UInt64(clamping: try FileDescriptor(rawValue: fd).stat().size)
    } catch {
      throw ioError(error, path: path, operation: "stat")
    }
  }

  static func size(path: String) throws -> UInt64 {
    do {
      return UInt64(clamping: try FilePath(path).stat().size)
    } catch {
      throw ioError(error, path: path, operation: "stat")
    }
  }

  static func truncate(_ fd: Int32, size: UInt64, path: String) throws {
    let length = try fileOffset(size, path: path, operation: "truncate")
    do {
      try FileDescriptor(rawValue: fd).resize(to: Int64(length))
    } catch {
      throw ioError(error, path: path, operation: "truncate to \(size) bytes")
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

  /// The temporary name of `path` with `suffix`: `DIR/.NAME.tmp-SUFFIX`.
  public static func temporaryPath(of path: String, suffix: String) -> String {
    let url = URL(fileURLWithPath: path)
    return url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".tmp-" + suffix
  }

  /// Creates the temporary file; with `size`, it is extended with `ftruncate` (all holes). The
  /// temporary name ends in `suffix` (a caller that cleans up after dead processes passes its pid),
  /// or in a random token.
  public init(path: String, size: UInt64? = nil, temporarySuffix suffix: String? = nil) throws {
    self.path = path
    let token = suffix ?? String(UInt64.random(in: 0...UInt64.max), radix: 36)
    temporaryPath = Self.temporaryPath(of: path, suffix: token)
    do {
      fd = try FileIO.open(temporaryPath, flags: O_RDWR | O_CREAT | O_EXCL | O_TRUNC)
    } catch DiskError.io(_, _, let code) {
      // Named by the final path: the temporary name means nothing to the user.
      throw DiskError.io(path: path, operation: "create", code: code)
    }
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

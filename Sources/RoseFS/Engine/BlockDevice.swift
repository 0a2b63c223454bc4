import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Whole 4096-byte blocks of one RoseFS volume, addressed from the volume's first block. The engine
/// reads and writes nothing else. `flush()` is a write barrier: every write issued before it is durable
/// before any write issued after it.
public protocol BlockDevice: AnyObject {
  /// Blocks in the volume.
  var blockCount: UInt64 { get }
  func readBlock(_ address: UInt32) throws(EngineError) -> [UInt8]
  /// `bytes` is exactly one block.
  func writeBlock(_ address: UInt32, _ bytes: [UInt8]) throws(EngineError)
  func flush() throws(EngineError)
  /// How many times each block was written through this device (the write-heat benchmark).
  var writeCounts: [UInt32: UInt64] { get }
}

/// A volume in a file: a bare image (`byteOffset` 0) or a partition inside a disk image.
public final class FileBlockDevice: BlockDevice, @unchecked Sendable {
  public let path: String
  public let byteOffset: UInt64
  public let blockCount: UInt64
  public let writable: Bool
  private let fd: Int32
  private let lock = NSLock()
  private var counts: [UInt32: UInt64] = [:]

  /// `blockCount` nil: the file's size from `byteOffset` on, in whole blocks.
  public init(path: String, byteOffset: UInt64 = 0, blockCount: UInt64? = nil, writable: Bool)
    throws(EngineError)
  {
    let fd = open(path, writable ? O_RDWR : O_RDONLY)
    guard fd >= 0 else { throw EngineError.io("cannot open \(path)", errno: errno) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
      let e = errno
      close(fd)
      throw EngineError.io("cannot stat \(path)", errno: e)
    }
    let size = UInt64(st.st_size)
    let available = size > byteOffset ? (size - byteOffset) / UInt64(RoseLayout.blockSize) : 0
    self.path = path
    self.byteOffset = byteOffset
    self.blockCount = blockCount ?? available
    self.writable = writable
    self.fd = fd
  }

  deinit { close(fd) }

  public func readBlock(_ address: UInt32) throws(EngineError) -> [UInt8] {
    guard UInt64(address) < blockCount else {
      throw EngineError.io("\(path): block \(address) is past the volume (\(blockCount) blocks)")
    }
    var out = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    let offset = off_t(byteOffset + UInt64(address) * UInt64(RoseLayout.blockSize))
    var done = 0
    while done < RoseLayout.blockSize {
      let n = out.withUnsafeMutableBytes {
        pread(fd, $0.baseAddress! + done, RoseLayout.blockSize - done, offset + off_t(done))
      }
      if n < 0 {
        if errno == EINTR { continue }
        throw EngineError.io("\(path): read of block \(address)", errno: errno)
      }
      if n == 0 { break }  // past the end of a sparse file: zeros
      done += n
    }
    return out
  }

  public func writeBlock(_ address: UInt32, _ bytes: [UInt8]) throws(EngineError) {
    guard writable else { throw EngineError(EROFS, "\(path) is open read-only") }
    guard UInt64(address) < blockCount, bytes.count == RoseLayout.blockSize else {
      throw EngineError.io("\(path): write of block \(address) is past the volume")
    }
    let offset = off_t(byteOffset + UInt64(address) * UInt64(RoseLayout.blockSize))
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeBytes {
        pwrite(fd, $0.baseAddress! + done, bytes.count - done, offset + off_t(done))
      }
      if n < 0 {
        if errno == EINTR { continue }
        throw EngineError.io("\(path): write of block \(address)", errno: errno)
      }
      done += n
    }
    lock.lock()
    counts[address, default: 0] += 1
    lock.unlock()
  }

  public func flush() throws(EngineError) {
    guard writable else { return }
    if fdatasync(fd) != 0 { throw EngineError.io("\(path): fdatasync", errno: errno) }
  }

  public var writeCounts: [UInt32: UInt64] {
    lock.lock()
    defer { lock.unlock() }
    return counts
  }
}

/// An in-memory volume that records every write and flush, for crash-consistency tests: any prefix
/// of the log (with reorderings or torn blocks since the last flush) can be rebuilt as an image.
public final class RecordingBlockDevice: BlockDevice, @unchecked Sendable {
  public enum Event: Equatable, Sendable {
    case write(UInt32, [UInt8])
    case flush
  }
  public let blockCount: UInt64
  /// The volume before the first recorded write.
  public let base: [UInt32: [UInt8]]
  public private(set) var blocks: [UInt32: [UInt8]]
  public private(set) var events: [Event] = []
  /// Keep the log (crash tests); off for long runs that only want the write counts.
  public var recording = true
  private var counts: [UInt32: UInt64] = [:]
  private let lock = NSLock()

  public init(blockCount: UInt64, blocks: [UInt32: [UInt8]]) {
    self.blockCount = blockCount
    self.base = blocks
    self.blocks = blocks
  }

  /// Loads a volume image file (sparse runs of zeros are not kept).
  public convenience init(imagePath: String) throws(EngineError) {
    let src = try FileBlockDevice(path: imagePath, writable: false)
    var blocks: [UInt32: [UInt8]] = [:]
    for a in 0..<UInt32(src.blockCount) {
      let b = try src.readBlock(a)
      if b.contains(where: { $0 != 0 }) { blocks[a] = b }
    }
    self.init(blockCount: src.blockCount, blocks: blocks)
  }

  public func readBlock(_ address: UInt32) throws(EngineError) -> [UInt8] {
    lock.lock()
    defer { lock.unlock() }
    guard UInt64(address) < blockCount else {
      throw EngineError.io("block \(address) is past the volume (\(blockCount) blocks)")
    }
    return blocks[address] ?? [UInt8](repeating: 0, count: RoseLayout.blockSize)
  }

  public func writeBlock(_ address: UInt32, _ bytes: [UInt8]) throws(EngineError) {
    lock.lock()
    defer { lock.unlock() }
    guard UInt64(address) < blockCount, bytes.count == RoseLayout.blockSize else {
      throw EngineError.io("write of block \(address) is past the volume")
    }
    blocks[address] = bytes
    counts[address, default: 0] += 1
    if recording { events.append(.write(address, bytes)) }
  }

  public func flush() throws(EngineError) {
    lock.lock()
    defer { lock.unlock() }
    if recording { events.append(.flush) }
  }

  public var writeCounts: [UInt32: UInt64] {
    lock.lock()
    defer { lock.unlock() }
    return counts
  }

  /// The blocks after the first `eventCount` events, applied in order.
  public func image(afterEvents eventCount: Int) -> [UInt32: [UInt8]] {
    lock.lock()
    defer { lock.unlock() }
    var out = base
    for e in events.prefix(eventCount) {
      if case .write(let a, let b) = e { out[a] = b }
    }
    return out
  }

  /// Writes `blocks` as a (sparse) image file of this volume's size.
  public func writeImage(_ blocks: [UInt32: [UInt8]], to path: String) throws(EngineError) {
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw EngineError.io("cannot create \(path)", errno: errno) }
    defer { close(fd) }
    guard ftruncate(fd, off_t(blockCount) * off_t(RoseLayout.blockSize)) == 0 else {
      throw EngineError.io("cannot size \(path)", errno: errno)
    }
    for (a, b) in blocks {
      let n = b.withUnsafeBytes {
        pwrite(fd, $0.baseAddress!, b.count, off_t(a) * off_t(RoseLayout.blockSize))
      }
      guard n == b.count else { throw EngineError.io("cannot write \(path)", errno: errno) }
    }
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The packer's single sequential writer: every block of the main area is appended here exactly once,
/// in address order, through a reused 1 MiB staging buffer. It also keeps, per block, the data
/// checksum that the segment summary (SSA) records, spooled to a temporary file so that memory stays
/// O(1) in the volume size.
final class BlockStream {
  private(set) var image: ImageFile
  let checksum: RoseChecksum
  private(set) var nextBlock: UInt32
  private let staging: UnsafeMutableRawBufferPointer
  private var stagedBlocks = 0
  private var stagingStart: UInt32
  private let stagingCapacity = 256
  let crcSpool: CRCSpool
  /// The first write error. After it the staged blocks are dropped (the staging buffer stays usable,
  /// so callers that clean up through `reserveNext` cannot overrun it) and every later commit or
  /// flush throws it again: an image with a lost write must never be finished.
  private(set) var failure: Error?

  init(image: ImageFile, checksum: RoseChecksum, firstBlock: UInt32) throws {
    self.image = image
    self.checksum = checksum
    nextBlock = firstBlock
    stagingStart = firstBlock
    staging = UnsafeMutableRawBufferPointer.allocate(
      byteCount: stagingCapacity * RoseLayout.blockSize, alignment: 4096)
    crcSpool = try CRCSpool()
  }

  deinit { staging.deallocate() }

  /// A writable view of the next block; the caller fills all 4096 bytes, then calls `commit`.
  func reserveNext() -> UnsafeMutableRawBufferPointer {
    let off = stagedBlocks * RoseLayout.blockSize
    return UnsafeMutableRawBufferPointer(rebasing: staging[off..<off + RoseLayout.blockSize])
  }

  /// Whether blocks still get an entry in the checksum spool: true during the data phase (data and
  /// tail blocks); the metadata written after it needs no SSA checksum.
  var recordsChecksums = true

  /// Commits the block filled through `reserveNext`; `dataChecksum` is recorded for DATA blocks.
  @discardableResult
  func commit(dataChecksum: Bool) throws -> UInt32 {
    if let failure { throw failure }
    let addr = nextBlock
    if recordsChecksums {
      try crcSpool.append(
        dataChecksum ? checksum.checksum(UnsafeRawBufferPointer(reserveNext())) : 0)
    }
    stagedBlocks += 1
    nextBlock += 1
    if stagedBlocks == stagingCapacity { try flush() }
    return addr
  }

  @discardableResult
  func append(_ block: UnsafeRawBufferPointer, dataChecksum: Bool) throws -> UInt32 {
    let dst = reserveNext()
    dst.copyMemory(from: block)
    if block.count < RoseLayout.blockSize {
      (dst.baseAddress! + block.count).initializeMemory(
        as: UInt8.self, repeating: 0, count: RoseLayout.blockSize - block.count)
    }
    return try commit(dataChecksum: dataChecksum)
  }

  func flush() throws {
    if let failure { throw failure }
    defer {
      stagingStart = nextBlock
      stagedBlocks = 0
    }
    if stagedBlocks > 0 {
      do {
        try image.write(
          UnsafeRawBufferPointer(rebasing: staging[0..<stagedBlocks * RoseLayout.blockSize]),
          atByte: UInt64(stagingStart) << RoseLayout.blockShift)
      } catch {
        failure = error
        throw error
      }
    }
  }

  /// Continues the stream in another image from block `block` (everything before it must already
  /// be there): `ImageBuilder.finish(into:size:...)` packs the same data again at another size.
  func retarget(_ newImage: ImageFile, at block: UInt32) throws {
    try flush()
    image = newImage
    nextBlock = block
    stagingStart = block
    stagedBlocks = 0
  }

  /// Reads a block back, from staging if not yet flushed (used by the packer's read-back in tests).
  func readBack(_ block: UInt32) throws -> [UInt8] {
    if block >= stagingStart && block < nextBlock {
      let off = Int(block - stagingStart) * RoseLayout.blockSize
      return Array(staging[off..<off + RoseLayout.blockSize])
    }
    return try image.readBlock(block)
  }
}

/// Per-block data checksums in a temporary file, 4 bytes per block, read back once in order.
final class CRCSpool {
  private let file: UnsafeMutablePointer<FILE>
  private var buffer: [UInt32] = []
  /// errno of the first failed write of the spool (its temporary file sits on a disk that can fill).
  private var writeErrno: Int32 = 0

  init() throws {
    guard let f = tmpfile() else {
      throw RoseFSError.io(path: "temporary file", operation: "tmpfile", errno: errno)
    }
    file = f
    buffer.reserveCapacity(65536)
  }

  deinit { fclose(file) }

  func append(_ v: UInt32) throws {
    buffer.append(v)
    if buffer.count == 65536 { try spill() }
  }

  private func spill() throws {
    let written = buffer.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    if written != buffer.count * 4 && writeErrno == 0 { writeErrno = errno == 0 ? EIO : errno }
    buffer.removeAll(keepingCapacity: true)
    try check()
  }

  private func check() throws {
    if writeErrno != 0 {
      throw RoseFSError.io(
        path: "temporary checksum spool (\(tmpDirectory))", operation: "write", errno: writeErrno)
    }
  }

  private var tmpDirectory: String {
    getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
  }

  private var readChunk: [UInt32] = []
  private var readPos = 0

  /// Switches to reading: the values come back in order through `next`.
  func rewindForReading() throws {
    try spill()
    if fflush(file) != 0 && writeErrno == 0 { writeErrno = errno }
    try check()
    rewind(file)
    readChunk = []
    readPos = 0
  }

  /// The next recorded value; 0 past the end.
  func next() -> UInt32 {
    if readPos == readChunk.count {
      readChunk = [UInt32](repeating: 0, count: 65536)
      let n = readChunk.withUnsafeMutableBytes { fread($0.baseAddress, 4, 65536, file) }
      readChunk.removeLast(65536 - n)
      readPos = 0
      if n == 0 { return 0 }
    }
    readPos += 1
    return readChunk[readPos - 1]
  }
}

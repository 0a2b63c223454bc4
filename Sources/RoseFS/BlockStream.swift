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
  let image: ImageFile
  let checksum: RoseChecksum
  private(set) var nextBlock: UInt32
  private let staging: UnsafeMutableRawBufferPointer
  private var stagedBlocks = 0
  private var stagingStart: UInt32
  private let stagingCapacity = 256
  let crcSpool: CRCSpool

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

  /// Commits the block filled through `reserveNext`; `dataChecksum` is recorded for DATA blocks.
  /// Whether blocks still get an entry in the checksum spool: true during the data phase (data and
  /// tail blocks); the metadata written after it needs no SSA checksum.
  var recordsChecksums = true

  @discardableResult
  func commit(dataChecksum: Bool) throws -> UInt32 {
    let addr = nextBlock
    if recordsChecksums {
      crcSpool.append(dataChecksum ? checksum.checksum(UnsafeRawBufferPointer(reserveNext())) : 0)
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
    if stagedBlocks > 0 {
      try image.write(
        UnsafeRawBufferPointer(rebasing: staging[0..<stagedBlocks * RoseLayout.blockSize]),
        atByte: UInt64(stagingStart) << RoseLayout.blockShift)
    }
    stagingStart = nextBlock
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

  init() throws {
    guard let f = tmpfile() else {
      throw RoseFSError.io(path: "temporary file", operation: "tmpfile", errno: errno)
    }
    file = f
    buffer.reserveCapacity(65536)
  }

  deinit { fclose(file) }

  func append(_ v: UInt32) {
    buffer.append(v)
    if buffer.count == 65536 { spill() }
  }

  private func spill() {
    buffer.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, file) }
    buffer.removeAll(keepingCapacity: true)
  }

  private var readChunk: [UInt32] = []
  private var readPos = 0

  /// Switches to reading: the values come back in order through `next`.
  func rewindForReading() {
    spill()
    fflush(file)
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

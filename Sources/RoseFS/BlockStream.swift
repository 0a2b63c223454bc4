import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The packer's single sequential writer: every block of the main area is appended here exactly once,
/// in address order, through reused staging buffers. It also keeps, per block, the data checksum that
/// the segment summary (SSA) records, spooled to a temporary file so that memory stays O(1) in the
/// volume size.
///
/// A full staging buffer goes to a writer thread (`StagingWriter`), which checksums its blocks and
/// writes them while the packing thread fills the next buffer: reading the input and checksumming
/// plus writing the image run on both cores. Placement (every block's address) is decided here, on
/// the packing thread, so the image does not depend on the threads' timing.
final class BlockStream {
  private(set) var image: ImageFile
  let checksum: RoseChecksum
  private(set) var nextBlock: UInt32
  /// The buffer being filled, and what each of its blocks records in the checksum spool.
  private var staging: StagingWriter.Buffer
  private var stagedBlocks = 0
  private var stagingStart: UInt32
  private let writer: StagingWriter
  /// The first write error (of the image or of the checksum spool), as seen by this thread. After it
  /// the staged blocks are dropped (the staging buffer stays usable, so callers that clean up through
  /// `reserveNext` cannot overrun it) and every later commit or flush throws it again: an image with
  /// a lost write must never be finished.
  private(set) var failure: Error?

  init(image: ImageFile, checksum: RoseChecksum, firstBlock: UInt32) throws {
    self.image = image
    self.checksum = checksum
    nextBlock = firstBlock
    stagingStart = firstBlock
    writer = try StagingWriter(checksum: checksum)
    staging = writer.takeFree()
  }

  deinit { writer.stop(returning: staging) }

  /// The data checksums recorded so far, in block order (every staged block is written first).
  var crcSpool: CRCSpool {
    writer.waitIdle()
    return writer.spool
  }

  /// A writable view of the next block; the caller fills all 4096 bytes, then calls `commit`.
  func reserveNext() -> UnsafeMutableRawBufferPointer {
    let off = stagedBlocks * RoseLayout.blockSize
    return UnsafeMutableRawBufferPointer(rebasing: staging.bytes[off..<off + RoseLayout.blockSize])
  }

  /// Whether blocks still get an entry in the checksum spool: true during the data phase (data and
  /// tail blocks); the metadata written after it needs no SSA checksum.
  var recordsChecksums = true

  /// Commits the block filled through `reserveNext`; `dataChecksum` is recorded for DATA blocks.
  @discardableResult
  func commit(dataChecksum: Bool) throws -> UInt32 {
    if let failure { throw failure }
    let addr = nextBlock
    staging.records[stagedBlocks] =
      !recordsChecksums
      ? StagingWriter.Record.none : dataChecksum ? StagingWriter.Record.checksum : .zero
    stagedBlocks += 1
    nextBlock += 1
    if stagedBlocks == StagingWriter.blocksPerBuffer { try submit() }
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

  /// Hands the staged blocks to the writer thread and continues in a free buffer.
  private func submit() throws {
    if let failure { throw failure }
    guard stagedBlocks > 0 else { return }
    let job = StagingWriter.Job(
      buffer: staging, image: image,
      atByte: UInt64(stagingStart) << RoseLayout.blockShift, blocks: stagedBlocks)
    stagingStart = nextBlock
    stagedBlocks = 0
    do {
      staging = try writer.submit(job)
    } catch {
      // The buffer handed in stays ours (the writer gave it back): staging remains usable.
      staging = job.buffer
      failure = error
      throw error
    }
  }

  /// Writes every staged block and waits until the writer thread has written them all.
  func flush() throws {
    if let failure { throw failure }
    do {
      try submit()
      try writer.drain()
    } catch {
      stagingStart = nextBlock
      stagedBlocks = 0
      failure = error
      throw error
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

  /// Reads a block back, from staging if not yet handed over (used by the packer's read-back, and
  /// tests); a block on its way to the image is read once the writer has written it.
  func readBack(_ block: UInt32) throws -> [UInt8] {
    if block >= stagingStart && block < nextBlock {
      let off = Int(block - stagingStart) * RoseLayout.blockSize
      return Array(staging.bytes[off..<off + RoseLayout.blockSize])
    }
    try writer.drain()
    return try image.readBlock(block)
  }
}

/// The writer thread of a `BlockStream`: takes full staging buffers in order, records each block's
/// checksum in the spool, writes the buffer with one `pwrite`, and hands the buffer back. A bounded
/// pool of buffers (`bufferCount`) keeps memory flat and makes the packing thread wait when the
/// writer falls behind. The first error stops all later writes; the packing thread receives it at
/// its next hand-over or drain, once per `BlockStream` (which then keeps throwing its own copy).
final class StagingWriter: @unchecked Sendable {
  /// What a block records in the checksum spool.
  enum Record: UInt8 {
    /// Nothing (metadata written after the data phase).
    case none
    /// A zero entry (a metadata block inside the data phase).
    case zero
    /// The block's data checksum.
    case checksum
  }

  /// A staging buffer and its blocks' records.
  struct Buffer: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    let records: UnsafeMutableBufferPointer<Record>
  }

  struct Job: @unchecked Sendable {
    let buffer: Buffer
    let image: ImageFile
    let atByte: UInt64
    let blocks: Int
  }

  /// 256 KiB per buffer: large writes, while four buffers in flight cost 1 MiB in all (as much
  /// as the single staging buffer before the writer thread).
  static let blocksPerBuffer = 64
  static let bufferCount = 4

  let checksum: RoseChecksum
  /// Appended by the writer thread only while it runs; read by the packing thread once idle.
  let spool: CRCSpool
  private let cond = NSCondition()
  private var free: [Buffer] = []
  private var queue: [Job] = []
  private var allBuffers: [Buffer] = []
  private var writing = false
  private var threadRunning = false
  private var stopped = false
  private var failure: Error?

  init(checksum: RoseChecksum) throws {
    self.checksum = checksum
    spool = try CRCSpool()
    for _ in 0..<Self.bufferCount {
      let b = Buffer(
        bytes: UnsafeMutableRawBufferPointer.allocate(
          byteCount: Self.blocksPerBuffer * RoseLayout.blockSize, alignment: 4096),
        records: UnsafeMutableBufferPointer<Record>.allocate(capacity: Self.blocksPerBuffer))
      b.records.initialize(repeating: .none)
      allBuffers.append(b)
    }
    free = allBuffers
  }

  deinit {
    for b in allBuffers {
      b.bytes.deallocate()
      b.records.deallocate()
    }
  }

  /// A free buffer (at start: there are `bufferCount`, nothing is queued).
  func takeFree() -> Buffer {
    cond.lock()
    defer { cond.unlock() }
    while free.isEmpty { cond.wait() }
    return free.removeLast()
  }

  /// Queues `job` and returns a free buffer to fill next, waiting while all are in flight. After a
  /// failure nothing is queued: the job's buffer is given back and the error thrown.
  func submit(_ job: Job) throws -> Buffer {
    cond.lock()
    defer { cond.unlock() }
    if let failure { throw failure }
    queue.append(job)
    if !threadRunning {
      threadRunning = true
      let thread = Thread { [self] in self.run() }
      thread.stackSize = 256 << 10
      thread.start()
    }
    cond.broadcast()
    while free.isEmpty && failure == nil { cond.wait() }
    if let failure {
      // The writer drops the jobs still queued; once it has, `job.buffer` is taken back out of the
      // free list, because the caller keeps using it as its staging buffer.
      while !queue.isEmpty || writing { cond.wait() }
      if let i = free.firstIndex(where: { $0.bytes.baseAddress == job.buffer.bytes.baseAddress }) {
        free.remove(at: i)
      }
      throw failure
    }
    return free.removeLast()
  }

  /// Waits until every queued job is written; throws the first error.
  func drain() throws {
    cond.lock()
    defer { cond.unlock() }
    while !queue.isEmpty || writing { cond.wait() }
    if let failure { throw failure }
  }

  /// Waits until every queued job is done (the spool is complete), errors aside.
  func waitIdle() {
    cond.lock()
    defer { cond.unlock() }
    while !queue.isEmpty || writing { cond.wait() }
  }

  /// Ends the thread (queued jobs are dropped: the stream was abandoned) and waits for it.
  func stop(returning buffer: Buffer) {
    cond.lock()
    defer { cond.unlock() }
    stopped = true
    free.append(buffer)
    cond.broadcast()
    while threadRunning { cond.wait() }
  }

  private func run() {
    cond.lock()
    while true {
      while queue.isEmpty && !stopped { cond.wait() }
      if stopped {
        free.append(contentsOf: queue.map(\.buffer))
        queue.removeAll()
        threadRunning = false
        cond.broadcast()
        cond.unlock()
        return
      }
      let job = queue.removeFirst()
      let failed = failure != nil
      writing = true
      cond.unlock()
      var error: Error?
      if !failed {
        do { try write(job) } catch let e { error = e }
      }
      cond.lock()
      writing = false
      if let error, failure == nil { failure = error }
      free.append(job.buffer)
      cond.broadcast()
    }
  }

  private func write(_ job: Job) throws {
    let bs = RoseLayout.blockSize
    for i in 0..<job.blocks {
      switch job.buffer.records[i] {
      case .none: break
      case .zero: try spool.append(0)
      case .checksum:
        try spool.append(
          checksum.checksum(
            UnsafeRawBufferPointer(rebasing: job.buffer.bytes[i * bs..<(i + 1) * bs])))
      }
    }
    try job.image.write(
      UnsafeRawBufferPointer(rebasing: job.buffer.bytes[0..<job.blocks * bs]), atByte: job.atByte)
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

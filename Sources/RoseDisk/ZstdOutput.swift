import CZstd
import Foundation

/// Raw image to `.img.zst` with libzstd's streaming API. The output is a sequence of zstd frames
/// (RFC 8878 section 3.1: a decoder concatenates the content of consecutive frames):
///
/// - a *data frame* (libzstd, content size and XXH64 content checksum recorded) for each stretch of
///   content, small holes inside a stretch fed as zeros without being read;
/// - a *hole frame* for each run of at least `holeFrameMinimum` zero bytes (the map's holes, never
///   read, and whole 1 MiB units of zeros in the mapped ranges, such as a FAT partition's free
///   space): written here, not by libzstd, as RLE blocks of 128 KiB of byte 0 (4 bytes each), content size recorded,
///   no content checksum (the content is fully described by its block headers). A hole costs 4 bytes
///   per 128 KiB of output and no compression work, so a 1 TB disk with a small root compresses in
///   well under a second.
///
/// Memory: a data frame is compressed with libzstd's parameters for the level and the frame's
/// length (`ZSTD_getCParams`: a frame of mapped bytes needs no window larger than itself), capped at
/// a 2 MiB window and 2^20-entry hash and chain tables (`parameters(level:frameLength:)`), in jobs
/// of 1 MiB (`jobSize`): libzstd's defaults at level 19 (8 MiB window, 64 MiB chain table, 32 MiB
/// jobs, each worker its own tables) need over 100 MiB; capped, a worker holds at most 8 MiB of
/// tables and the job buffers a few MiB (measured per recipe in docs/DISK-OUTPUTS.md).
///
/// Determinism: the frame boundaries come from the map and the parameters from the level and the
/// frame's length; libzstd's multi-threaded mode produces the same bytes for any worker count >= 1,
/// so `workers` is always at least 1 (single-threaded mode, 0, would differ).
public struct ZstdOutput: Sendable {
  public var level: Int32
  public var workers: Int32
  /// Holes of the map at least this long become RLE hole frames; shorter ones are compressed as
  /// zeros inside the data frame around them (a new frame costs a frame header and a reset
  /// compression history, so tiny holes are not worth one).
  public var holeFrameMinimum: UInt64

  public init(
    level: Int32 = 3, workers: Int32 = Int32(ProcessInfo.processInfo.activeProcessorCount),
    holeFrameMinimum: UInt64 = 1 << 20
  ) {
    self.level = level
    self.workers = max(1, workers)
    self.holeFrameMinimum = max(1, holeFrameMinimum)
  }

  /// Caps on libzstd's parameters (log2): a 2 MiB window, 4 MiB hash and chain tables each.
  static let maxWindowLog: UInt32 = 21
  static let maxHashLog: UInt32 = 20
  static let maxChainLog: UInt32 = 20
  /// Bytes per multi-threaded job. libzstd's default is 4 windows (32 MiB at level 19, 8 MiB at
  /// level 3) and keeps several jobs' input and output in flight; 1 MiB jobs keep that to a few
  /// MiB while still giving both cores work (a job also sees the window before it, as overlap).
  static let jobSize: Int32 = 1 << 20

  /// The compression parameters of a data frame of `frameLength` bytes at `level`: libzstd's own
  /// for that level and length, with the window and tables capped (`maxWindowLog`, ...).
  static func parameters(level: Int32, frameLength: UInt64) -> ZSTD_compressionParameters {
    var p = ZSTD_getCParams(level, frameLength, 0)
    p.windowLog = min(p.windowLog, maxWindowLog)
    p.hashLog = min(p.hashLog, maxHashLog)
    p.chainLog = min(p.chainLog, maxChainLog)
    return p
  }

  /// Largest block a frame with a 128 KiB window may hold (RFC 8878 3.1.1.2.3).
  static let rleBlockSize: UInt64 = 128 << 10

  /// Unit of the zero scan: a run of zeros is found in whole aligned units of this size.
  static let zeroScanUnit: UInt64 = 1 << 20

  /// The image split into the frames to write: `(offset, length, isHole)` in ascending order,
  /// covering `[0, size)`. A hole frame is a run of at least `holeFrameMinimum` zero bytes made
  /// of the map's holes (never read) and of aligned 1 MiB units whose mapped bytes are all zero
  /// (read once here: a FAT partition or a raw partition file is mapped whole but mostly zero).
  /// The frames depend only on the map and the image bytes, so the output is deterministic.
  static func frames(
    input: Int32, path: String, size: UInt64, map: AllocationMap?, holeFrameMinimum: UInt64,
    buffer: UnsafeMutableRawBufferPointer
  ) throws -> [(offset: UInt64, length: UInt64, isHole: Bool)] {
    // Zero / non-zero spans, merged as they come.
    var spans: [(offset: UInt64, length: UInt64, isZero: Bool)] = []
    func add(_ offset: UInt64, _ length: UInt64, _ isZero: Bool) {
      guard length > 0 else { return }
      if let last = spans.last, last.isZero == isZero, last.offset + last.length == offset {
        spans[spans.count - 1].length += length
      } else {
        spans.append((offset, length, isZero))
      }
    }
    let unit = zeroScanUnit
    let extents = map?.extents
    var pos: UInt64 = 0
    while pos < size {
      if let map, let extents {
        let i = map.firstIndex(endingAfter: pos)
        guard i < extents.count else {
          add(pos, size - pos, true)
          break
        }
        let unitOfNext = max(pos, alignDown(extents[i].offset, unit))
        if unitOfNext >= size {
          add(pos, size - pos, true)
          break
        }
        if unitOfNext > pos {
          add(pos, unitOfNext - pos, true)
          pos = unitOfNext
          continue
        }
      }
      let unitEnd = min(alignDown(pos, unit) + unit, size)
      let count = Int(unitEnd - pos)
      let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
      try RawImageOutput.readMapped(input, path: path, map: map, offset: pos, into: chunk)
      add(pos, unitEnd - pos, RawImageOutput.isZero(UnsafeRawPointer(chunk.baseAddress!), count))
      pos = unitEnd
    }
    var frames: [(offset: UInt64, length: UInt64, isHole: Bool)] = []
    for span in spans {
      let isHole = span.isZero && span.length >= holeFrameMinimum
      if !isHole, let last = frames.last, !last.isHole {
        frames[frames.count - 1].length += span.length
      } else {
        frames.append((span.offset, span.length, isHole))
      }
    }
    if frames.isEmpty { frames.append((0, 0, false)) }
    return frames
  }

  /// Compresses `rawImage` into `output` (written under a temporary name, then renamed).
  public func write(rawImage: String, map: AllocationMap?, to output: String) throws {
    let input = try FileIO.open(rawImage, flags: O_RDONLY)
    defer { close(input) }
    let size = try FileIO.size(input, path: rawImage)
    let file = try AtomicOutputFile(path: output)
    let writer = BufferedWriter(fd: file.fd, path: file.temporaryPath, capacity: 1 << 20)
    guard let cctx = ZSTD_createCCtx() else {
      throw DiskError.compression(path: output, reason: "out of memory")
    }
    defer { ZSTD_freeCCtx(cctx) }

    func check(_ code: Int, _ what: String) throws {
      if ZSTD_isError(code) != 0 {
        throw DiskError.compression(
          path: output, reason: "\(what): \(String(cString: ZSTD_getErrorName(code)))")
      }
    }
    try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level), "level \(level)")
    try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1), "checksum flag")
    try check(
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, max(1, workers)), "nbWorkers \(workers)")

    // One zero-scan unit: the reads need no more, and every byte of these buffers is touched.
    let inBuffer = FileIO.allocate(Int(ZstdOutput.zeroScanUnit))
    defer { inBuffer.deallocate() }
    let outCapacity = ZSTD_CStreamOutSize() * 8
    let outBuffer = FileIO.allocate(outCapacity)
    defer { outBuffer.deallocate() }

    func drain(_ input: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective) throws -> Int {
      var out = ZSTD_outBuffer(dst: outBuffer.baseAddress, size: outCapacity, pos: 0)
      let remaining = ZSTD_compressStream2(cctx, &out, &input, mode)
      try check(remaining, "compress")
      if out.pos > 0 {
        try writer.write(UnsafeRawBufferPointer(rebasing: outBuffer[0..<out.pos]))
      }
      return remaining
    }

    let frames = try ZstdOutput.frames(
      input: input, path: rawImage, size: size, map: map, holeFrameMinimum: holeFrameMinimum,
      buffer: inBuffer)
    for frame in frames {
      if frame.isHole {
        try writeHoleFrame(length: frame.length, to: writer)
        continue
      }
      try check(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only), "reset")
      let p = ZstdOutput.parameters(level: level, frameLength: frame.length)
      for (parameter, value, name) in [
        (ZSTD_c_windowLog, p.windowLog, "windowLog"), (ZSTD_c_hashLog, p.hashLog, "hashLog"),
        (ZSTD_c_chainLog, p.chainLog, "chainLog"),
      ] {
        try check(ZSTD_CCtx_setParameter(cctx, parameter, Int32(value)), "\(name) \(value)")
      }
      try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_jobSize, ZstdOutput.jobSize), "jobSize")
      try check(ZSTD_CCtx_setPledgedSrcSize(cctx, frame.length), "pledged size")
      var offset = frame.offset
      let end = frame.offset + frame.length
      while offset < end {
        let count = Int(min(UInt64(inBuffer.count), end - offset))
        let chunk = UnsafeMutableRawBufferPointer(rebasing: inBuffer[0..<count])
        try RawImageOutput.readMapped(input, path: rawImage, map: map, offset: offset, into: chunk)
        var zin = ZSTD_inBuffer(src: chunk.baseAddress, size: count, pos: 0)
        while zin.pos < zin.size { _ = try drain(&zin, ZSTD_e_continue) }
        offset += UInt64(count)
      }
      var empty = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
      while try drain(&empty, ZSTD_e_end) != 0 {}
    }
    try writer.flush()
    try file.commit()
  }

  /// One zstd frame of `length` zero bytes made of RLE blocks (RFC 8878 3.1.1): magic, a frame
  /// header with an 8-byte content size and a 128 KiB window (not single-segment, so a decoder
  /// needs 128 KiB, not `length` bytes, of window), then 3-byte block headers each followed by the
  /// repeated byte 0.
  func writeHoleFrame(length: UInt64, to writer: BufferedWriter) throws {
    var header = [UInt8](repeating: 0, count: 14)
    header.storeLE(UInt32(0xFD2F_B528), at: 0)
    header[4] = 0xC0  // Frame_Content_Size_flag 3 (8 bytes); no checksum, no dictionary
    header[5] = UInt8(17 - 10) << 3  // Window_Descriptor: 2^17 bytes
    header.storeLE(length, at: 6)
    try writer.write(header)
    func block(_ size: UInt64, last: Bool) -> [UInt8] {
      let value = UInt32(size) << 3 | 1 << 1 | (last ? 1 : 0)  // Block_Type 1: RLE
      return [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), 0]
    }
    let bs = ZstdOutput.rleBlockSize
    let fullBlocks = length == 0 ? 0 : (length - 1) / bs  // every block but the last is full
    if fullBlocks > 0 {
      // A buffer of identical full-block records, written as many times as needed.
      let record = block(bs, last: false)
      // 64 KiB of records (16,384 blocks, 2 GiB of zeros) at a time: a 1 TiB hole is 512 writes.
      let perBatch: UInt64 = 16_384
      var batch: [UInt8] = []
      batch.reserveCapacity(Int(min(perBatch, fullBlocks)) * 4)
      for _ in 0..<min(perBatch, fullBlocks) { batch += record }
      var left = fullBlocks
      while left > 0 {
        let n = Int(min(left, UInt64(batch.count / 4)))
        try batch.withUnsafeBytes {
          try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<n * 4]))
        }
        left -= UInt64(n)
      }
    }
    try writer.write(block(length - fullBlocks * bs, last: true))
  }
}

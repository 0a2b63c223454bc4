import CZstd
import Foundation

/// Raw image to `.img.zst` with libzstd's streaming API (one frame, content size and
/// checksum recorded). Holes listed by the map are fed as zeros without being read.
///
/// Determinism: libzstd's multi-threaded mode produces the same bytes for any worker count
/// >= 1, so `workers` is always at least 1 (single-threaded mode, 0, would differ).
public struct ZstdOutput: Sendable {
  public var level: Int32
  public var workers: Int32

  public init(
    level: Int32 = 3, workers: Int32 = Int32(ProcessInfo.processInfo.activeProcessorCount)
  ) {
    self.level = level
    self.workers = max(1, workers)
  }

  /// Compresses `rawImage` into `output` (written under a temporary name, then renamed).
  public func write(rawImage: String, map: AllocationMap?, to output: String) throws {
    let input = try FileIO.open(rawImage, flags: O_RDONLY)
    defer { close(input) }
    let size = try FileIO.size(input, path: rawImage)
    let file = try AtomicOutputFile(path: output)
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
    try check(ZSTD_CCtx_setPledgedSrcSize(cctx, size), "pledged size")

    let inBuffer = FileIO.allocate(FileIO.chunkSize)
    defer { inBuffer.deallocate() }
    let outCapacity = ZSTD_CStreamOutSize() * 8
    let outBuffer = FileIO.allocate(outCapacity)
    defer { outBuffer.deallocate() }
    var written: UInt64 = 0

    func drain(_ input: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective) throws -> Int {
      var out = ZSTD_outBuffer(dst: outBuffer.baseAddress, size: outCapacity, pos: 0)
      let remaining = ZSTD_compressStream2(cctx, &out, &input, mode)
      try check(remaining, "compress")
      if out.pos > 0 {
        try FileIO.write(
          file.fd, UnsafeRawBufferPointer(rebasing: outBuffer[0..<out.pos]), at: written,
          path: file.temporaryPath)
        written += UInt64(out.pos)
      }
      return remaining
    }

    var offset: UInt64 = 0
    while offset < size {
      let count = Int(min(UInt64(inBuffer.count), size - offset))
      let chunk = UnsafeMutableRawBufferPointer(rebasing: inBuffer[0..<count])
      try RawImageOutput.readMapped(input, path: rawImage, map: map, offset: offset, into: chunk)
      var zin = ZSTD_inBuffer(src: chunk.baseAddress, size: count, pos: 0)
      while zin.pos < zin.size { _ = try drain(&zin, ZSTD_e_continue) }
      offset += UInt64(count)
    }
    var empty = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
    while try drain(&empty, ZSTD_e_end) != 0 {}
    try file.commit()
  }
}

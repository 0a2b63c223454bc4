import CZstd
import Foundation

/// Decompresses a .zst input on a second thread, a few buffers ahead of libarchive (a
/// `PrefetchQueue`), so that on two cores decompression overlaps with packing instead of adding
/// to it (the zstd filter inside libarchive runs on the packing thread). Used only for zstd, the
/// common rootfs format; beside the queue's buffers it holds one compressed input buffer of
/// `inputChunk` bytes and zstd's own window (the frame's window size: 8 MiB for `zstd -19`, which
/// no streaming reader can avoid).
final class ZstdPrefetcher {
  /// zstd reads input a block (128 KiB) at a time; a larger compressed buffer saves no calls.
  private static let inputChunk = 128 << 10
  private let fd: Int32
  private let dctx: OpaquePointer
  private let inBuf = UnsafeMutableRawBufferPointer.allocate(
    byteCount: ZstdPrefetcher.inputChunk, alignment: 64)
  private var input: ZSTD_inBuffer
  private var lastHint = 0
  private var offset: off_t = 0

  /// nil when `path` does not start with the zstd frame magic (or cannot be opened, or is not a
  /// regular file: a FIFO would block the open, and a stream cannot be read ahead with `pread`),
  /// or zstd cannot make its context.
  static func open(path: String) -> PrefetchQueue? {
    guard let fd = PrefetchQueue.openRegularFile(path) else { return nil }
    var magic: UInt32 = 0
    guard pread(fd, &magic, 4, 0) == 4, UInt32(littleEndian: magic) == 0xFD2F_B528,
      let dctx = ZSTD_createDCtx()
    else {
      close(fd)
      return nil
    }
    let source = ZstdPrefetcher(fd: fd, dctx: dctx)
    // Compressed bytes consumed, for progress against the file size.
    return PrefetchQueue(
      fill: source.fill,
      consumed: { Int64(source.offset) - Int64(source.input.size - source.input.pos) })
  }

  private init(fd: Int32, dctx: OpaquePointer) {
    self.fd = fd
    self.dctx = dctx
    input = ZSTD_inBuffer(src: inBuf.baseAddress, size: 0, pos: 0)
  }

  deinit {
    ZSTD_freeDCtx(dctx)
    inBuf.deallocate()
    close(fd)
  }

  /// Decompresses the next bytes into `out` (on the queue's thread). Every failure is reported as
  /// EILSEQ, the way libarchive reports a damaged stream.
  private func fill(_ out: UnsafeMutableRawBufferPointer) -> PrefetchFill {
    func failed(_ message: String) -> PrefetchFill {
      .failed(PrefetchFailure(errno: EILSEQ, message: message))
    }
    var output = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
    while output.pos < output.size {
      if input.pos == input.size {
        let n = pread(fd, inBuf.baseAddress, inBuf.count, offset)
        if n < 0 {
          if errno == EINTR { continue }
          return failed("read failed: \(String(cString: strerror(errno)))")
        }
        if n == 0 {
          // A frame that did not end is a truncated file, not the end of the archive.
          let truncated =
            lastHint != 0
            ? PrefetchFailure(
              errno: EILSEQ, message: "truncated zstd stream (the file ends inside a frame)")
            : nil
          return .end(output.pos, failure: truncated)
        }
        offset += off_t(n)
        input = ZSTD_inBuffer(src: inBuf.baseAddress, size: n, pos: 0)
      }
      let hint = ZSTD_decompressStream(dctx, &output, &input)
      if ZSTD_isError(hint) != 0 {
        let why = String(cString: ZSTD_getErrorName(hint))
        return failed("zstd: \(why) near compressed byte \(Int(offset) - input.size + input.pos)")
      }
      lastHint = hint
    }
    return .more(output.pos)
  }
}

import CZstd
import Foundation

/// Decompresses a .zst input on a second thread, a few blocks ahead of libarchive (a
/// `PrefetchQueue`), so that on two cores decompression overlaps with packing instead of adding
/// to it (the zstd filter inside libarchive runs on the packing thread). Used only for zstd, the
/// common rootfs format.
///
/// One ring is both zstd's window and libarchive's input: each block is decoded into the ring with
/// zstd's buffer-less API (`ZSTD_decompressContinue`, the way `ZSTD_decompressStream` fills its own
/// window buffer) and handed to libarchive where it lies. A streaming decoder must keep the last
/// window of output (8 MiB for `zstd -19`), and libarchive reads the newest few blocks of it, so
/// no other output buffer is needed: beside the ring this holds one compressed input buffer of
/// `inputChunk` bytes and zstd's context (entropy tables, no buffers). The blocks handed out are
/// the newest `PrefetchQueue.depth` at most, and the ring is sized so that decoding the next block
/// overwrites neither them nor the window.
final class ZstdPrefetcher {
  /// zstd's largest block, compressed or not (`ZSTD_BLOCKSIZE_MAX`).
  static let blockMax = 128 << 10
  /// Input is read a block at a time: a block must lie whole in the buffer when it is decoded.
  private static let inputChunk = blockMax
  /// The largest window accepted, as `ZSTD_decompressStream` does by default
  /// (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`): a frame header cannot make this reader allocate more.
  static let windowMax: UInt64 = 1 << 27

  private let fd: Int32
  private let dctx: OpaquePointer
  private let inBuf = UnsafeMutableRawBufferPointer.allocate(
    byteCount: ZstdPrefetcher.inputChunk, alignment: 64)
  /// The unread input is `inBuf[inStart..<inEnd]`; `offset` is the file offset of `inEnd`.
  private var inStart = 0
  private var inEnd = 0
  private var offset: off_t = 0
  /// The file offset of the next compressed byte to decode: progress, and where errors are.
  private var consumed: Int { Int(offset) - (inEnd - inStart) }
  /// The ring, and where the next block goes.
  private var ring = UnsafeMutableRawBufferPointer(start: nil, count: 0)
  private var ringEnd = 0
  /// Rings outgrown by a later frame with a larger window: libarchive may still hold blocks in
  /// them, so they go with this reader.
  private var retired: [UnsafeMutableRawBufferPointer] = []
  /// Whether the next input is a frame's header (at the start, and after each frame's end).
  private var atFrameStart = true
  private var blockSizeMax = blockMax

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
      chunkBytes: 0, fill: source.fill,
      consumed: { Int64(source.consumed) })
  }

  private init(fd: Int32, dctx: OpaquePointer) {
    self.fd = fd
    self.dctx = dctx
  }

  deinit {
    ZSTD_freeDCtx(dctx)
    inBuf.deallocate()
    ring.deallocate()
    for r in retired { r.deallocate() }
    close(fd)
  }

  private enum InputError: Error {
    case read(Int32)
  }

  /// Makes at least `wanted` (at most `inputChunk`) unread bytes lie together in the input buffer,
  /// reading as needed; returns how many there are (fewer only at the end of the file).
  private func ensureInput(_ wanted: Int) throws(InputError) -> Int {
    if inEnd - inStart >= wanted { return inEnd - inStart }
    guard let base = inBuf.baseAddress else { return 0 }
    if inStart > 0 {
      base.copyMemory(from: base + inStart, byteCount: inEnd - inStart)
      inEnd -= inStart
      inStart = 0
    }
    while inEnd < wanted {
      let n = pread(fd, base + inEnd, inBuf.count - inEnd, offset)
      if n < 0 {
        if errno == EINTR { continue }
        throw .read(errno)
      }
      if n == 0 { break }
      inEnd += n
      offset += off_t(n)
    }
    return inEnd - inStart
  }

  /// Skips `count` input bytes (a skippable frame); false when the file ends first.
  private func skipInput(_ count: UInt64) throws(InputError) -> Bool {
    var left = count
    while left > 0 {
      if inStart == inEnd {
        guard try ensureInput(1) > 0 else { return false }
      }
      let n = Int(min(UInt64(inEnd - inStart), left))
      inStart += n
      left -= UInt64(n)
    }
    return true
  }

  /// Makes the ring large enough for a frame with this window: the window, two blocks (zstd's own
  /// rule, `ZSTD_decodingBufferSize_min`), and room for the blocks libarchive may hold.
  private func prepareRing(window: UInt64) {
    let held = UInt64((PrefetchQueue.depth + 1) * (PrefetchQueue.chunk + Self.blockMax))
    let needed = ZSTD_decodingBufferSize_min(max(window, held), ZSTD_CONTENTSIZE_UNKNOWN)
    guard needed > ring.count else { return }
    if ring.baseAddress != nil { retired.append(ring) }
    // Pages are touched only as blocks are decoded into them: a small frame costs its size.
    ring = UnsafeMutableRawBufferPointer.allocate(byteCount: needed, alignment: 4096)
    ringEnd = 0
  }

  /// Decodes the next blocks into the ring and points `chunk` at them (on the queue's thread): at
  /// least `PrefetchQueue.chunk` bytes where the ring and the frame allow, since zstd's block
  /// splitting makes blocks small (minbase: 5006 blocks, 40 KiB on average), and a hand-over per
  /// block cost 10 % more CPU. A chunk lies in one frame and does not wrap. Every failure is
  /// reported as EILSEQ, the way libarchive reports a damaged stream.
  private func fill(_ chunk: PrefetchQueue.Chunk) -> PrefetchFill {
    func failed(_ message: String) -> PrefetchFill {
      .failed(PrefetchFailure(errno: EILSEQ, message: message))
    }
    func zstdFailed(_ code: Int) -> PrefetchFill {
      let why = String(cString: ZSTD_getErrorName(code))
      return failed("zstd: \(why) near compressed byte \(consumed)")
    }
    // A frame that did not end is a truncated file, not the end of the archive: the bytes decoded
    // so far are handed over first.
    var count = 0
    var truncated: PrefetchFill {
      .end(
        count,
        failure: PrefetchFailure(
          errno: EILSEQ, message: "truncated zstd stream (the file ends inside a frame)"))
    }
    do throws(InputError) {
      while true {
        if atFrameStart {
          if count > 0 { return .more(count) }
          let available = try ensureInput(Int(ZSTD_FRAMEHEADERSIZE_MAX))
          if available == 0 { return .end(0, failure: nil) }
          var header = ZSTD_frameHeader()
          let r = ZSTD_getFrameHeader(&header, inBuf.baseAddress.map { $0 + inStart }, available)
          if ZSTD_isError(r) != 0 { return zstdFailed(r) }
          if r > 0 { return truncated }
          if header.frameType == ZSTD_skippableFrame {
            // The 8-byte magic and length, then the content (zstd 1.5.4 leaves `headerSize` 0
            // for a skippable frame).
            guard try skipInput(8 + header.frameContentSize) else {
              return truncated
            }
            continue
          }
          if header.windowSize > Self.windowMax {
            // zstd's words for `ZSTD_error_frameParameter_windowTooLarge`.
            return failed(
              "zstd: Frame requires too much memory for decoding near compressed byte \(consumed)"
            )
          }
          prepareRing(window: header.windowSize)
          blockSizeMax = Int(header.blockSizeMax)
          let begun = ZSTD_decompressBegin(dctx)
          if ZSTD_isError(begun) != 0 { return zstdFailed(begun) }
          atFrameStart = false
        }
        let needed = ZSTD_nextSrcSizeToDecompress(dctx)
        if needed == 0 {
          atFrameStart = true
          continue
        }
        guard needed <= inBuf.count else {
          return failed("zstd: a block of \(needed) bytes near compressed byte \(offset)")
        }
        if try ensureInput(needed) < needed { return truncated }
        // zstd's own rule for its window buffer: start again at the front when a block might
        // not fit before the end (after handing over what this chunk holds).
        if ringEnd + blockSizeMax > ring.count {
          if count > 0 { return .more(count) }
          ringEnd = 0
        }
        guard let ringBase = ring.baseAddress, let inBase = inBuf.baseAddress else {
          return failed("zstd: no buffer")
        }
        let n = ZSTD_decompressContinue(
          dctx, ringBase + ringEnd, ring.count - ringEnd, inBase + inStart, needed)
        if ZSTD_isError(n) != 0 { return zstdFailed(n) }
        inStart += needed
        if n > 0 {
          if count == 0 { chunk.start = UnsafeRawPointer(ringBase + ringEnd) }
          ringEnd += n
          count += n
          // The frame's checksum, when it follows, is checked before the block is handed over:
          // libarchive stops reading at the archive's end, which may lie in this last block, so
          // a mismatch found on the next call would never be reported.
          if ZSTD_nextInputType(dctx) == ZSTDnit_checksum {
            let size = ZSTD_nextSrcSizeToDecompress(dctx)
            if try ensureInput(size) < size {
              return failed("truncated zstd stream (the file ends inside a frame)")
            }
            let r = ZSTD_decompressContinue(
              dctx, ringBase + ringEnd, ring.count - ringEnd, inBase + inStart, size)
            if ZSTD_isError(r) != 0 { return zstdFailed(r) }
            inStart += size
          }
          if count >= PrefetchQueue.chunk { return .more(count) }
        }
      }
    } catch {
      switch error {
      case .read(let e): return failed("read failed: \(String(cString: strerror(e)))")
      }
    }
  }
}

import CArchive
import CZstd
import Foundation

/// Decompresses a .zst input on a second thread, a few MiB ahead of libarchive, so that on two cores
/// decompression overlaps with packing instead of adding to it (the zstd filter inside libarchive
/// runs on the packing thread). Used only for zstd, the common rootfs format; memory is bounded by
/// `depth` buffers of `chunk` bytes, one compressed input buffer of `inputChunk` bytes, and zstd's
/// own window (the frame's window size: 8 MiB for `zstd -19`, which no streaming reader can avoid).
///
/// The sizes are the smallest that keep the overlap: 1 MiB decompressed ahead is a few milliseconds of
/// packing, and the packing thread never waited longer with more (docs/MEMORY.md, "The fixed
/// baseline": 6 x 1 MiB buffers cost 6 MiB of peak RSS and no time).
final class ZstdPrefetcher: @unchecked Sendable {
  private let fd: Int32
  private let chunk = 256 << 10
  private let depth = 4
  /// zstd reads input a block (128 KiB) at a time; a larger compressed buffer saves no calls.
  private let inputChunk = 128 << 10
  private let cond = NSCondition()
  private var ready: [UnsafeMutableRawBufferPointer] = []  // filled, in order; count in `lengths`
  private var lengths: [Int] = []
  private var free: [UnsafeMutableRawBufferPointer] = []
  private var done = false
  private var failure: String?
  private var stopped = false
  private var current: UnsafeMutableRawBufferPointer?
  /// Compressed bytes consumed so far (for progress against the file size).
  private(set) var compressedBytes: Int64 = 0

  /// nil when `path` does not start with the zstd frame magic (or cannot be opened, or is not a
  /// regular file: a FIFO would block the open, and a stream cannot be read ahead with `pread`).
  init?(path: String) {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return nil }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
      close(fd)
      return nil
    }
    var magic: UInt32 = 0
    guard pread(fd, &magic, 4, 0) == 4, UInt32(littleEndian: magic) == 0xFD2F_B528 else {
      close(fd)
      return nil
    }
    self.fd = fd
    for _ in 0..<depth {
      free.append(UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64))
    }
    let thread = Thread { [self] in self.decompress() }
    thread.stackSize = 1 << 20
    thread.start()
  }

  deinit {
    cond.lock()
    stopped = true
    cond.broadcast()
    while !done { cond.wait() }
    cond.unlock()
    for b in free + ready { b.deallocate() }
    current?.deallocate()
    close(fd)
  }

  /// Stops the prefetch thread (which holds the prefetcher strongly until it returns); the
  /// descriptor and buffers go when the last reference does. Safe to call more than once.
  func cancel() {
    cond.lock()
    stopped = true
    cond.broadcast()
    cond.unlock()
  }

  /// Runs on the prefetch thread until the input ends, fails, or the reader goes away.
  private func decompress() {
    guard let dctx = ZSTD_createDCtx() else { return finish(failure: "zstd: out of memory") }
    defer { ZSTD_freeDCtx(dctx) }
    let inBuf = UnsafeMutableRawBufferPointer.allocate(byteCount: inputChunk, alignment: 64)
    defer { inBuf.deallocate() }
    var input = ZSTD_inBuffer(src: inBuf.baseAddress, size: 0, pos: 0)
    var lastHint = 0
    var offset: off_t = 0
    while true {
      cond.lock()
      while free.isEmpty && !stopped { cond.wait() }
      if stopped {
        cond.unlock()
        return finish(failure: nil)
      }
      let out = free.removeLast()
      cond.unlock()
      var output = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
      var eof = false
      while output.pos < output.size {
        if input.pos == input.size {
          let n = pread(fd, inBuf.baseAddress, inBuf.count, offset)
          if n < 0 {
            if errno == EINTR { continue }
            return finish(
              failure: "read failed: \(String(cString: strerror(errno)))", returning: out)
          }
          if n == 0 {
            eof = true
            break
          }
          offset += off_t(n)
          input = ZSTD_inBuffer(src: inBuf.baseAddress, size: n, pos: 0)
        }
        let hint = ZSTD_decompressStream(dctx, &output, &input)
        if ZSTD_isError(hint) != 0 {
          let why = String(cString: ZSTD_getErrorName(hint))
          return finish(
            failure: "zstd: \(why) near compressed byte \(Int(offset) - input.size + input.pos)",
            returning: out)
        }
        lastHint = hint
      }
      cond.lock()
      compressedBytes = Int64(offset) - Int64(input.size - input.pos)
      if output.pos > 0 {
        ready.append(out)
        lengths.append(output.pos)
      } else {
        free.append(out)
      }
      cond.broadcast()
      cond.unlock()
      if eof {
        // A frame that did not end is a truncated file, not the end of the archive.
        return finish(
          failure: lastHint != 0 ? "truncated zstd stream (the file ends inside a frame)" : nil)
      }
    }
  }

  private func finish(failure: String?, returning buffer: UnsafeMutableRawBufferPointer? = nil) {
    cond.lock()
    if let buffer { free.append(buffer) }
    self.failure = failure
    done = true
    cond.broadcast()
    cond.unlock()
  }

  /// The next decompressed block for libarchive: its bytes stay valid until the next call.
  /// Returns 0 at the end, -1 with `error` set on failure.
  func next(_ out: UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int {
    cond.lock()
    defer { cond.unlock() }
    if let c = current {
      free.append(c)
      current = nil
      cond.broadcast()
    }
    while ready.isEmpty && !done { cond.wait() }
    if ready.isEmpty {
      return failure == nil ? 0 : -1
    }
    let b = ready.removeFirst()
    let n = lengths.removeFirst()
    current = b
    out?.pointee = UnsafeRawPointer(b.baseAddress)
    return n
  }

  var error: String? {
    cond.lock()
    defer { cond.unlock() }
    return failure
  }

  var position: Int64 {
    cond.lock()
    defer { cond.unlock() }
    return compressedBytes
  }

  /// Opens `a` on this prefetcher (libarchive's client-reader callbacks).
  func attach(_ a: OpaquePointer) -> Int32 {
    let ctx = Unmanaged.passUnretained(self).toOpaque()
    return archive_read_open(
      a, ctx, nil,
      { archive, ctx, buffer in
        guard let ctx else { return -1 }
        let me = Unmanaged<ZstdPrefetcher>.fromOpaque(ctx).takeUnretainedValue()
        let n = me.next(buffer)
        if n < 0 {
          ca_set_error(archive, EILSEQ, me.error ?? "zstd: decompression failed")
          return -1
        }
        return n
      }, nil)
  }
}

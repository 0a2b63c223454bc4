import CArchive
import Foundation

/// One buffer's worth of input, as the source of a `PrefetchQueue` produced it on its thread.
enum PrefetchFill {
  /// The buffer holds this many bytes and more may follow.
  case more(Int)
  /// The last bytes (possibly none), then the end, or a failure found at the end (a zstd frame
  /// the file stops inside).
  case end(Int, failure: PrefetchFailure?)
  /// Nothing more can be read; the buffer's bytes are not used.
  case failed(PrefetchFailure)
}

/// A failure of the prefetch thread, handed to libarchive (and from it to the reader's error).
struct PrefetchFailure: Sendable {
  let errno: Int32
  let message: String
}

/// A few buffers between a thread that reads (and, for zstd, decompresses) an input ahead of
/// libarchive and libarchive's read callback, so that reading overlaps with packing on two cores.
/// `ZstdPrefetcher` and `ReadAhead` differ only in how they fill a buffer (`fill`, called on the
/// thread, one buffer at a time, in order). Memory is bounded by `depth` buffers of `chunk` bytes:
/// 4 x 128 KiB; 4 x 256 KiB saved no time on minbase and cost 0.5 MiB of its peak, 4 x 64 KiB was
/// 7 % slower (docs/MEMORY.md, "The fixed baseline" and "Release flags and text order").
final class PrefetchQueue: @unchecked Sendable {
  private let chunk = 128 << 10
  private let depth = 4
  private let fill: (UnsafeMutableRawBufferPointer) -> PrefetchFill
  private let cond = NSCondition()
  private var ready: [(buffer: UnsafeMutableRawBufferPointer, count: Int)] = []
  private var free: [UnsafeMutableRawBufferPointer] = []
  private var done = false
  private var failure: PrefetchFailure?
  private var stopped = false
  private var current: UnsafeMutableRawBufferPointer?
  /// Input bytes consumed so far, as `consumed` reported it after each buffer (progress against
  /// the file size when libarchive's own count is of decompressed bytes).
  private var consumed: Int64 = 0
  private let consumedNow: () -> Int64

  /// Starts the thread. `fill` is called there only; `consumed` right after each `fill`.
  init(
    fill: @escaping (UnsafeMutableRawBufferPointer) -> PrefetchFill,
    consumed: @escaping () -> Int64
  ) {
    self.fill = fill
    self.consumedNow = consumed
    for _ in 0..<depth {
      free.append(UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096))
    }
    let thread = Thread { [self] in self.run() }
    thread.stackSize = 1 << 20
    thread.start()
  }

  /// A regular file at `path`, opened for reading, or nil (a FIFO would block the open and
  /// cannot be read ahead with `pread`; the caller then lets libarchive open it, which reports
  /// why). Opened non-blocking, then set back to blocking so the descriptor behaves plainly.
  static func openRegularFile(_ path: String) -> Int32? {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return nil }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
      close(fd)
      return nil
    }
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    return fd
  }

  deinit {
    cond.lock()
    stopped = true
    cond.broadcast()
    while !done { cond.wait() }
    cond.unlock()
    for b in free { b.deallocate() }
    for r in ready { r.buffer.deallocate() }
    current?.deallocate()
  }

  /// Stops the thread (which holds this queue strongly until it returns); the source and buffers
  /// go when the last reference does. Safe to call more than once.
  func cancel() {
    cond.lock()
    stopped = true
    cond.broadcast()
    cond.unlock()
  }

  /// Runs on the thread until the input ends, fails, or the reader goes away.
  private func run() {
    while true {
      cond.lock()
      while free.isEmpty && !stopped { cond.wait() }
      if stopped { return finish(nil) }
      let buffer = free.removeLast()
      cond.unlock()
      let outcome = fill(buffer)
      cond.lock()
      consumed = consumedNow()
      switch outcome {
      case .more(let n), .end(let n, _):
        if n > 0 {
          ready.append((buffer, n))
        } else {
          free.append(buffer)
        }
      case .failed:
        free.append(buffer)
      }
      switch outcome {
      case .more:
        cond.broadcast()
        cond.unlock()
      case .end(_, let failure):
        finish(failure)
      case .failed(let failure):
        finish(failure)
      }
    }
  }

  /// Called with the lock held; releases it.
  private func finish(_ failure: PrefetchFailure?) {
    self.failure = failure
    done = true
    cond.broadcast()
    cond.unlock()
  }

  /// The next block of input for libarchive: its bytes stay valid until the next call. Returns
  /// 0 at the end, -1 with `failure` set on failure.
  private func next(_ out: UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int {
    cond.lock()
    defer { cond.unlock() }
    if let c = current {
      free.append(c)
      current = nil
      cond.broadcast()
    }
    while ready.isEmpty && !done { cond.wait() }
    if ready.isEmpty { return failure == nil ? 0 : -1 }
    let r = ready.removeFirst()
    current = r.buffer
    out?.pointee = UnsafeRawPointer(r.buffer.baseAddress)
    return r.count
  }

  private var lockedFailure: PrefetchFailure? {
    cond.lock()
    defer { cond.unlock() }
    return failure
  }

  /// Input bytes the thread has consumed so far.
  var position: Int64 {
    cond.lock()
    defer { cond.unlock() }
    return consumed
  }

  /// Opens `a` on this queue (libarchive's client-reader callbacks).
  func attach(_ a: OpaquePointer) -> Int32 {
    let ctx = Unmanaged.passUnretained(self).toOpaque()
    return archive_read_open(
      a, ctx, nil,
      { archive, ctx, buffer in
        guard let ctx else { return -1 }
        let me = Unmanaged<PrefetchQueue>.fromOpaque(ctx).takeUnretainedValue()
        let n = me.next(buffer)
        if n < 0 {
          let failure = me.lockedFailure
          ca_set_error(archive, failure?.errno ?? EIO, failure?.message ?? "read failed")
          return -1
        }
        return n
      }, nil)
  }
}

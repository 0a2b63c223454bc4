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

/// A few blocks of input between a thread that reads (and, for zstd, decompresses) an input ahead
/// of libarchive and libarchive's read callback, so that reading overlaps with packing on two
/// cores. `ZstdPrefetcher` and `ReadAhead` differ only in how they fill a chunk (`fill`, called on
/// the thread, one chunk at a time, in order); the hand-over is a `RecyclingQueue`. `ReadAhead`
/// reads into the chunks' own buffers, `depth` of `chunk` bytes: 4 x 128 KiB; 4 x 256 KiB saved no
/// time on minbase and cost 0.5 MiB of its peak, 4 x 64 KiB was 7 % slower (docs/MEMORY.md, "The
/// fixed baseline" and "Release flags and text order"). `ZstdPrefetcher` points each chunk at a
/// block in its ring and needs no buffers here.
final class PrefetchQueue: @unchecked Sendable {
  static let chunk = 128 << 10
  /// Chunks filled ahead (for zstd, blocks decoded ahead: each at most 128 KiB).
  static let depth = 4

  /// One block of input for libarchive, with the buffer it is usually in.
  final class Chunk {
    /// This chunk's own buffer (empty when the source hands out bytes it keeps elsewhere).
    let buffer: UnsafeMutableRawBufferPointer
    /// Where the bytes are: the buffer's start unless `fill` points elsewhere.
    var start: UnsafeRawPointer?
    var count = 0
    /// Input bytes the source had consumed once this chunk was filled.
    var consumed: Int64 = 0
    init(byteCount: Int) {
      buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 4096)
    }
    deinit { buffer.deallocate() }
  }

  /// How the thread ended: input bytes consumed, and the failure, if any.
  struct Ending {
    var consumed: Int64
    var failure: PrefetchFailure?
  }

  private let queue: RecyclingQueue<Chunk, Ending>
  private let fill: (Chunk) -> PrefetchFill
  private let consumedNow: () -> Int64

  // libarchive's read callback only (the consumer side).
  /// The chunk libarchive is reading: its bytes stay valid until the next callback.
  private var current: Chunk?
  private var ending: Ending?
  /// Input bytes consumed as of the chunk libarchive reads (progress against the file size when
  /// libarchive's own count is of decompressed bytes).
  private var consumed: Int64 = 0

  /// Starts the thread. `fill` is called there only, with a chunk whose `start` is its buffer's
  /// (`chunkBytes` bytes; a source that keeps the bytes elsewhere sets `start` and asks for none);
  /// `consumed` right after each `fill`.
  init(
    chunkBytes: Int = PrefetchQueue.chunk,
    fill: @escaping (Chunk) -> PrefetchFill,
    consumed: @escaping () -> Int64
  ) {
    queue = RecyclingQueue(
      items: (0..<PrefetchQueue.depth).map { _ in Chunk(byteCount: chunkBytes) })
    self.fill = fill
    self.consumedNow = consumed
    // The thread holds this queue (and so the source) until it returns.
    queue.start(stackSize: 1 << 20) { [self] in run() }
  }

  /// Runs on the thread until the input ends, fails, or the reader goes away.
  private func run() -> Ending {
    while let chunk = queue.take() {
      chunk.start = UnsafeRawPointer(chunk.buffer.baseAddress)
      let outcome = fill(chunk)
      chunk.consumed = consumedNow()
      switch outcome {
      case .more(let n):
        chunk.count = n
        queue.put(chunk)
      case .end(let n, let failure):
        chunk.count = n
        if n > 0 { queue.put(chunk) } else { queue.recycle(chunk) }
        return Ending(consumed: chunk.consumed, failure: failure)
      case .failed(let failure):
        queue.recycle(chunk)
        return Ending(consumed: chunk.consumed, failure: failure)
      }
    }
    return Ending(consumed: consumedNow(), failure: nil)
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

  /// Stops the thread (which holds this queue strongly until it returns); the source and buffers
  /// go when the last reference does. Safe to call more than once.
  func cancel() { queue.cancel() }

  /// The next block of input for libarchive: its bytes stay valid until the next call. Returns
  /// 0 at the end, -1 with `ending.failure` set on failure.
  private func next(_ out: UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int {
    if let c = current {
      queue.recycle(c)
      current = nil
    }
    switch queue.next() {
    case .item(let chunk):
      current = chunk
      consumed = chunk.consumed
      out?.pointee = chunk.start
      return chunk.count
    case .end(let ending):
      self.ending = ending
      consumed = ending.consumed
      return ending.failure == nil ? 0 : -1
    }
  }

  /// Input bytes consumed so far (read on the thread that calls libarchive).
  var position: Int64 { consumed }

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
          let failure = me.ending?.failure
          ca_set_error(archive, failure?.errno ?? EIO, failure?.message ?? "read failed")
          return -1
        }
        return n
      }, nil)
  }
}

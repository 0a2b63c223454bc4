import CArchive
import Foundation

/// Reads an archive that is not zstd-compressed on a second thread, a few buffers ahead of
/// libarchive, so that the kernel's copy of the file into memory (about a third of the time
/// libarchive spends on a plain tar of small files) overlaps with packing. zstd inputs go through
/// `ZstdPrefetcher`, which reads and decompresses there. Memory is bounded by `depth` buffers of
/// `chunk` bytes.
final class ReadAhead: @unchecked Sendable {
  private let fd: Int32
  /// 4 x 256 KiB: as much memory as libarchive's own 1 MiB read buffer, which this replaces.
  private let chunk = 256 << 10
  private let depth = 4
  private let cond = NSCondition()
  private var ready: [(buffer: UnsafeMutableRawBufferPointer, count: Int)] = []
  private var free: [UnsafeMutableRawBufferPointer] = []
  private var done = false
  /// errno of a failed read; 0 when none.
  private var failure: Int32 = 0
  private var stopped = false
  private var current: UnsafeMutableRawBufferPointer?

  /// nil when `path` cannot be opened, is not a regular file (the caller then lets libarchive
  /// open it, which reports why), or is not known to be read front to back (`isStreamed`).
  init?(path: String) {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return nil }
    var st = stat()
    var head = [UInt8](repeating: 0, count: 512)
    let headCount = pread(fd, &head, head.count, 0)
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, headCount > 0,
      Self.isStreamed(head: Array(head.prefix(headCount)))
    else {
      close(fd)
      return nil
    }
    // Reads of a regular file never block; clear the flag so the descriptor behaves plainly.
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    self.fd = fd
    for _ in 0..<depth {
      free.append(UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096))
    }
    let thread = Thread { [self] in self.readLoop() }
    thread.stackSize = 256 << 10
    thread.start()
  }

  /// Whether libarchive reads an input starting with `head` strictly in order: a tar (the
  /// "ustar" magic of POSIX and GNU headers), a cpio, or a compressed stream (whose content
  /// libarchive can only stream). Anything else, a zip above all (read from its central directory
  /// at the end when the input can seek), keeps libarchive's own seekable file reader.
  static func isStreamed(head: [UInt8]) -> Bool {
    func starts(_ magic: [UInt8]) -> Bool { head.starts(with: magic) }
    if head.count >= 262 && Array(head[257..<262]) == Array("ustar".utf8) { return true }
    let magics: [[UInt8]] = [
      [0x1F, 0x8B],  // gzip
      [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00],  // xz
      [0x5D, 0x00, 0x00],  // lzma
      Array("BZh".utf8),  // bzip2
      [0x04, 0x22, 0x4D, 0x18],  // lz4
      [0x1F, 0x9D],  // compress
      Array("070701".utf8), Array("070702".utf8), Array("070707".utf8),  // cpio (ASCII)
      [0xC7, 0x71], [0x71, 0xC7],  // cpio (binary)
    ]
    return magics.contains { starts($0) }
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
    close(fd)
  }

  /// Stops the read thread (which holds this object strongly until it returns). Safe to call
  /// more than once.
  func cancel() {
    cond.lock()
    stopped = true
    cond.broadcast()
    cond.unlock()
  }

  /// Runs on the read thread until the file ends, a read fails, or the reader goes away.
  private func readLoop() {
    var offset: off_t = 0
    while true {
      cond.lock()
      while free.isEmpty && !stopped { cond.wait() }
      if stopped { return finish(errno: 0) }
      let buffer = free.removeLast()
      cond.unlock()
      var filled = 0
      var eof = false
      while filled < buffer.count {
        let n = pread(fd, buffer.baseAddress! + filled, buffer.count - filled, offset)
        if n < 0 {
          if errno == EINTR { continue }
          let e = errno
          cond.lock()
          free.append(buffer)
          return finish(errno: e)
        }
        if n == 0 {
          eof = true
          break
        }
        filled += n
        offset += off_t(n)
      }
      cond.lock()
      if filled > 0 {
        ready.append((buffer, filled))
      } else {
        free.append(buffer)
      }
      cond.broadcast()
      if eof { return finish(errno: 0) }
      cond.unlock()
    }
  }

  /// Called with the lock held; releases it.
  private func finish(errno e: Int32) {
    failure = e
    done = true
    cond.broadcast()
    cond.unlock()
  }

  /// The next block of the file for libarchive: its bytes stay valid until the next call.
  /// Returns 0 at the end, -1 with `failure` set when a read failed.
  private func next(_ out: UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int {
    cond.lock()
    defer { cond.unlock() }
    if let c = current {
      free.append(c)
      current = nil
      cond.broadcast()
    }
    while ready.isEmpty && !done { cond.wait() }
    if ready.isEmpty { return failure == 0 ? 0 : -1 }
    let r = ready.removeFirst()
    current = r.buffer
    out?.pointee = UnsafeRawPointer(r.buffer.baseAddress)
    return r.count
  }

  private var failureErrno: Int32 {
    cond.lock()
    defer { cond.unlock() }
    return failure
  }

  /// Opens `a` on this reader (libarchive's client-reader callbacks).
  func attach(_ a: OpaquePointer) -> Int32 {
    let ctx = Unmanaged.passUnretained(self).toOpaque()
    return archive_read_open(
      a, ctx, nil,
      { archive, ctx, buffer in
        guard let ctx else { return -1 }
        let me = Unmanaged<ReadAhead>.fromOpaque(ctx).takeUnretainedValue()
        let n = me.next(buffer)
        if n < 0 {
          let e = me.failureErrno
          ca_set_error(archive, e, "read failed: \(String(cString: strerror(e)))")
          return -1
        }
        return n
      }, nil)
  }
}

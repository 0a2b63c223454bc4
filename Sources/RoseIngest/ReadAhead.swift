import Foundation

/// Reads an archive that is not zstd-compressed on a second thread, a few buffers ahead of
/// libarchive (a `PrefetchQueue`), so that the kernel's copy of the file into memory (about a
/// third of the time libarchive spends on a plain tar of small files) overlaps with packing. zstd
/// inputs go through `ZstdPrefetcher`, which reads and decompresses there.
final class ReadAhead {
  private let fd: Int32
  private var offset: off_t = 0

  /// nil when `path` cannot be opened, is not a regular file (the caller then lets libarchive
  /// open it, which reports why), or is not known to be read front to back (`isStreamed`).
  static func open(path: String) -> PrefetchQueue? {
    guard let fd = PrefetchQueue.openRegularFile(path) else { return nil }
    var head = [UInt8](repeating: 0, count: 512)
    let headCount = pread(fd, &head, head.count, 0)
    guard headCount > 0, isStreamed(head: Array(head.prefix(headCount))) else {
      close(fd)
      return nil
    }
    let source = ReadAhead(fd: fd)
    return PrefetchQueue(fill: { source.fill($0.buffer) }, consumed: { Int64(source.offset) })
  }

  private init(fd: Int32) { self.fd = fd }
  deinit { close(fd) }

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

  /// Fills `buffer` with the file's next bytes (on the queue's thread).
  private func fill(_ buffer: UnsafeMutableRawBufferPointer) -> PrefetchFill {
    var filled = 0
    while filled < buffer.count {
      guard let base = buffer.baseAddress else { break }
      let n = pread(fd, base + filled, buffer.count - filled, offset)
      if n < 0 {
        if errno == EINTR { continue }
        let e = errno
        return .failed(
          PrefetchFailure(errno: e, message: "read failed: \(String(cString: strerror(e)))"))
      }
      if n == 0 { return .end(filled, failure: nil) }
      filled += n
      offset += off_t(n)
    }
    return .more(filled)
  }
}

import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// zstd inputs are decompressed on a second thread: the tree must be the same as through libarchive's
/// own filter, and a truncated or corrupt stream must be refused, never read as a shorter archive.
@Suite struct ZstdPrefetchTests {
  @Test func sameTreeAsUncompressed() throws {
    let plain = try Scratch()
    try ArchiveReader(path: try fixture.dir + "/pax.tar").read(into: plain.editor)
    let zst = try Scratch()
    try ArchiveReader(path: try fixture.dir + "/pax.tar.zst").read(into: zst.editor)
    let want = try describe(plain.editor.root, plain.builder.data)
    let got = try describe(zst.editor.root, zst.builder.data)
    #expect(diff(want, got).isEmpty, "\(diff(want, got).prefix(3))")
  }

  /// The prefetcher hands libarchive 256 KiB buffers: files that start, end and straddle buffer
  /// edges, in a stream of two zstd frames (the second starting mid-file), must read back unchanged.
  @Test func bufferAndFrameEdgesKeepTheBytes() throws {
    let dir = try tempDir("zst-edges")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try sh(
      """
      set -e; cd '\(dir)'; mkdir src
      for n in 1 262143 262144 262145 524288 700001 3 1048577; do head -c $n /dev/urandom > src/f$n; done
      tar -cf t.tar -C src .
      half=$(( $(stat -c %s t.tar) / 2 + 12345 ))
      head -c $half t.tar | zstd -q -c > t.tar.zst; tail -c +$(( half + 1 )) t.tar | zstd -q -c >> t.tar.zst
      """)
    let plain = try Scratch()
    try ArchiveReader(path: dir + "/t.tar").read(into: plain.editor)
    let zst = try Scratch()
    try ArchiveReader(path: dir + "/t.tar.zst").read(into: zst.editor)
    let want = try describe(plain.editor.root, plain.builder.data)
    let got = try describe(zst.editor.root, zst.builder.data)
    #expect(want.count == 9, "\(want.keys.sorted())")
    #expect(diff(want, got).isEmpty, "\(diff(want, got).prefix(3))")
  }

  @Test func truncatedAndCorruptStreamsAreRefused() throws {
    let dir = try tempDir("zst")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // Incompressible data, so that a cut lands inside a frame, not in trailing padding.
    try sh(
      """
      set -e; cd '\(dir)'; mkdir src; head -c 3000000 /dev/urandom > src/blob
      tar -cf t.tar -C src . ; zstd -q --check t.tar -o t.tar.zst
      head -c $(( $(stat -c %s t.tar.zst) / 2 )) t.tar.zst > cut.tar.zst
      cp t.tar.zst bad.tar.zst; printf '\\377\\377\\377\\377' | dd of=bad.tar.zst bs=1 seek=2000000 conv=notrunc status=none
      """)
    for name in ["cut.tar.zst", "bad.tar.zst"] {
      let s = try Scratch()
      #expect(throws: IngestError.self, "\(name) must be refused") {
        try ArchiveReader(path: dir + "/" + name).read(into: s.editor)
      }
    }
    let s = try Scratch()
    try ArchiveReader(path: dir + "/t.tar.zst").read(into: s.editor)
    #expect(s.editor.lookup("blob")?.content.size == 3_000_000)
  }
}

import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// zstd inputs are decompressed on a second thread: the tree must be the same as through libarchive's
/// own filter, and a truncated or corrupt stream must be refused, never read as a shorter archive.
@Suite struct ZstdPrefetchTests {
  /// The trees read from a plain tarball and from its zstd form, described for comparison.
  func readBoth(plain: String, zst: String) throws -> (
    want: [String: String], got: [String: String]
  ) {
    let p = try Scratch()
    try ArchiveReader(path: plain).read(into: p.editor)
    let z = try Scratch()
    try ArchiveReader(path: zst).read(into: z.editor)
    return (
      try describe(p.editor.root, p.builder.data), try describe(z.editor.root, z.builder.data)
    )
  }

  @Test func sameTreeAsUncompressed() throws {
    let (want, got) = try readBoth(
      plain: try fixture.dir + "/pax.tar", zst: try fixture.dir + "/pax.tar.zst")
    #expect(diff(want, got).isEmpty, "\(diff(want, got).prefix(3))")
  }

  /// The prefetcher hands libarchive chunks of whole zstd blocks, up to 128 KiB, from its ring:
  /// files that start, end and straddle chunk edges (the sizes are around multiples of 128 KiB), in a
  /// stream of two zstd frames (the second starting mid-file), must read back unchanged.
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
    let (want, got) = try readBoth(plain: dir + "/t.tar", zst: dir + "/t.tar.zst")
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

  /// The prefetcher decodes into one ring that is also zstd's window: a first frame with a 128 KiB
  /// window (zstd's own ring rule gives it three 128 KiB blocks, fewer than the prefetch queue holds),
  /// then data that refers back nearly all of an 8 MiB window across the ring's wraps, a skippable
  /// frame, a small frame, and a frame with a larger window (the ring grows while libarchive may
  /// still hold blocks of the old one) must all read back as the plain tarball does.
  @Test func ringWrapsFramesAndWindowsKeepTheBytes() throws {
    let dir = try tempDir("zst-ring")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try sh(
      """
      set -e; cd '\(dir)'; mkdir src
      python3 - <<'PY'
      import os
      open('src/0', 'wb').write(os.urandom(3 << 20))
      r = os.urandom((8 << 20) - (200 << 10))
      open('src/a', 'wb').write(r * 3)      # matches 200 KiB short of the window, through wraps
      open('src/b', 'wb').write(os.urandom(200000))
      s = os.urandom(5 << 20)
      open('src/c', 'wb').write(s * 2 + r[:1000000])
      PY
      tar -cf t.tar -C src 0 a b c
      head -c 3000000 t.tar > p0; tail -c +3000001 t.tar | head -c 24000000 > p1
      tail -c +27000001 t.tar | head -c 100000 > p2; tail -c +27100001 t.tar > p3
      zstd -q -3 --zstd=wlog=17 -c p0 > t.tar.zst
      zstd -q -3 --long=23 -c p1 >> t.tar.zst
      python3 -c "import struct, sys; sys.stdout.buffer.write(struct.pack('<II', 0x184D2A53, 5) + b'skip!')" >> t.tar.zst
      zstd -q -1 -c p2 >> t.tar.zst
      zstd -q -3 --long=24 -c p3 >> t.tar.zst
      """)
    let (want, got) = try readBoth(plain: dir + "/t.tar", zst: dir + "/t.tar.zst")
    #expect(want.count == 5, "\(want.keys.sorted())")
    #expect(diff(want, got).isEmpty, "\(diff(want, got).prefix(3))")
  }

  /// A frame asking for a window over 128 MiB is refused (as zstd's streaming decoder and bsdtar
  /// refuse it by default), with zstd's words, before anything is allocated for it.
  @Test func aWindowOverTheLimitIsRefused() throws {
    let dir = try tempDir("zst-window")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try sh(
      """
      set -e; cd '\(dir)'; mkdir src; head -c 100000 /dev/urandom > src/f
      tar -cf - -C src . | zstd -q --long=28 -c > big.tar.zst
      """)
    let s = try Scratch()
    #expect {
      try ArchiveReader(path: dir + "/big.tar.zst").read(into: s.editor)
    } throws: { error in
      "\(error)".contains("Frame requires too much memory for decoding")
    }
  }
}

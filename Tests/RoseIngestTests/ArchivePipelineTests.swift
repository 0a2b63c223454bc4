import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// libarchive runs on a reading thread that hands entries and data to the packing thread in batches
/// (`ArchivePipeline`, issue 10): small data is copied into a batch, split where a batch fills, and
/// large blocks are handed over in place. Whatever the path, every file must arrive whole, and an
/// error must stop reading wherever the reading thread has got to.
@Suite struct ArchivePipelineTests {
  /// Files larger than a batch, files just above and below the in-place size, and many small ones,
  /// through each prefetch path: a plain tar (read ahead), gzip (decompressed in libarchive) and
  /// zstd (decompressed on the prefetch thread). Each file reads back as its source.
  @Test func filesOfEverySizeArriveWhole() throws {
    let dir = try tempDir("pipeline")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let sizes =
      [
        ArchivePipeline.batchBytes * 4 + 3, ArchivePipeline.batchBytes + 1,
        ArchivePipeline.inPlaceMinimum + 1, ArchivePipeline.inPlaceMinimum - 1, 300_000, 0, 1,
      ] + (0..<400).map { ($0 * 7919) % 3000 + 1 }
    try sh(
      """
      set -e
      mkdir -p \(dir)/src/d
      python3 - <<'PY'
      import random
      r = random.Random(10)
      for i, n in enumerate([\(sizes.map(String.init).joined(separator: ","))]):
          open('\(dir)/src/d/f%04d' % i, 'wb').write(bytes(r.getrandbits(8) for _ in range(n)))
      PY
      tar --format=gnu -cf \(dir)/a.tar -C \(dir)/src d
      gzip -c \(dir)/a.tar > \(dir)/a.tar.gz
      zstd -q -c \(dir)/a.tar > \(dir)/a.tar.zst
      """)
    for archive in ["a.tar", "a.tar.gz", "a.tar.zst"] {
      let s = try Scratch()
      try ArchiveReader(path: dir + "/" + archive).read(into: s.editor)
      for i in sizes.indices {
        let name = String(format: "d/f%04d", i)
        let want = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/src/" + name)))
        let inode = try #require(s.editor.lookup(name), "\(archive): \(name) missing")
        #expect(inode.content.size == UInt64(want.count), "\(archive): \(name)")
        #expect(try s.builder.data.readBack(inode.content) == want, "\(archive): \(name)")
      }
    }
  }

  /// An entry the tree refuses, with far more entries after it than the batches hold: the reading
  /// thread is waiting for a free batch when the packing thread throws. The error is the entry's,
  /// the entries before it are in the tree, and `read` returns (the reading thread stops).
  @Test(.timeLimit(.minutes(1))) func anErrorStopsTheReadingThreadWhereverItIs() throws {
    let dir = try tempDir("pipeline-error")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let after = ArchivePipeline.maxItems * (ArchivePipeline.depth + 2)
    try sh(
      """
      python3 - <<'PY'
      import io, tarfile
      with tarfile.open('\(dir)/bad.tar', 'w', format=tarfile.USTAR_FORMAT) as t:
          def add(name, data):
              info = tarfile.TarInfo(name)
              info.size = len(data)
              t.addfile(info, io.BytesIO(data))
          for i in range(8):
              add('ok/%d' % i, b'x' * (i * 100))
          add('ok/../../evil', b'boom')
          for i in range(\(after)):
              add('late/%d' % i, b'y' * (i % 50))
      PY
      """)
    let s = try Scratch()
    let reader = ArchiveReader(path: dir + "/bad.tar")
    #expect {
      try reader.read(into: s.editor)
    } throws: { error in
      guard case IngestError.dotDotComponent(_, let entry) = error else { return false }
      return entry == Array("ok/../../evil".utf8)
    }
    for i in 0..<8 {
      #expect(s.editor.lookup("ok/\(i)")?.content.size == UInt64(i * 100), "ok/\(i)")
    }
    #expect(s.editor.lookup("late") == nil)
  }
}

import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// FORMAT.md section 7: times are stored as a Linux timespec (seconds rounded down, nanoseconds
/// 0..999999999), while pax records and libarchive use sign and magnitude. A time before 1970 with
/// nanoseconds must come back from an export as the same pax value it went in as.
@Suite struct NegativeTimeTests {
  @Test func paxTimeBefore1970KeepsItsValueThroughImageAndExport() throws {
    let dir = try tempDir("negtime")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // Python's tarfile writes the pax mtime record literally: "-1234567889.012345679".
    let script = """
      import tarfile, io
      t = tarfile.open('\(dir)/in.tar', 'w', format=tarfile.PAX_FORMAT)
      i = tarfile.TarInfo('old.txt'); i.size = 3
      i.pax_headers = {'mtime': '-1234567889.012345679'}
      t.addfile(i, io.BytesIO(b'old'))
      t.close()
      """
    try script.write(toFile: dir + "/make.py", atomically: true, encoding: .utf8)
    _ = try sh("python3 '\(dir)/make.py'")

    let s = try Scratch()
    try ArchiveReader(path: dir + "/in.tar").read(into: s.editor)
    _ = try s.builder.finish(subvolumes: [Subvolume(name: "a", root: s.editor.root)])
    let image = try ImageFile(openPath: s.dir + "/image")
    #expect(Fsck.check(image: image).isEmpty)
    let reader = try ImageReader(image: image)
    let ino = try reader.lookup("/old.txt", head: 0)
    let rec = try reader.readInodeRecord(ino, head: 0)
    #expect(rec.mtime == Timestamp(seconds: -1_234_567_890, nanoseconds: 987_654_321))

    try TarExporter().export(
      root: try reader.loadTree(head: 0), source: reader, to: dir + "/out.tar")
    let back = try sh(
      "python3 -c \"import tarfile; t = tarfile.open('\(dir)/out.tar'); print(t.getmember('./old.txt').pax_headers.get('mtime'))\""
    )
    #expect(back.trimmingCharacters(in: .whitespacesAndNewlines) == "-1234567889.012345679")
  }
}

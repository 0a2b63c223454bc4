import Foundation
import RoseFS
import Testing

@testable import RoseIngest

@Suite struct TarExporterTests {
  @Test func roundTripThroughExport() throws {
    let dir = try tempDir("export")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let src = try Scratch()
    try DirectoryReader(path: try fixture.src).read(into: src.editor)
    let out = dir + "/out.tar"
    try TarExporter().export(root: src.editor.root, source: src.builder.data, to: out)
    // Sparse file exported as sparse: the tarball stays small.
    let size = try FileManager.default.attributesOfItem(atPath: out)[.size] as! Int
    #expect(size < 1 << 20)
    #expect(!FileManager.default.fileExists(atPath: out + ".tmp-\(getpid())"))

    // Same tree, same bytes.
    try TarExporter().export(
      root: src.editor.root, source: src.builder.data, to: dir + "/again.tar")
    try sh("cmp '\(out)' '\(dir)/again.tar'")

    // Re-ingest: every field, ctime and hard links included.
    var f = Fields()
    f.ctime = true
    let back = try Scratch()
    try ArchiveReader(path: out).read(into: back.editor)
    let d = diff(
      try describe(src.editor.root, src.builder.data, f),
      try describe(back.editor.root, back.builder.data, f))
    #expect(d.isEmpty, "\(d.joined(separator: "\n"))")

    // Other tools read it: bsdtar lists it, GNU tar extracts it to the same tree.
    let listing = try sh("LC_ALL=C.UTF-8 bsdtar -tvf '\(out)'")
    #expect(listing.contains("./f4097 link to ./d/hardlink"))
    #expect(listing.contains("100000") && listing.contains("200000"))
    try sh(
      "mkdir '\(dir)/x' && tar --xattrs --xattrs-include='*' --acls --numeric-owner -xpf '\(out)' -C '\(dir)/x'"
    )
    let ex = try Scratch()
    try DirectoryReader(path: dir + "/x").read(into: ex.editor)
    let d2 = diff(
      try describe(src.editor.root, src.builder.data), try describe(ex.editor.root, ex.builder.data)
    )
    #expect(d2.isEmpty, "\(d2.joined(separator: "\n"))")
    let blocks = try sh("stat -c %b '\(dir)/x/sparse'")
    #expect((Int(blocks.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .max) < 1000)
  }

  @Test func compressedExport() throws {
    let dir = try tempDir("exportz")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let s = try Scratch()
    try s.editor.addInline(Array(repeating: 65, count: 5000), at: b("a/b"))
    for c: TarExporter.Compression in [.gzip, .xz, .zstd] {
      let out = dir + "/o.tar.\(c)"
      try TarExporter(compression: c).export(root: s.editor.root, source: s.builder.data, to: out)
      let back = try Scratch()
      try ArchiveReader(path: out).read(into: back.editor)
      #expect(
        try back.builder.data.readBack(back.editor.lookup("a/b")!.content)
          == Array(repeating: 65, count: 5000))
    }
    try TarExporter(compression: .gzip).export(
      root: s.editor.root, source: s.builder.data, to: dir + "/g2")
    try sh("cmp '\(dir)/o.tar.gzip' '\(dir)/g2'")
  }
}

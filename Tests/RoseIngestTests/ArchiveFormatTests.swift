import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// Every archive format and compression libarchive reads by itself (`ArchiveFormats`), each made by
/// bsdtar from one small tree and read back against that tree, in the fields the format keeps.
@Suite struct ArchiveFormatTests {
  /// One way to archive the tree: the bsdtar options, what the format keeps and which paths it
  /// cannot hold.
  struct Case: CustomTestStringConvertible, Sendable {
    var file: String
    var bsdtar: String
    var fields: Fields
    var onlyPaths: Set<String>? = nil
    var testDescription: String { file }
  }

  static func fields(perms: Bool = true, owner: Bool = true, links: Bool = true) -> Fields {
    var f = Fields()
    f.perms = perms
    f.owner = owner
    f.links = links
    f.nsec = false
    f.xattrs = false
    f.devices = false
    return f
  }

  static let cases: [Case] = [
    // 7-Zip keeps no owners and no hard links; its index is at the end (the input is opened seekable).
    Case(file: "a.7z", bsdtar: "--format 7zip", fields: fields(owner: false, links: false)),
    // bsdtar's Rock Ridge ("useful") makes every file readable and none writable.
    Case(file: "a.iso", bsdtar: "--format iso9660", fields: fields(perms: false)),
    Case(file: "a.xar", bsdtar: "--format xar", fields: fields()),
    // WARC holds regular files only, without owners or modes.
    Case(
      file: "a.warc", bsdtar: "--format warc",
      fields: fields(perms: false, owner: false, links: false),
      onlyPaths: ["f5000", "d/sub/hi", "d/hard"]),
    // ar holds flat regular files.
    Case(
      file: "a.ar", bsdtar: "--format ar", fields: fields(owner: false, links: false),
      onlyPaths: ["f5000"]),
    Case(file: "a.tar.lz", bsdtar: "--format pax --lzip", fields: fields()),
    Case(file: "a.tar.uu", bsdtar: "--format pax --uuencode", fields: fields()),
    Case(file: "a.cpio.lzma", bsdtar: "--format odc --lzma", fields: fields()),
  ]

  /// The tree every case archives: a file, a hard link to it, a symlink, a directory with an owned file.
  static func makeTree(_ dir: String) throws {
    try sh(
      """
      set -e; cd '\(dir)'; mkdir -p src/d/sub; cd src
      head -c 5000 /dev/urandom > f5000; echo hi > d/sub/hi; ln -s ../f5000 d/link; ln f5000 d/hard
      chmod 640 d/sub/hi; chown 123:456 d/sub/hi
      touch -h -d '2021-03-04 05:06:07' f5000 d/sub/hi d/link
      """)
  }

  @Test(arguments: cases) func readsWhatTheFormatKeeps(_ c: Case) throws {
    let dir = try tempDir("formats")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.makeTree(dir)
    let members = c.onlyPaths.map { $0.sorted().joined(separator: " ") } ?? "."
    try sh("cd '\(dir)/src' && bsdtar \(c.bsdtar) -cf ../\(c.file) \(members) 2>/dev/null")
    let want = try {
      let s = try Scratch()
      try DirectoryReader(path: dir + "/src").read(into: s.editor)
      return try describe(s.editor.root, s.builder.data, c.fields)
    }()
    let s = try Scratch()
    try ArchiveReader(path: dir + "/" + c.file).read(into: s.editor)
    let got = try describe(s.editor.root, s.builder.data, c.fields)
    // Directories a format cannot hold are made by rosepack; their lines are not compared.
    let compared = Set(want.keys).filter { key in
      c.onlyPaths.map { $0.contains(key) } ?? (key != ".")
    }
    let d = diff(
      want.filter { compared.contains($0.key) }, got.filter { compared.contains($0.key) })
    #expect(d.isEmpty, "\(c.file):\n\(d.joined(separator: "\n"))")
    #expect(got["f5000"]?.contains("data=") == true, "\(got)")
  }

  /// An mtree manifest names files on this machine, which libarchive would open from the working
  /// directory: refused, and the message lists what is read.
  @Test func mtreeManifestsAreRefused() throws {
    let dir = try tempDir("formats")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.makeTree(dir)
    try sh("cd '\(dir)/src' && bsdtar --format mtree -cf ../a.mtree .")
    let s = try Scratch()
    #expect {
      try ArchiveReader(path: dir + "/a.mtree").read(into: s.editor)
    } throws: { error in
      let m = "\(error)"
      return m.contains(dir + "/a.mtree") && m.contains("7-Zip") && m.contains("lzip")
    }
  }
}

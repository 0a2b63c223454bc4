import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// The source tree as DirectoryReader sees it: the ground truth the archives are compared with.
func readSource() throws -> (Scratch, [String: String]) {
  let s = try Scratch()
  try DirectoryReader(path: try fixture.src).read(into: s.editor)
  return (s, try describe(s.editor.root, s.builder.data))
}

func readArchive(_ name: String, _ f: Fields = Fields()) throws -> (Scratch, [String: String]) {
  let s = try Scratch()
  try ArchiveReader(path: try fixture.dir + "/" + name).read(into: s.editor)
  return (s, try describe(s.editor.root, s.builder.data, f))
}

func truth(_ f: Fields) throws -> [String: String] {
  let s = try Scratch()
  try DirectoryReader(path: try fixture.src).read(into: s.editor)
  return try describe(s.editor.root, s.builder.data, f)
}

@Suite struct DirectoryReaderTests {
  @Test func readsEveryTypeAndAttribute() throws {
    let s = try Scratch()
    try DirectoryReader(path: try fixture.src).read(into: s.editor)
    let e = s.editor
    let data = s.builder.data
    for (n, size) in [
      ("f0", 0), ("f1", 1), ("f368", 368), ("f4095", 4095), ("f4096", 4096), ("f4097", 4097),
      ("f8192", 8192),
    ] {
      let i = try #require(e.lookup(n))
      #expect(i.kind == .regular)
      #expect(i.content.size == UInt64(size))
      let want = try Array(Data(contentsOf: URL(fileURLWithPath: try fixture.src + "/" + n)))
      #expect(try data.readBack(i.content) == want, "\(n)")
    }
    #expect(e.lookup("tmp")?.permissions == 0o1777)
    #expect(e.lookup("sg")?.permissions == 0o2755)
    #expect(e.lookup("suid")?.permissions == 0o4755)
    #expect(e.lookup("f4095")?.uid == 100000)
    #expect(e.lookup("f4095")?.gid == 200000)
    let f1 = try #require(e.lookup("f1"))
    #expect(f1.mtime == Timestamp(seconds: 946_684_799, nanoseconds: 500_000_000))
    #expect(e.lookup("f368")?.mtime.nanoseconds == 123_456_789)
    #expect(e.lookup("f368")?.xattrs == [Xattr("user.bin", [0, 0xFF, 1, 2])])
    #expect(
      e.lookup("suid")?.xattrs == [
        Xattr("security.capability", [1, 0, 0, 2, 0, 4] + [UInt8](repeating: 0, count: 14))
      ]
    )
    let acl = try #require(
      e.lookup("f8192")?.xattrs.first { $0.name == Array("system.posix_acl_access".utf8) })
    let entries = try #require(PosixACL.decode(acl.value))
    #expect(entries.contains(PosixACL.Entry(tag: 2, perm: 7, id: 1234)))
    #expect(entries.contains(PosixACL.Entry(tag: 8, perm: 5, id: 5678)))
    #expect(
      e.lookup("d")?.xattrs.contains { $0.name == Array("system.posix_acl_default".utf8) } == true)
    let link = try #require(e.lookup("longlink"))
    #expect(link.kind == .symlink && link.content.size == 4095)
    #expect(try data.readBack(e.lookup("d/rel")!.content) == Array("../f1".utf8))
    #expect(e.lookup([0x62, 0x61, 0x64, 0xFF] as [UInt8])?.content.size == 1)
    #expect(e.lookup(n255)?.content.size == 4)
    #expect(
      e.lookup("cdev").map { ($0.kind, $0.rdevMajor, $0.rdevMinor) }! == (.characterDevice, 1, 3))
    #expect(e.lookup("bdev").map { ($0.kind, $0.rdevMajor, $0.rdevMinor) }! == (.blockDevice, 7, 0))
    #expect(e.lookup("fifo")?.kind == .fifo)
    #expect(e.lookup("f4097") === e.lookup("d/hardlink"))
    #expect(e.names(of: e.lookup("f4097")!) == 2)
    let sparse = try #require(e.lookup("sparse"))
    #expect(sparse.content.size == 2 << 30)
    #expect(sparse.content.blockCount <= 2)
    var got: [UInt8] = []
    try StoredPieces.forEach(sparse.content, data) { b, off in
      for (i, x) in b.enumerated() where x != 0 {
        #expect(off + UInt64(i) >= 1 << 30)
        got.append(x)
      }
    }
    #expect(got == Array("8bytes!!".utf8))
  }

  @Test func socketsAndDeterminism() throws {
    let d = try tempDir("sock")
    defer { try? FileManager.default.removeItem(atPath: d) }
    try sh(
      "cd \(d) && python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('sock')\" && echo hi > b && echo a > a"
    )
    let s1 = try Scratch()
    try DirectoryReader(path: d).read(into: s1.editor, at: Array("opt/x".utf8))
    #expect(s1.editor.lookup("opt/x/sock")?.kind == .socket)
    #expect(s1.editor.lookup("opt")?.permissions == 0o755)
    let s2 = try Scratch()
    try DirectoryReader(path: d).read(into: s2.editor, at: Array("opt/x".utf8))
    #expect(s1.editor.lookup("opt/x/b")?.ino == s2.editor.lookup("opt/x/b")?.ino)
    #expect(s1.editor.lookup("opt/x/a")!.ino < s1.editor.lookup("opt/x/b")!.ino)
  }
}

@Suite struct ArchiveReaderTests {
  @Test(arguments: [
    "pax.tar", "pax.tar.gz", "pax.tar.xz", "pax.tar.zst", "pax.tar.bz2", "pax.tar.lz4",
  ])
  func gnuPax(_ name: String) throws {
    var f = Fields()
    f.ctime = true
    let want = try truth(f)
    let (_, got) = try readArchive(name, f)
    let d = diff(want, got)
    #expect(d.isEmpty, "\(d.joined(separator: "\n"))")
  }

  @Test(arguments: ["pax01.tar", "pax10.tar"])
  func paxSparseVersions(_ name: String) throws {
    var f = Fields()
    f.xattrs = false
    let d = diff(try truth(f), try readArchive(name, f).1)
    #expect(d.isEmpty, "\(d.joined(separator: "\n"))")
    let s = try Scratch()
    try ArchiveReader(path: try fixture.dir + "/" + name).read(into: s.editor)
    #expect(try #require(s.editor.lookup("sparse")).content.blockCount <= 2)
  }

  @Test func bsdtarPax() throws {
    let f = Fields()
    let d = diff(try truth(f), try readArchive("bsd.tar", f).1)
    #expect(d.isEmpty, "\(d.joined(separator: "\n"))")
  }

  @Test(arguments: ["gnu.tar", "gnu.tgz"])
  func gnuFormat(_ name: String) throws {
    var f = Fields()
    f.nsec = false
    f.xattrs = false
    let d = diff(try truth(f), try readArchive(name, f).1)
    #expect(d.isEmpty, "\(d.joined(separator: "\n"))")
  }

  @Test func ustar() throws {
    var f = Fields()
    f.nsec = false
    f.xattrs = false
    let d = diff(
      try truth(f), try readArchive("ustar.tar", f).1, ignoring: ["sparse", "longlink", n255])
    #expect(d.isEmpty, "\(d.joined(separator: "\n"))")
  }

  @Test func cpioNewc() throws {
    var f = Fields()
    f.nsec = false
    f.xattrs = false
    let d = diff(try truth(f), try readArchive("newc.cpio", f).1, ignoring: ["sparse"])
    #expect(d.isEmpty, "\(d.joined(separator: "\n"))")
  }

  @Test func zip() throws {
    var f = Fields()
    f.nsec = false
    f.xattrs = false
    f.links = false
    let d = diff(
      try truth(f), try readArchive("files.zip", f).1,
      ignoring: ["sparse", "cdev", "bdev", "fifo", "."])
    #expect(d.isEmpty, "\(d.joined(separator: "\n"))")
  }

  @Test func progressIsReported() throws {
    let s = try Scratch()
    nonisolated(unsafe) var last = IngestProgress(bytesRead: 0, totalBytes: nil, entries: 0)
    try ArchiveReader(path: try fixture.dir + "/pax.tar.zst") { last = $0 }.read(into: s.editor)
    let size =
      try FileManager.default.attributesOfItem(atPath: try fixture.dir + "/pax.tar.zst")[.size]
      as! Int
    #expect(last.totalBytes == Int64(size))
    #expect(last.bytesRead == Int64(size))
    #expect(last.entries > 20)
  }
}

import CChecksum
import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// Input -> image -> read back -> export -> compare: every path, type, byte, mode, owner, time, xattr,
/// link target, device number and hard-link group, for both subvolumes; fsck clean on every image.
@Suite struct RoundTripTests {
  /// Packs the scratch tree as subvolumes a and b (b a snapshot) and reopens it.
  func pack(_ s: Scratch, root: Inode? = nil) throws -> ImageReader {
    let r = root ?? s.editor.root
    _ = try s.builder.finish(subvolumes: [
      Subvolume(name: "a", root: r), Subvolume(name: "b", root: r),
    ])
    let image = try ImageFile(openPath: s.dir + "/image")
    let problems = Fsck.check(image: image)
    #expect(problems.isEmpty, "fsck: \(problems.prefix(5))")
    return try ImageReader(image: image)
  }

  @Test func directoryTreeSurvivesImageAndExport() throws {
    let s = try Scratch()
    try DirectoryReader(path: try fixture.src).read(into: s.editor)
    var fields = Fields()
    fields.ctime = true
    let want = try describe(s.editor.root, s.builder.data, fields)
    let reader = try pack(s)
    for name in ["a", "b"] {
      let head = try reader.headIndex(named: name)
      let got = try describe(try reader.loadTree(head: head), reader, fields)
      #expect(diff(want, got).isEmpty, "subvolume \(name): \(diff(want, got).prefix(5))")
    }
    // Export the image's subvolume b and ingest the tarball again: the same tree.
    let out = try tempDir("export") + "/b.tar"
    defer {
      try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent)
    }
    try TarExporter().export(
      root: try reader.loadTree(head: reader.headIndex(named: "b")), source: reader, to: out)
    let again = try Scratch()
    try ArchiveReader(path: out).read(into: again.editor)
    let back = try describe(again.editor.root, again.builder.data, fields)
    #expect(diff(want, back).isEmpty, "export: \(diff(want, back).prefix(5))")
    // bsdtar, an independent reader, sees the same paths.
    let listed = try sh(
      "bsdtar -tf '\(out)' | sed -e 's,^\\./,,' -e 's,/$,,' | grep -v '^\\.\\?$' | LC_ALL=C sort")
    let paths = want.keys.filter { $0 != "." }.map { $0 }.sorted {
      Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8))
    }
    #expect(listed.split(separator: "\n").count == paths.count)
  }

  @Test func tailPackingEdgesAndDirectorySizes() throws {
    let s = try Scratch()
    let b = s.builder
    let t = Timestamp(seconds: 1_600_000_000, nanoseconds: 999_999_999)
    let root = s.editor.root
    for size in [
      0, 1, 367, 368, 369, 2048, 4031, 4032, 4033, 4095, 4096, 4097, 8191, 8192, 8193, 65537,
    ] {
      let f = b.makeInode(kind: .regular, permissions: 0o640, uid: 4_000_000_000, gid: 7, mtime: t)
      f.content = try b.data.store(
        (0..<size).map { UInt8(truncatingIfNeeded: $0 * 31 + size) }, ino: f.ino)
      root.children[Name("f\(size)")] = f
    }
    // Directories of 0, 1, the inline limit (368 bytes of 8-byte headers + names), and 100,000 entries.
    let counts = [0, 1, 368 / (8 + 5), 100_000]
    for n in counts {
      let d = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
      root.children[Name("d\(n)")] = d
      for i in 0..<n {
        let c = b.makeInode(kind: .fifo, permissions: 0o600, mtime: t)
        d.children[Name(String(format: "e%04d", i % 10_000) + (i >= 10_000 ? "-\(i)" : ""))] = c
      }
    }
    let want = try describe(root, b.data)
    let reader = try pack(s)
    let got = try describe(try reader.loadTree(head: 0), reader)
    #expect(diff(want, got).isEmpty, "\(diff(want, got).prefix(5))")
    // O(log n) lookups in the big directory, and the inline-limit directory stays inline.
    let big = try reader.lookup("/d100000/e0042-90042", head: 0)
    #expect(try reader.readInodeRecord(big, head: 0).kind == .fifo)
    let small = try reader.readInodeRecord(try reader.lookup("/d28", head: 0), head: 0)
    #expect(small.has(InodeFlag.inlineDentry))
  }

  /// The real Debian minbase rootfs, when ../shared/datasets is present (reported as skipped if not).
  @Test(.enabled(if: FileManager.default.fileExists(atPath: minbaseTarball)))
  func minbaseRoundTrip() throws {
    let tarball = minbaseTarball
    let s = try Scratch()
    try ArchiveReader(path: tarball).read(into: s.editor)
    let want = try fastDescribe(s.editor.root, s.builder.data)
    let reader = try pack(s)
    for head in 0..<2 {
      let got = try fastDescribe(try reader.loadTree(head: head), reader)
      #expect(diff(want, got).isEmpty, "\(diff(want, got).prefix(5))")
    }
    #expect(want.count > 6700)
  }
}

/// `../shared/datasets/minbase.tar.zst` beside the repository.
let minbaseTarball = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
    "shared/datasets/minbase.tar.zst"
  ).path

/// Like `describe`, with CRC-32C of the content (fast enough for 200 MB in a debug build).
func fastDescribe(_ root: Inode, _ source: ContentSource) throws -> [String: String] {
  var out: [String: String] = [:]
  var firstName: [ObjectIdentifier: String] = [:]
  try TreeEditor.walk(root, prefix: []) { path, i in
    let p = Name.printable(path)
    var s =
      "\(i.kind) \(String(i.permissions, radix: 8)) \(i.uid):\(i.gid) \(i.mtime.seconds).\(i.mtime.nanoseconds)"
    s += " x=\(i.xattrs.count) dev=\(i.rdevMajor),\(i.rdevMinor)"
    if i.kind == .regular || i.kind == .symlink {
      var crc: UInt32 = 0xFFFF_FFFF
      var next: UInt64 = 0
      try source.readContent(i.content) { b, off in
        precondition(off >= next)
        let zeros = [UInt8](repeating: 0, count: 4096)
        while next < off {
          let n = Int(min(4096, off - next))
          crc = zeros.withUnsafeBytes { rose_crc32c_update(crc, $0.baseAddress, n) }
          next += UInt64(n)
        }
        crc = rose_crc32c_update(crc, b.baseAddress, b.count)
        next += UInt64(b.count)
      }
      let zeros = [UInt8](repeating: 0, count: 4096)
      while next < i.content.size {
        let n = Int(min(4096, i.content.size - next))
        crc = zeros.withUnsafeBytes { rose_crc32c_update(crc, $0.baseAddress, n) }
        next += UInt64(n)
      }
      s += " size=\(i.content.size) crc=\(crc)"
    }
    if i.kind != .directory {
      let id = ObjectIdentifier(i)
      if let f = firstName[id] { s += " link=\(f)" } else { firstName[id] = p }
    }
    out[p] = s
  }
  return out
}

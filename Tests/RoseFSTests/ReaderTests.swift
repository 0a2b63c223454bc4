import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// A packed test image in a temporary file; removed on deinit.
final class TestImage {
  let path: String
  let report: BuildReport
  let image: ImageFile
  let fd: Int32

  init(
    options: BuildOptions = BuildOptions(sourceDateEpoch: 1_700_000_000),
    _ build: (ImageBuilder) throws -> [Subvolume]
  ) throws {
    path = NSTemporaryDirectory() + "rosefs-test-\(UUID().uuidString).img"
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
    let b = try ImageBuilder(image: ImageFile(fd: fd, path: path), options: options)
    let subs = try build(b)
    report = try b.finish(subvolumes: subs, defaultSubvolume: 0)
    image = try ImageFile(openPath: path, writable: true)
  }

  deinit {
    close(fd)
    unlink(path)
  }

  func reader() throws -> ImageReader { try ImageReader(image: image) }
}

/// Deterministic pseudo-random bytes.
func testBytes(_ n: Int, seed: UInt64) -> [UInt8] {
  var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  var out = [UInt8](repeating: 0, count: n)
  for i in 0..<n {
    x ^= x << 13
    x ^= x >> 7
    x ^= x << 17
    out[i] = UInt8(truncatingIfNeeded: x)
  }
  return out
}

/// The tree every reader and fsck test packs: every size class, kind, directory form and xattr form.
struct SampleTree {
  static let sizes = [0, 1, 368, 369, 2049, 4095, 4096, 4097, 8192]
  static let sparseSize: UInt64 = 10 << 20
  static let bigDirEntries = 2000

  static func fileName(_ n: Int) -> Name { Name("f\(n)") }

  static func build(_ b: ImageBuilder, bigDir: Int = bigDirEntries, snapshots: Bool = true) throws
    -> [Subvolume]
  {
    let t = Timestamp(seconds: 1_700_000_000, nanoseconds: 5)
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    for (i, n) in sizes.enumerated() {
      let f = b.makeInode(
        kind: .regular, permissions: 0o644, uid: 1000, gid: 100, mtime: Timestamp(seconds: Int64(i))
      )
      f.content = try b.data.store(testBytes(n, seed: UInt64(n)), ino: f.ino)
      root.children[fileName(n)] = f
    }
    // Sparse: bytes at 0, in the middle and at the end.
    let sp = b.makeInode(kind: .regular, permissions: 0o600, mtime: t)
    try b.data.beginFile(ino: sp.ino, size: sparseSize)
    try b.data.write(Array("start".utf8), at: 0)
    try b.data.write(testBytes(5000, seed: 7), at: 5 << 20)
    try b.data.write(Array("end!".utf8), at: sparseSize - 4)
    sp.content = try b.data.finishFile()
    root.children[Name("sparse")] = sp
    // Directories of 0, 1, the inline limit, and many entries.
    let d0 = b.makeInode(kind: .directory, permissions: 0o700, mtime: t)
    root.children[Name("d0")] = d0
    let d1 = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    let inner = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
    inner.content = try b.data.store(Array("inner\n".utf8), ino: inner.ino)
    d1.children[Name("inner")] = inner
    root.children[Name("d1")] = d1
    // 33 entries of 8 + 3 bytes = 363 bytes: the largest inline directory with 3-byte names.
    let dInline = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    for i in 0..<33 {
      let e = b.makeInode(kind: .fifo, permissions: 0o644, mtime: t)
      dInline.children[Name(String(format: "n%02d", i))] = e
    }
    root.children[Name("dinline")] = dInline
    let big = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    for i in 0..<bigDir {
      let e = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
      big.children[Name("entry-\(i)")] = e
    }
    root.children[Name("big")] = big
    // Every kind.
    let chr = b.makeInode(kind: .characterDevice, permissions: 0o666, mtime: t)
    chr.rdevMajor = 1
    chr.rdevMinor = 3
    root.children[Name("null")] = chr
    let blk = b.makeInode(kind: .blockDevice, permissions: 0o660, mtime: t)
    blk.rdevMajor = 8
    blk.rdevMinor = 1
    root.children[Name("sda1")] = blk
    root.children[Name("fifo")] = b.makeInode(kind: .fifo, permissions: 0o644, mtime: t)
    root.children[Name("sock")] = b.makeInode(kind: .socket, permissions: 0o755, mtime: t)
    let ln = b.makeInode(kind: .symlink, permissions: 0o777, mtime: t)
    ln.content = try b.data.store(Array("f1".utf8), ino: ln.ino)
    root.children[Name("link")] = ln
    let longLink = b.makeInode(kind: .symlink, permissions: 0o777, mtime: t)
    longLink.content = try b.data.store(
      [UInt8](repeating: UInt8(ascii: "x"), count: 4095), ino: longLink.ino)
    root.children[Name("longlink")] = longLink
    // Xattrs inline and in a node.
    let xi = b.makeInode(
      kind: .regular, permissions: 0o644, mtime: t,
      xattrs: [Xattr("user.a", [1, 2, 3]), Xattr("security.selinux", Array("ctx".utf8))])
    xi.content = try b.data.store(Array("x".utf8), ino: xi.ino)
    root.children[Name("xinline")] = xi
    let xn = b.makeInode(
      kind: .regular, permissions: 0o644, mtime: t,
      xattrs: [
        Xattr("user.big", testBytes(1000, seed: 3)), Xattr("user.big2", testBytes(900, seed: 4)),
      ])
    xn.content = try b.data.store(testBytes(300, seed: 5), ino: xn.ino)
    root.children[Name("xnode")] = xn
    // Hard links: the same inode under two names in two directories.
    guard let f1 = root.children[fileName(4097)] else { throw RoseFSError.corrupt("test") }
    root.children[Name("hardlink")] = f1
    d1.children[Name("hardlink2")] = f1
    // A non-UTF-8 name.
    root.children[Name([0xFF, 0x41])] = b.makeInode(kind: .fifo, permissions: 0o600, mtime: t)

    guard snapshots else { return [Subvolume(name: "a", root: root)] }
    // b: a snapshot of a (the same objects). c: a with one file replaced and one added.
    let croot = b.cloneForSnapshot(root)
    let changed = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
    changed.content = try b.data.store(testBytes(6000, seed: 99), ino: changed.ino)
    croot.children[fileName(8192)] = changed
    let added = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
    added.content = try b.data.store(Array("only in c".utf8), ino: added.ino)
    croot.children[Name("new")] = added
    return [
      Subvolume(name: "a", root: root), Subvolume(name: "b", root: root),
      Subvolume(name: "c", root: croot),
    ]
  }
}

/// Asserts that the tree read back equals the tree built: kinds, metadata, xattrs, bytes, links.
func assertSameTree(
  _ built: Inode, _ read: Inode, builder: ImageBuilder?, reader: ImageReader, path: String = "/",
  seen: inout [ObjectIdentifier: ObjectIdentifier]
) throws {
  #expect(built.kind == read.kind, "\(path)")
  #expect(built.ino == read.ino, "\(path)")
  #expect(built.permissions == read.permissions, "\(path)")
  #expect(built.uid == read.uid && built.gid == read.gid, "\(path)")
  #expect(
    built.mtime == read.mtime && built.atime == read.atime && built.ctime == read.ctime, "\(path)")
  #expect(built.xattrs == read.xattrs, "\(path)")
  #expect(built.rdevMajor == read.rdevMajor && built.rdevMinor == read.rdevMinor, "\(path)")
  if let prev = seen[ObjectIdentifier(built)] {
    #expect(prev == ObjectIdentifier(read), "hard link \(path) is not the same object")
    return
  }
  seen[ObjectIdentifier(built)] = ObjectIdentifier(read)
  if built.kind == .regular || built.kind == .symlink {
    #expect(built.content.size == read.content.size, "\(path)")
    #expect(built.content.extents == read.content.extents, "\(path)")
    #expect((built.content.tail == nil) == (read.content.tail == nil), "\(path)")
    var expected = [UInt8](repeating: 0, count: Int(built.content.size))
    if let builder {
      expected = try builder.data.readBack(built.content)
    }
    var got = [UInt8](repeating: 0, count: Int(read.content.size))
    try reader.readContent(read.content) { buf, off in
      got.replaceSubrange(Int(off)..<Int(off) + buf.count, with: buf)
    }
    if builder != nil { #expect(got == expected, "\(path)") }
  }
  #expect(Set(built.children.keys) == Set(read.children.keys), "\(path)")
  for (name, child) in built.children {
    guard let r = read.children[name] else { continue }
    try assertSameTree(
      child, r, builder: builder, reader: reader, path: path + name.description + "/", seen: &seen)
  }
}

@Suite struct ReaderTests {
  @Test func roundTripsTheSampleTree() throws {
    var built: [Subvolume] = []
    var builder: ImageBuilder?
    let img = try TestImage { b in
      builder = b
      built = try SampleTree.build(b)
      return built
    }
    let r = try img.reader()
    #expect(r.checkpoint.heads.count == 3)
    for (h, s) in built.enumerated() {
      #expect(try r.headIndex(named: s.name) == h)
      let tree = try r.loadTree(head: h)
      var seen: [ObjectIdentifier: ObjectIdentifier] = [:]
      try assertSameTree(s.root, tree, builder: builder, reader: r, seen: &seen)
    }
  }

  @Test func file369WithoutTailPacking() throws {
    let data = testBytes(369, seed: 369)
    var ino: UInt32 = 0
    let img = try TestImage(options: BuildOptions(sourceDateEpoch: 1, tailMax: 0)) { b in
      let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: Timestamp(seconds: 0))
      let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: Timestamp(seconds: 0))
      f.content = try b.data.store(data, ino: f.ino)
      ino = f.ino
      root.children[Name("f")] = f
      return [Subvolume(name: "a", root: root)]
    }
    let r = try img.reader()
    #expect(try r.lookup("/f", head: 0) == ino)
    #expect(try r.readAll(ino: ino, head: 0) == data)
  }

  @Test func file369WithTailPacking() throws {
    let data = testBytes(369, seed: 369)
    do {
      let img = try TestImage { b in
        let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: Timestamp(seconds: 0))
        let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: Timestamp(seconds: 0))
        f.content = try b.data.store(data, ino: f.ino)
        root.children[Name("f")] = f
        return [Subvolume(name: "a", root: root)]
      }
      let r = try img.reader()
      #expect(try r.readAll(ino: try r.lookup("/f", head: 0), head: 0) == data)
    }
  }
}

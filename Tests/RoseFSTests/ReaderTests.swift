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
        Xattr("user.big", testBytes(1000, seed: 3)), Xattr("user.big2", testBytes(3000, seed: 4)),
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
    let croot = root.clone()
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
    var file: Inode?
    let img = try TestImage(options: BuildOptions(sourceDateEpoch: 1, tailMax: 0)) { b in
      let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: Timestamp(seconds: 0))
      let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: Timestamp(seconds: 0))
      f.content = try b.data.store(data, ino: f.ino)
      file = f
      root.children[Name("f")] = f
      return [Subvolume(name: "a", root: root)]
    }
    // The packer numbers inodes by the slots they take: read the number after packing.
    let ino = try #require(file).ino
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

  @Test func lookupsReaddirOrderAndHeads() throws {
    let img = try TestImage { b in try SampleTree.build(b) }
    let r = try img.reader()
    #expect(try r.headIndex(named: nil) == 0)
    #expect(throws: RoseFSError.self) { try r.headIndex(named: "zz") }
    do {
      _ = try r.headIndex(named: "zz")
    } catch {
      #expect("\(error)".contains("a, b, c"))
    }
    // b is a snapshot of a: same NAT root, a's bitmap.
    #expect(r.checkpoint.heads[1].vbmSource == 0)
    #expect(r.checkpoint.heads[1].nat == r.checkpoint.heads[0].nat)
    let f4097 = try r.lookup("/f4097", head: 0)
    #expect(try r.lookup("/hardlink", head: 0) == f4097)
    #expect(try r.lookup("d1/hardlink2", head: 0) == f4097)
    #expect(try r.readInodeRecord(f4097, head: 0).nlink == 3)
    #expect(try r.readAll(ino: f4097, head: 0) == testBytes(4097, seed: 4097))
    #expect(try r.readAll(ino: try r.lookup("/link", head: 0), head: 0) == Array("f1".utf8))
    #expect(try r.readAll(ino: try r.lookup("/longlink", head: 0), head: 0).count == 4095)
    #expect(try r.lookup([UInt8]("/".utf8) + [0xFF, 0x41], head: 0) > 0)
    #expect(throws: RoseFSError.self) { try r.lookup("/nope", head: 0) }
    #expect(throws: RoseFSError.self) { try r.lookup("/f1/x", head: 0) }
    // Every entry of the 2,000-entry tree directory is found by hash, and readdir is in key order.
    let big = try r.lookup("/big", head: 0)
    let rec = try r.readInodeRecord(big, head: 0)
    #expect(rec.has(InodeFlag.dirTree))
    let entries = try r.entries(ofDirectory: big, head: 0)
    #expect(entries.count == SampleTree.bigDirEntries)
    #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.key < $1.key })
    for e in entries {
      #expect(e.key >> 32 == UInt64(nameHash(e.name, seed: r.superblock.hashSeed)))
      #expect(try r.lookup(name: e.name, inDirectory: rec, head: 0)?.ino == e.ino)
    }
    let inline = try r.readInodeRecord(try r.lookup("/dinline", head: 0), head: 0)
    #expect(inline.has(InodeFlag.inlineDentry))
    #expect(try r.entries(ofDirectory: inline.ino, head: 0).count == 33)
    // The sparse file: bytes where written, zeros elsewhere, holes not reported.
    let sparse = try r.lookup("/sparse", head: 0)
    var chunks: [(UInt64, Int)] = []
    var sparseBytes: [UInt64: UInt8] = [:]
    try r.readFile(ino: sparse, head: 0) { buf, off in
      chunks.append((off, buf.count))
      for (i, b) in buf.enumerated() where b != 0 { sparseBytes[off + UInt64(i)] = b }
    }
    #expect(chunks.map { $0.0 } == chunks.map { $0.0 }.sorted())
    #expect(chunks.reduce(0) { $0 + $1.1 } < 10 * 4096)
    #expect(sparseBytes[0] == UInt8(ascii: "s"))
    #expect(sparseBytes[SampleTree.sparseSize - 1] == UInt8(ascii: "!"))
    // c replaced f8192 and added /new; a still has the original.
    #expect(
      try r.readAll(ino: try r.lookup("/f8192", head: 2), head: 2) == testBytes(6000, seed: 99))
    #expect(
      try r.readAll(ino: try r.lookup("/f8192", head: 0), head: 0) == testBytes(8192, seed: 8192))
    #expect(throws: RoseFSError.self) { try r.lookup("/new", head: 0) }
    #expect(try r.readAll(ino: try r.lookup("/new", head: 2), head: 2) == Array("only in c".utf8))
  }

  @Test func spaceReportAccountsForEveryLiveBlock() throws {
    let img = try TestImage { b in try SampleTree.build(b) }
    let s = try img.reader().spaceReport()
    let categories =
      s.fileDataBytes + s.tailBlockBytes + s.inodePageBytes + s.directoryNodeBytes
      + s.extentNodeBytes
      + s.xattrNodeBytes + s.natBytes + s.vbmBytes + s.ssaBytes + s.mapIndexBytes
    #expect(s.usedBytes == 65536 + categories)
    #expect(categories == img.report.liveBlocks * 4096)
    #expect(s.freeBytes == s.mainBlocks * 4096 - categories)
    #expect(s.heads.map { $0.name } == ["a", "b", "c"])
    #expect(s.heads[1].vbmSameAs == 0)
    #expect(s.heads[2].privateBytes > 0)
    #expect(s.features.contains("tailpack") && s.features.contains("data_csum"))
    #expect(
      s.fileDataBytes > 0 && s.tailBlockBytes > 0 && s.directoryNodeBytes > 0
        && s.xattrNodeBytes > 0)
  }

  @Test func structureOffsetsMatchFormatMD() throws {
    let uuid = (0..<16).map { UInt8($0 + 1) }
    let ck = RoseChecksum(uuid: uuid)
    let sb = Superblock(
      featureIncompat: 0x1F, featureRoCompat: 1, logBlocksPerSegment: 7,
      blockCount: 0x1122_3344_5566,
      segmentCount: 0x0102_0304, rsvSegments: 5, opBlocks: 0x0A0B, uuid: uuid,
      label: Array("lbl".utf8),
      hashSeed: [UInt8](repeating: 0xEE, count: 16), tailMax: 2048, mkfsTime: 1_700_000_000)
    let b = sb.encode(checksum: ck)
    let r = ByteReader(b)
    #expect(b.count == 256)
    #expect(Array(b[0..<4]) == Array("ROSE".utf8))
    #expect(r.u16(0x08) == 1 && r.u16(0x0A) == 0)
    #expect(r.u32(0x10) == 0x1F && r.u32(0x14) == 1)
    #expect(r.u8(0x18) == 12 && r.u8(0x19) == 7 && r.u8(0x1A) == 3 && r.u8(0x1B) == 4)
    #expect(r.u32(0x1C) == 256)
    #expect(r.u64(0x20) == 0x1122_3344_5566)
    #expect(r.u32(0x28) == 2 && r.u16(0x2C) == 1 && r.u16(0x2E) == 2)
    #expect(
      r.u32(0x30) == 16 && r.u32(0x34) == 0x0102_0304 && r.u32(0x38) == 5 && r.u32(0x3C) == 0x0A0B)
    #expect(r.slice(0x40, 16) == uuid)
    #expect(r.slice(0x50, 3) == Array("lbl".utf8) && r.u8(0x53) == 0)
    #expect(r.slice(0x70, 16) == [UInt8](repeating: 0xEE, count: 16))
    #expect(r.u16(0x80) == 32 && r.u16(0x82) == 4000 && r.u32(0x84) == 2048)
    #expect(r.i64(0x88) == 1_700_000_000)
    #expect(b[0x90..<0x100].allSatisfy { $0 == 0 })
    var zeroed = b
    zeroed.replaceSubrange(4..<8, with: [0, 0, 0, 0])
    #expect(r.u32(4) == ck.checksum(zeroed))

    let head = Head(
      flags: Head.active | Head.vbmSameAs | 1 << 8, rootIno: 0x55, createdCpVer: 3,
      validBlocks: 0x77,
      inodeCount: 0x88, parentHead: 0xFFFF_FFFF, name: Array("b".utf8),
      nat: MetaRoot(root: 0x99, nblocks: 2, depth: 1), vbm: MetaRoot())
    let cp = Checkpoint(
      cpVer: 9, userBlockCount: 0x1234, validBlockCount: 0x5678, freeSegments: 0x42, flags: 3,
      nextFreeNid: 0x300, logs: [LogHead(segment: 7, blockOffset: 2, type: 1)],
      ssa: MetaRoot(root: 0xAB, nblocks: 1),
      defaultHead: 1, heads: [head, head])
    let c = cp.encode(checksum: ck)
    let q = ByteReader(c)
    #expect(Array(c[0..<4]) == Array("RSCP".utf8))
    #expect(q.u64(0x08) == 9 && q.u64(0x10) == 0x1234 && q.u64(0x18) == 0x5678)
    #expect(q.u32(0x20) == 0x42 && q.u32(0x24) == 3 && q.u32(0x28) == 0x300 && q.u32(0x2C) == 0)
    #expect(q.u32(0x30) == 7 && q.u16(0x34) == 2 && q.u8(0x36) == 1)
    #expect(q.u32(0x50) == 0xAB && q.u32(0x54) == 1)
    #expect(q.u8(0x60) == 2 && q.u8(0x61) == 1)
    let h1 = 0x80 + 128
    #expect(
      q.u32(h1) == 0x105 && q.u32(h1 + 4) == 0x55 && q.u64(h1 + 8) == 3 && q.u64(h1 + 0x10) == 0x77)
    #expect(
      q.u32(h1 + 0x18) == 0x88 && q.u32(h1 + 0x1C) == 0xFFFF_FFFF
        && q.u8(h1 + 0x20) == UInt8(ascii: "b"))
    #expect(q.u32(h1 + 0x30) == 0x99 && q.u32(h1 + 0x34) == 2 && q.u8(h1 + 0x38) == 1)
    #expect(c[0x80 + 256..<0x280].allSatisfy { $0 == 0 })
    let back = Checkpoint.decode(c, checksum: ck)
    #expect(
      back?.heads.count == 2 && back?.heads[1].rootIno == 0x55 && back?.heads[1].vbmSource == 1)
  }

  @Test func directoryOf100kEntries() throws {
    let n = 100_000
    let img = try TestImage { b in
      let t = Timestamp(seconds: 0)
      let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
      let d = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
      let shared = b.makeInode(kind: .fifo, permissions: 0o644, mtime: t)
      for i in 0..<n { d.children[Name("file-number-\(i)")] = shared }
      root.children[Name("d")] = d
      return [Subvolume(name: "a", root: root)]
    }
    let r = try img.reader()
    let d = try r.readInodeRecord(try r.lookup("/d", head: 0), head: 0)
    #expect(d.treeDepth >= 2)
    let entries = try r.entries(of: d, head: 0)
    #expect(entries.count == n)
    #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.key < $1.key })
    for i in stride(from: 0, to: n, by: 997) {
      #expect(try r.lookup("/d/file-number-\(i)", head: 0) == entries[0].ino)
    }
    #expect(try r.readInodeRecord(entries[0].ino, head: 0).nlink == UInt32(n))
    #expect(Fsck.check(image: img.image, verifyData: false).isEmpty)
  }
}

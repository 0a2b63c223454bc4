import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// Issue 10 "Density": 32-byte slots, inodes of a 96-byte core and 3 to 128 slots, and headerless
/// tail blocks (FORMAT.md 7, 9.3, 13.2), through the packer, the reader, fsck and the engine.
@Suite struct DensityTests {
  static let t = Timestamp(seconds: 1_700_000_000)

  /// The inode `ino` of head 0 as stored, with its page's address.
  static func stored(_ img: TestImage, _ ino: UInt32) throws -> (rec: InodeRecord, page: UInt32) {
    let r = try img.reader()
    let page = try r.nat(ino / UInt32(RoseLayout.inodesPerPage), head: 0)
    return (try r.readInodeRecord(ino, head: 0), page)
  }

  /// Rewrites bytes of inode `ino` in place and recomputes its checksum over `slots` slots.
  static func patchInode(
    _ img: TestImage, _ ino: UInt32, slots: Int? = nil, _ change: (inout [UInt8], Int) -> Void
  ) throws {
    let (rec, page) = try stored(img, ino)
    var b = try img.image.readBlock(page)
    let base = Int(ino % UInt32(RoseLayout.inodesPerPage)) * RoseLayout.inodeSize
    change(&b, base)
    let n = slots ?? Int(rec.nslots)
    let end = min(base + n * RoseLayout.inodeSize, RoseLayout.blockSize)
    let ck = RoseChecksum(uuid: try img.reader().superblock.uuid)
    let crc = b.withUnsafeBytes {
      ck.checksum(UnsafeRawBufferPointer(rebasing: $0[base..<end]), zeroingFieldAt: SlotOffset.crc)
    }
    b.withUnsafeMutableBytes {
      $0.storeBytes(of: crc.littleEndian, toByteOffset: base + SlotOffset.crc, as: UInt32.self)
    }
    try img.image.write(b, atByte: UInt64(page) * UInt64(RoseLayout.blockSize))
  }

  /// A packed tree with multi-slot inodes: a directory of 100 entries, a 4000-byte file (a tail that
  /// fills a tail block nearly alone), an inline file with inline xattrs, four files whose 1 KiB
  /// tails share one tail block.
  static func densityImage() throws -> (TestImage, [String: Inode]) {
    var made: [String: Inode] = [:]
    let img = try TestImage { b in
      let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
      let dir = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
      root.children[Name("dir")] = dir
      for i in 0..<100 {
        let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
        f.content = try b.data.store(Array("\(i)".utf8), ino: f.ino)
        dir.children[Name("file-\(i)")] = f
      }
      let kib = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
      kib.content = try b.data.store(testBytes(4000, seed: 1), ino: kib.ino)
      root.children[Name("kib")] = kib
      let x = b.makeInode(
        kind: .regular, permissions: 0o644, mtime: t,
        xattrs: [Xattr("user.note", Array(repeating: 0x78, count: 60))])
      x.content = try b.data.store(testBytes(60, seed: 2), ino: x.ino)
      root.children[Name("xattr")] = x
      for i in 0..<4 {
        let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
        f.content = try b.data.store(testBytes(4096 + 1024, seed: UInt64(10 + i)), ino: f.ino)
        root.children[Name("tail-\(i)")] = f
        made["tail-\(i)"] = f
      }
      made["dir"] = dir
      made["kib"] = kib
      made["xattr"] = x
      return [Subvolume(name: "a", root: root)]
    }
    return (img, made)
  }

  @Test func multiSlotInodesRoundTrip() throws {
    let (img, made) = try Self.densityImage()
    let r = try img.reader()
    // 100 entries "file-N": 10 of 8 + 6 bytes, 90 of 8 + 7, 1490 bytes: ceil((96 + 1490) / 32) = 50
    // slots (1504 bytes of i_u).
    let dir = try r.readInodeRecord(try #require(made["dir"]).ino, head: 0)
    #expect(dir.has(InodeFlag.inlineDentry) && dir.nslots == 50)
    #expect(try r.entries(of: dir, head: 0).count == 100)
    #expect(dir.inlineLen == 1490 && dir.inlineCapacity == 1504)
    // Files of at most 64 bytes are inline ("7": 1 byte, 4 slots); 4000 bytes are a bare core and
    // a tail fragment.
    let seven = try r.readInodeRecord(try r.lookup("/dir/file-7", head: 0), head: 0)
    #expect(seven.has(InodeFlag.inlineData) && seven.nslots == 4 && seven.inlineLen == 1)
    let kib = try r.readInodeRecord(try #require(made["kib"]).ino, head: 0)
    #expect(kib.has(InodeFlag.tail) && kib.nslots == 3 && kib.tailLen == 4000)
    #expect(try r.readAll(ino: kib.ino, head: 0) == testBytes(4000, seed: 1))
    #expect(InodeSlots.fileIsInline(size: 64) && !InodeSlots.fileIsInline(size: 65))
    // 60 bytes of data and a 73-byte xattr record inline: ceil((96 + 133) / 32) = 8 slots.
    let x = try r.readInodeRecord(try #require(made["xattr"]).ino, head: 0)
    #expect(x.nslots == 8 && x.xattrLen == 73 && !x.has(InodeFlag.xattrNode))
    #expect(x.has(InodeFlag.inlineData) && x.inlineLen == 60)
    #expect(try r.xattrs(of: x, head: 0) == [Xattr("user.note", Array(repeating: 0x78, count: 60))])
    // Inode numbers follow the slots: the next inode starts after the extent, never across a page.
    let perPage = UInt32(RoseLayout.inodesPerPage)
    for inode in made.values {
      let rec = try r.readInodeRecord(inode.ino, head: 0)
      #expect(inode.ino % perPage + UInt32(rec.nslots) <= perPage)
    }
    for i in 0..<100 {
      let ino = try r.lookup("/dir/file-\(i)", head: 0)
      #expect(try r.readAll(ino: ino, head: 0) == Array("\(i)".utf8))
    }
    #expect(Fsck.check(image: img.image).isEmpty)
  }

  /// Four 1 KiB tails fill one headerless tail block; its SSA entry names their inode pages and holds
  /// the block's checksum.
  @Test func fourKibTailsShareOneBlock() throws {
    let (img, made) = try Self.densityImage()
    let r = try img.reader()
    var blocks = Set<UInt32>()
    var offsets: [UInt16] = []
    var nids: [UInt32] = []
    for i in 0..<4 {
      let ino = try #require(made["tail-\(i)"]).ino
      let rec = try r.readInodeRecord(ino, head: 0)
      #expect(rec.has(InodeFlag.tail) && rec.tailLen == 1024)
      blocks.insert(rec.tailBlk)
      offsets.append(rec.tailOff)
      nids.append(ino / UInt32(RoseLayout.inodesPerPage))
      #expect(try r.readAll(ino: ino, head: 0) == testBytes(4096 + 1024, seed: UInt64(10 + i)))
    }
    #expect(blocks.count == 1 && offsets.sorted() == [0, 1024, 2048, 3072])
    let blk = try #require(blocks.first)
    let e = try #require(try r.ssaEntry(ofBlock: blk))
    #expect(e.kind == SSAKind.tail)
    #expect(e.owner == nids.min() && e.owner + e.index == nids.max())
    let bytes = try img.image.readBlock(blk)
    #expect(e.crc == RoseChecksum(uuid: r.superblock.uuid).checksum(bytes))
    #expect(Fsck.check(image: img.image).isEmpty)
  }

  // MARK: - fsck

  @Test func fsckCatchesOverlappingSlotExtents() throws {
    let (img, made) = try Self.densityImage()
    // "xattr" (8 slots) is followed by "tail-0": make "xattr" claim 9 slots, covering tail-0's first.
    let x = try #require(made["xattr"]).ino
    let next = try #require(made["tail-0"]).ino
    #expect(next == x + 8)
    try Self.patchInode(img, x, slots: 9) { b, base in b[base + SlotOffset.nslots] = 9 }
    let problems = Fsck.check(image: img.image)
    #expect(
      problems.contains { $0.contains("slot \(next % 128) is in the extent of ino \(x)") },
      "\(problems)")
  }

  @Test func fsckCatchesNslotsCrossingThePage() throws {
    let (img, made) = try Self.densityImage()
    let x = try #require(made["xattr"]).ino
    let slot = Int(x % 128)
    try Self.patchInode(img, x, slots: 128 - slot) { b, base in
      b[base + SlotOffset.nslots] = UInt8(129 - slot)
    }
    let problems = Fsck.check(image: img.image)
    #expect(problems.contains { $0.contains("nslots \(129 - slot)") }, "\(problems)")
  }

  @Test func fsckCatchesOverlappingFragments() throws {
    let (img, made) = try Self.densityImage()
    let ino = try #require(made["tail-1"]).ino
    try Self.patchInode(img, ino) { b, base in
      // Move tail-1's fragment 100 bytes down, into its neighbour's.
      let off = Int(b[base + SlotOffset.tailOff]) | Int(b[base + SlotOffset.tailOff + 1]) << 8
      let moved = UInt16(off == 0 ? 100 : off - 100)
      b[base + SlotOffset.tailOff] = UInt8(moved & 0xFF)
      b[base + SlotOffset.tailOff + 1] = UInt8(moved >> 8)
    }
    let problems = Fsck.check(image: img.image)
    #expect(problems.contains { $0.contains("overlap at byte") }, "\(problems)")
  }

  @Test func fsckCatchesTailBlockChecksumMismatch() throws {
    let (img, made) = try Self.densityImage()
    let rec = try Self.stored(img, try #require(made["tail-2"]).ino).rec
    let at = UInt64(rec.tailBlk) * 4096 + UInt64(rec.tailOff) + 7
    let old = try img.image.read(count: 1, atByte: at)
    try img.image.write([old[0] ^ 0x10], atByte: at)
    let problems = Fsck.check(image: img.image)
    #expect(problems.contains { $0.contains("tail block \(rec.tailBlk): checksum") }, "\(problems)")
    #expect(throws: RoseFSError.self) { _ = try img.reader().readAll(ino: rec.ino, head: 0) }
  }

  @Test func fsckCatchesFragmentOutsideTheOwnerRange() throws {
    let (img, made) = try Self.densityImage()
    let r = try img.reader()
    let rec = try r.readInodeRecord(try #require(made["tail-3"]).ino, head: 0)
    let e = try #require(try r.ssaEntry(ofBlock: rec.tailBlk))
    // Shift the SSA entry's page range past every fragment's page, and reseal the SSA block.
    let k = UInt64(rec.tailBlk - r.superblock.mainBlkaddr)
    let at = SSAEntry.location(ofMainBlock: k)
    let ssa = try r.metaContentAddress(
      r.checkpoint.ssa, index: UInt32(at.block), type: MetaType.ssa, what: "SSA")
    var b = try img.image.readBlock(ssa)
    b.withUnsafeMutableBytes { buf in
      SSAEntry(owner: e.owner + 50, kind: SSAKind.tail, index: e.index, crc: e.crc).encode(
        into: buf, at: at.offset)
      let ck = RoseChecksum(uuid: r.superblock.uuid)
      let crc = ck.checksum(UnsafeRawBufferPointer(buf), zeroingFieldAt: BlockHeader.crcOffset)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: BlockHeader.crcOffset, as: UInt32.self)
    }
    try img.image.write(b, atByte: UInt64(ssa) * 4096)
    let problems = Fsck.check(image: img.image)
    #expect(
      problems.contains { $0.contains("tail block \(rec.tailBlk): SSA names inode pages") },
      "\(problems)")
  }

  // MARK: - Engine

  /// An inline directory grows into the free slots after its own; another, whose next slot is
  /// taken, becomes a tree.
  @Test func engineInlineDirectoryGrowsIntoFreeSlotsOrBecomesATree() throws {
    let img = try emptyVolume(size: 32 << 20)
    let dev = try FileBlockDevice(path: img.path, writable: true)
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    let root = e.rootIno
    // A new inode page: target, stuck, blocker, grows, gap in slots 0-14 (3 each), the rest free.
    let target = try e.createFile(root, "target")
    let stuck = try e.mkdir(parent: root, name: Array("stuck".utf8), mode: 0o755, uid: 0, gid: 0)
      .ino
    let blocker = try e.createFile(root, "blocker")  // takes the slot after "stuck"
    let grows = try e.mkdir(parent: root, name: Array("grows".utf8), mode: 0o755, uid: 0, gid: 0)
      .ino
    _ = try e.mkdir(parent: root, name: Array("gap".utf8), mode: 0o755, uid: 0, gid: 0)
    try e.rmdir(parent: root, name: Array("gap".utf8))  // the slot after "grows" is free again
    #expect(stuck == target + 3 && blocker == stuck + 3 && grows == blocker + 3)
    // 30 names of 10 bytes: 540 bytes of inline entries, ceil((96 + 540) / 32) = 20 slots.
    for i in 0..<30 {
      let name = Array(String(format: "link-%05d", i).utf8)
      try e.link(target, newParent: grows, newName: name)
      try e.link(target, newParent: stuck, newName: name)
    }
    try e.sync()
    let g = try #require(try e.loadInode(grows, head: e.head))
    #expect(g.rec.has(InodeFlag.inlineDentry) && g.rec.nslots == 20 && g.entries.count == 30)
    let s = try #require(try e.loadInode(stuck, head: e.head))
    #expect(s.rec.has(InodeFlag.dirTree) && s.rec.nslots == 3)
    // Shrinking gives the slots back: one entry left (18 bytes) takes 4 slots.
    for i in 1..<30 {
      try e.unlink(parent: grows, name: Array(String(format: "link-%05d", i).utf8))
    }
    try e.sync()
    let g2 = try #require(try e.loadInode(grows, head: e.head))
    #expect(g2.rec.has(InodeFlag.inlineDentry) && g2.rec.nslots == 4)
    try e.unmount()
    #expect(try fsckProblems(path: img.path).isEmpty)
  }

  /// Four 1 KiB files written through the engine share one headerless tail block; the cleaner moves
  /// a tail block that heads a and b share, repointing the fragments in both.
  @Test func engineTailBlockSharedByTwoHeadsIsCleaned() throws {
    let img = try emptyVolume(size: 16 << 20, heads: ["a", "b"])
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let ea = try RoseEngine.open(device: dev, subvolume: "a", readOnly: false)
    var files: [String: [UInt8]] = [:]
    for i in 0..<4 {
      let data = testBytes(1024, seed: UInt64(40 + i))
      try ea.writeAll(try ea.createFile(ea.rootIno, "k\(i)"), data)
      files["k\(i)"] = data
    }
    try ea.sync()
    var tailBlocks = Set<UInt32>()
    for i in 0..<4 {
      let n = try #require(try ea.loadInode(try ea.resolve("k\(i)"), head: ea.head))
      guard case .tail(let blk, _, _) = n.partial else {
        Issue.record("k\(i) has no tail: \(n.partial)")
        continue
      }
      tailBlocks.insert(blk)
    }
    #expect(tailBlocks.count == 1)
    try ea.snapshotHead(from: "a", to: "b")
    try ea.unmount()
    let eb = try RoseEngine.open(device: dev, subvolume: "b", readOnly: false)
    let blk = try #require(tailBlocks.first)
    let k = Int(blk - eb.mainStart)
    #expect(eb.vbm[0].get(k) && eb.vbm[1].get(k))
    _ = try eb.clean(victims: [k / eb.bps])
    let s = eb.cleaningStats
    #expect(s.tailBlocks >= 1 && s.tailFragments >= 8, "\(s)")
    #expect(!eb.vbm[0].get(k) && !eb.vbm[1].get(k))
    for (name, data) in files {
      #expect(try eb.read(try eb.resolve(name), offset: 0, count: 2048) == data)
    }
    try eb.unmount()
    try expectFsckClean(dev)
    let ra = try RoseEngine.open(device: dev, subvolume: "a", readOnly: true)
    for (name, data) in files {
      #expect(try ra.read(try ra.resolve(name), offset: 0, count: 2048) == data)
    }
  }
}

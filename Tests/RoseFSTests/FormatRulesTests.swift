import Foundation
import Testing

@testable import RoseFS

/// The rules FORMAT.md states where a reader written from the page alone found it silent (issue 6,
/// "the spec first"), each checked on the bytes the packer writes and on what the reader and fsck
/// make of them.
@Suite struct FormatRulesTests {
  static let epoch: Int64 = 1_700_000_000

  /// Packs `files` (name -> content set up by the closure) into one head; returns image and report.
  static func pack(
    label: String = "rules", uuid: [UInt8]? = nil,
    _ fill: (ImageBuilder, Inode) throws -> Void
  ) throws -> (TempImage, BuildReport) {
    let tmp = TempImage()
    let b = try ImageBuilder(
      image: tmp.image,
      options: BuildOptions(label: label, uuid: uuid, sourceDateEpoch: epoch))
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: Timestamp(seconds: epoch))
    try fill(b, root)
    let report = try b.finish(subvolumes: [Subvolume(name: "a", root: root)])
    return (tmp, report)
  }

  static func addFile(
    _ b: ImageBuilder, _ root: Inode, _ name: String, _ bytes: [UInt8], xattrs: [Xattr] = []
  ) throws -> Inode {
    let f = b.makeInode(
      kind: .regular, permissions: 0o644, mtime: Timestamp(seconds: epoch), xattrs: xattrs)
    f.content = try b.data.store(bytes, ino: f.ino)
    root.children[Name(name)] = f
    return f
  }

  // (2) Times are stored as a Linux timespec: seconds floor, nanoseconds forward from it.
  @Test func negativeTimeWithNanosecondsIsATimespec() throws {
    // pax "mtime=-1234567889.012345679" as libarchive 3.6 hands it over: (-1234567889, 12345679).
    let t = Timestamp(signMagnitudeSeconds: -1_234_567_889, nanoseconds: 12_345_679)
    #expect(t == Timestamp(seconds: -1_234_567_890, nanoseconds: 987_654_321))
    #expect(t.signMagnitude == (-1_234_567_889, 12_345_679))
    #expect(
      Timestamp(signMagnitudeSeconds: 5, nanoseconds: 7) == Timestamp(seconds: 5, nanoseconds: 7))
    #expect(Timestamp(signMagnitudeSeconds: -5, nanoseconds: 0).signMagnitude == (-5, 0))
    var file: Inode?
    let (tmp, _) = try Self.pack { b, root in
      let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: t, atime: t, ctime: t)
      f.content = try b.data.store(Array("x".utf8), ino: f.ino)
      root.children[Name("old")] = f
      file = f
    }
    let ino = try #require(file).ino
    let reader = try ImageReader(image: tmp.image)
    let rec = try reader.readInodeRecord(ino, head: 0)
    let perPage = UInt32(RoseLayout.inodesPerPage)
    let page = try tmp.image.readBlock(try reader.nat(ino / perPage, head: 0))
    let slot = ByteReader(page, base: Int(ino % perPage) * RoseLayout.inodeSize)
    #expect(slot.i64(SlotOffset.mtime) == -1_234_567_890)
    #expect(slot.u32(SlotOffset.mtimeNs) == 987_654_321)
    #expect(slot.i64(SlotOffset.ctime) == -1_234_567_890)
    #expect(slot.u32(SlotOffset.ctimeNs) == 987_654_321)
    #expect(rec.mtime == t && rec.atime == t && rec.ctime == t)
    #expect(Fsck.check(image: tmp.image).isEmpty)
  }

  // (3) Content form first (INLINE_DATA; EXTENTS when the 12 * n bytes fit 128 slots, else
  // EXTTREE), then xattrs inline when the inode with them still fits its page, else an xattr node.
  @Test(arguments: [
    (30, "inline", 15), (332, "inline", 128), (333, "node", 128), (334, "tree", 4),
  ])
  func extentFormIsDecidedBeforeXattrs(extentCount: Int, xattrs: String, nslots: Int) throws {
    var file: Inode?
    let (tmp, _) = try Self.pack { b, root in
      // Every other block written: extentCount extents of one block, holes between.
      let f = b.makeInode(
        kind: .regular, permissions: 0o644, mtime: Timestamp(seconds: Self.epoch),
        xattrs: [Xattr("user.k", [1, 2])])  // 4 + 6 + 2 = 12 bytes
      let size = UInt64(2 * extentCount - 1) * 4096
      try b.data.beginFile(ino: f.ino, size: size)
      let block = [UInt8](repeating: 0x5A, count: 4096)
      for i in 0..<extentCount { try b.data.write(block, at: UInt64(2 * i) * 4096) }
      f.content = try b.data.finishFile()
      root.children[Name("sparse")] = f
      file = f
    }
    // The packer numbers inodes by the slots they take: read the number after packing.
    let ino = try #require(file).ino
    let reader = try ImageReader(image: tmp.image)
    let rec = try reader.readInodeRecord(ino, head: 0)
    #expect(try reader.extents(of: rec, head: 0).count == extentCount)
    #expect(Int(rec.nslots) == nslots)
    switch xattrs {
    case "inline":
      // 30 extents: 360 + 12 bytes take ceil((96 + 372) / 32) = 15 slots; 332 extents: 3984 + 12
      // bytes fill the page's 4000.
      #expect(rec.has(InodeFlag.extents) && rec.inlineLen == extentCount * 12 && rec.xattrLen == 12)
    case "node":
      // 3996 bytes of extents leave 4 bytes of the page: the xattr goes to a node.
      #expect(rec.has(InodeFlag.extents) && rec.inlineLen == 3996)
      #expect(rec.has(InodeFlag.xattrNode) && rec.xattrLen == 0)
    default:
      // 4008 bytes cannot be inline: a tree, and the xattr is inline in one slot after the core.
      #expect(rec.has(InodeFlag.extentTree) && !rec.has(InodeFlag.xattrNode) && rec.xattrLen == 12)
    }
    #expect(try reader.xattrs(of: rec, head: 0) == [Xattr("user.k", [1, 2])])
    #expect(Fsck.check(image: tmp.image).isEmpty)
  }

  // (5) The default UUID is a digest of the content and the epoch.
  @Test func defaultUUIDFollowsTheContent() throws {
    func image(_ name: String, _ data: String) throws -> (uuid: String, seed: [UInt8]) {
      let (tmp, report) = try Self.pack { b, root in
        _ = try Self.addFile(
          b, root, name, Array(repeating: Array(data.utf8), count: 2000).flatMap { $0 })
      }
      let sb = try Superblock.decode(try tmp.image.read(count: 256, atByte: 1024))
      #expect(uuidString(sb.uuid) == report.uuid)
      #expect(Fsck.check(image: tmp.image).isEmpty)
      return (report.uuid, sb.hashSeed)
    }
    let a = try image("f", "abc")
    #expect(a == (try image("f", "abc")))  // same inputs, same UUID
    let otherData = try image("f", "abd")  // one byte in each data block differs
    let otherName = try image("g", "abc")
    #expect(
      a.uuid != otherData.uuid && a.uuid != otherName.uuid && otherData.uuid != otherName.uuid)
    #expect(a.seed != otherData.seed)
    // RFC 9562 version 8 (custom), variant 10.
    let bytes = Array(a.uuid.replacingOccurrences(of: "-", with: ""))
    #expect(bytes[12] == "8" && "89ab".contains(bytes[16]))
    // A given UUID is kept.
    let given: [UInt8] = (0..<16).map { UInt8($0 * 3) }
    let (tmp, report) = try Self.pack(uuid: given) { b, root in
      _ = try Self.addFile(b, root, "f", [UInt8](repeating: 7, count: 9000))
    }
    #expect(report.uuid == uuidString(given))
    #expect(Fsck.check(image: tmp.image).isEmpty)
  }

  @Test func checksumCorrectionMovesAChecksumToAnotherUUID() {
    let block = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let a = RoseChecksum(uuid: Array(repeating: 0, count: 16))
    let b = RoseChecksum(uuid: (0..<16).map { UInt8($0 + 100) })
    #expect(a.checksum(block) != b.checksum(block))
    #expect(a.checksum(block) ^ b.correction(from: a, length: 4096) == b.checksum(block))
  }

  // (6) Checkpoint bytes 0xFB8..0xFFF are reserved: zero, and fsck says so when they are not.
  @Test func checkpointTailIsReservedZero() throws {
    #expect(Checkpoint.reservedTail == 0xFB8)
    let (tmp, _) = try Self.pack { b, root in _ = try Self.addFile(b, root, "f", [1]) }
    let sb = try Superblock.decode(try tmp.image.read(count: 256, atByte: 1024))
    var cp = try tmp.image.readBlock(2)
    #expect(cp[0xFB8...].allSatisfy { $0 == 0 })
    cp[0xFC0] = 1
    let crc = cp.withUnsafeBytes {
      RoseChecksum(uuid: sb.uuid).checksum($0, zeroingFieldAt: 4)
    }
    cp.withUnsafeMutableBytes {
      $0.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
    }
    try tmp.image.write(cp, atByte: 2 * 4096)
    let problems = Fsck.check(image: tmp.image)
    #expect(problems.contains { $0.contains("reserved 0xfb8") }, "\(problems)")
  }

  // (9) Holes: the last partial block may be a hole, EXTENTS + TAIL may have no extent, and a
  // file may be all hole.
  @Test func holesAnywhereIncludingTheLastPartialBlock() throws {
    var files: [String: Inode] = [:]
    let (tmp, _) = try Self.pack { b, root in
      // 6000 bytes: block 0 stored, block 1 (bytes 4096..5999) a hole, no TAIL.
      let lastHole = try Self.addFile(b, root, "last-hole", [UInt8](repeating: 0x42, count: 8192))
      lastHole.content = FileContent(size: 6000, extents: [lastHole.content.extents[0].first(1)])
      // 4100 bytes: block 0 a hole, the 4-byte tail packed: EXTENTS + TAIL with no extent.
      let tailOnly = try Self.addFile(
        b, root, "tail-only", [UInt8](repeating: 0, count: 4096) + Array("tail".utf8))
      tailOnly.content.extents = []
      // 10000 bytes, nothing stored: EXTENTS with no extent.
      let allHole = b.makeInode(kind: .regular, permissions: 0o644, mtime: Timestamp(seconds: 0))
      allHole.content = FileContent(size: 10_000)
      root.children[Name("all-hole")] = allHole
      for (n, i) in [("last-hole", lastHole), ("tail-only", tailOnly), ("all-hole", allHole)] {
        files[n] = i
      }
    }
    // The packer numbers inodes by the slots they take: read the numbers after packing.
    let inos = files.mapValues(\.ino)
    #expect(Fsck.check(image: tmp.image).isEmpty)
    let reader = try ImageReader(image: tmp.image)
    let lastHole = try reader.readInodeRecord(try #require(inos["last-hole"]), head: 0)
    #expect(lastHole.flags == InodeFlag.extents && lastHole.inlineLen == 12 && lastHole.blocks == 8)
    #expect(
      try reader.readAll(ino: lastHole.ino, head: 0)
        == [UInt8](repeating: 0x42, count: 4096) + [UInt8](repeating: 0, count: 1904))
    let tailOnly = try reader.readInodeRecord(try #require(inos["tail-only"]), head: 0)
    #expect(tailOnly.flags == InodeFlag.extents | InodeFlag.tail && tailOnly.tailLen == 4)
    #expect(tailOnly.inlineLen == 0 && tailOnly.blocks == 0)
    #expect(
      try reader.readAll(ino: tailOnly.ino, head: 0)
        == [UInt8](repeating: 0, count: 4096) + Array("tail".utf8))
    let allHole = try reader.readInodeRecord(try #require(inos["all-hole"]), head: 0)
    #expect(allHole.flags == InodeFlag.extents && allHole.inlineLen == 0 && allHole.blocks == 0)
    #expect(try reader.readAll(ino: allHole.ino, head: 0) == [UInt8](repeating: 0, count: 10_000))
  }

  // Issue 11 item 4: records the format cannot hold are refused with a clear error, never a trap.
  @Test(arguments: [(300, 1), (1, 65_536), (0, 1)])
  func oversizedXattrIsRefusedNotTrapped(nameBytes: Int, valueBytes: Int) throws {
    let x = Xattr(
      name: [UInt8](repeating: UInt8(ascii: "n"), count: nameBytes),
      value: [UInt8](repeating: 1, count: valueBytes))
    #expect(throws: RoseFSError.self) { try encodeXattrRecords([x], path: "/f") }
    do {
      _ = try Self.pack { b, root in _ = try Self.addFile(b, root, "f", [1], xattrs: [x]) }
      Issue.record("packing an xattr of name \(nameBytes) / value \(valueBytes) bytes succeeded")
    } catch let e as RoseFSError {
      guard case .xattrInvalid(_, let name, let reason) = e else {
        Issue.record("unexpected error \(e)")
        return
      }
      #expect(name.count == nameBytes && reason.contains("bytes"))
      #expect("\(e)".count < 300)
    }
    #expect(try encodeXattrRecords([Xattr("user.a", [1, 2, 3])], path: "/f").count == 13)
  }

  // (1) The partition type GUIDs are the ones FORMAT.md gives.
  @Test func partitionTypesAreDocumented() throws {
    let doc = try String(contentsOfFile: FormatExampleTests.docPath, encoding: .utf8)
    for guid in [RosePartitionType.root, RosePartitionType.data] {
      #expect(guid.count == 36 && doc.contains(guid), "\(guid) is not in docs/FORMAT.md")
    }
    #expect(RosePartitionType.magicOffsets == [1024, 5120])
  }

  // (10) A node's type is known from where its nid was found, and a block read through the NAT
  // can also be told apart: tree and xattr magics cannot start a valid inode page.
  @Test func nodeMagicsAreNotValidInodeFlags() {
    for m in [Magic.dirNode, Magic.extentNode, Magic.xattrNode] {
      let flags = UInt16(truncatingIfNeeded: m >> 16)
      #expect(flags & ~UInt16(0x7F) != 0)
    }
  }
}

extension Extent {
  fileprivate func first(_ n: UInt32) -> Extent {
    Extent(logical: logical, physical: physical, count: min(n, count))
  }
}

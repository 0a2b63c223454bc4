import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// The smallest image that still has every kind of block: inline and tree directories, an extent
/// tree, data and tail blocks, inline xattrs and an xattr node, and two heads with their own NAT and VBM.
func tinyImage() throws -> TestImage {
  try TestImage { b in
    let t = Timestamp(seconds: 1_700_000_000)
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    let small = b.makeInode(
      kind: .regular, permissions: 0o644, mtime: t, xattrs: [Xattr("user.k", [7])])
    small.content = try b.data.store(Array("hello\n".utf8), ino: small.ino)
    root.children[Name("small")] = small
    let tailed = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
    tailed.content = try b.data.store(testBytes(4100, seed: 1), ino: tailed.ino)
    root.children[Name("tailed")] = tailed
    // 340 one-block extents: 4080 bytes, more than 128 slots hold inline, so an extent tree.
    let fragmented = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
    try b.data.beginFile(ino: fragmented.ino, size: 680 * 4096)
    for i in 0..<340 {
      try b.data.write(testBytes(4096, seed: UInt64(i)), at: UInt64(2 * i) * 4096)
    }
    fragmented.content = try b.data.finishFile()
    root.children[Name("fragmented")] = fragmented
    let big = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    // 300 entries: more than 4000 bytes inline, so a directory tree.
    for i in 0..<300 { big.children[Name("entry-\(i)")] = small }
    root.children[Name("big")] = big
    let xn = b.makeInode(
      kind: .symlink, permissions: 0o777, mtime: t,
      xattrs: [Xattr("user.v", testBytes(4010, seed: 2))])  // more than a page's i_u: a node
    xn.content = try b.data.store(Array("small".utf8), ino: xn.ino)
    root.children[Name("link")] = xn
    let croot = root.clone()
    let changed = b.makeInode(kind: .regular, permissions: 0o600, mtime: t)
    changed.content = try b.data.store(Array("changed in b".utf8), ino: changed.ino)
    croot.children[Name("small")] = changed
    return [Subvolume(name: "a", root: root), Subvolume(name: "b", root: croot)]
  }
}

@Suite struct FsckTests {
  @Test func sampleTreeIsClean() throws {
    let img = try TestImage { b in try SampleTree.build(b) }
    let problems = Fsck.check(image: img.image)
    #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
  }

  /// Issue 11 item 13: a volume larger than its container (a partition, or a file) is refused.
  @Test func volumeLargerThanItsContainerIsRefused() throws {
    let img = try tinyImage()
    let size = img.image.fileSize
    let exact = try ImageFile(openPath: img.path, length: size)
    #expect(Fsck.check(image: exact).isEmpty)
    #expect(exact.containerSize == size)
    for short in [size - 4096, size / 2, UInt64(RoseLayout.mainStart) * 4096] {
      let partition = try ImageFile(openPath: img.path, length: short)
      let problems = Fsck.check(image: partition)
      #expect(problems.contains { $0.contains("container") }, "\(short): \(problems.prefix(3))")
      #expect(throws: RoseFSError.self) { _ = try ImageReader(image: partition) }
      // Nothing past the container is read, even block by block.
      #expect(throws: RoseFSError.self) { _ = try partition.read(count: 4096, atByte: short) }
    }
  }

  /// Issue 11 item 14: copy 0 with a damaged magic; the reader falls back to copy 1 (FORMAT.md 12)
  /// and a volume is still recognised by its copy-1 magic.
  @Test func damagedSuperblockCopy0FallsBackToCopy1() throws {
    let img = try tinyImage()
    try img.image.write([0, 0, 0, 0], atByte: 1024)
    #expect(img.image.hasRoseFSMagic())
    let reader = try ImageReader(image: img.image)
    #expect(reader.superblockCopy == 1)
    #expect(try reader.loadTree(head: 0).children.count == 5)
    let problems = Fsck.check(image: img.image)
    #expect(!problems.isEmpty)
    #expect(problems.allSatisfy { $0.contains("superblock copy") }, "\(problems)")
    // Both copies damaged: not a RoseFS volume.
    try img.image.write([0, 0, 0, 0], atByte: 4096 + 1024)
    #expect(!img.image.hasRoseFSMagic())
    #expect(throws: RoseFSError.self) { _ = try ImageReader(image: img.image) }
  }

  /// Issue 11 item 14: `feature_incompat` without a feature the image uses is reported.
  @Test func missingIncompatFeatureIsReported() throws {
    let img = try tinyImage()
    var sb = try Superblock.decode(try img.image.read(count: 256, atByte: 1024))
    sb.featureIncompat = 0
    let bytes = sb.encode(checksum: RoseChecksum(uuid: sb.uuid))
    try img.image.write(bytes, atByte: 1024)
    try img.image.write(bytes, atByte: 4096 + 1024)
    let lacks = Fsck.check(image: img.image).filter { $0.contains("lacks") }
    for name in ["INLINE", "TAILPACK", "DIRTREE", "EXTTREE", "XATTRNODE"] {
      #expect(lacks.contains { $0.contains("lacks \(name) ") }, "\(name): \(lacks)")
    }
    #expect(lacks.count == 5)
  }

  @Test func tinyImageIsClean() throws {
    let img = try tinyImage()
    let problems = Fsck.check(image: img.image)
    #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
  }

  /// Byte offsets of `block` to flip. Exhaustive flipping of all 374 used blocks would take far too
  /// long in a debug build (about 12 ms per fsck run), so: every byte of the superblock, of the
  /// checkpoint's fixed part and of the first 64 bytes of every block (the 32-byte header and the
  /// first record); every third byte of the records after them up to byte 256; the 96-byte core of
  /// the first four inodes of each inode page, and every 7th byte of the other cores, phased by
  /// slot; elsewhere a stride of 37 with a per-block phase, in three of the thirteen reserved zero
  /// blocks 3-15; data blocks three bytes each. `long` (ROSEPACK_LONG_TESTS=1) flips every core
  /// byte, every record byte up to 256 and the stride in every reserved block. Every byte of a
  /// metadata block is under one whole-block checksum (or a slot checksum, or the zero rule), so
  /// the strides still exercise each kind of coverage.
  static func flipOffsets(
    block: UInt32, isData: Bool, isInodePage: Bool, long: Bool, page: [UInt8]
  ) -> [Int] {
    var out = Set<Int>()
    var wholeCores = long ? Int.max : 4
    let phase = Int(block) % 37
    if isData {
      // The extent tree's 340 data blocks: a few bytes each (the same checksum covers all).
      out.formUnion([0, Int(block) % 4096, 4095])
      return out.sorted()
    }
    // The reserved blocks are alike (all zero, under the zero rule): three of them unless `long`.
    if long || !(5...14).contains(block) {
      for o in stride(from: phase, to: 4096, by: 37) { out.insert(o) }
    }
    switch block {
    case 0, 1: out.formUnion(1024..<1280)
    case 2: out.formUnion(0..<0x280)
    case 3...15: break
    default:
      // The 32-byte header and the first record whole; the records after them repeat its fields.
      out.formUnion(0..<64)
      out.formUnion(stride(from: long ? 64 : 64 + Int(block) % 3, to: 256, by: long ? 1 : 3))
      if isInodePage {
        // The 96-byte core of every inode, found by walking `nslots` from slot 0 (unused slots are
        // zero and covered by the stride).
        var slot = 0
        while slot + RoseLayout.minInodeSlots <= RoseLayout.inodesPerPage {
          let o = slot * RoseLayout.inodeSize
          let n = Int(page[o + SlotOffset.nslots])
          guard n >= RoseLayout.minInodeSlots else {
            slot += 1
            continue
          }
          if wholeCores > 0 {
            out.formUnion(o..<o + InodeCore.size)
            wholeCores -= 1
          } else {
            out.formUnion(stride(from: o + slot % 7, to: o + InodeCore.size, by: 7))
          }
          slot += n
        }
      }
    }
    return out.sorted()
  }

  @Test func everyFlippedByteIsReported() throws {
    let img = try tinyImage()
    let run = FsckRun(image: img.image, verifyData: true)
    run.run()
    #expect(run.problems.isEmpty)
    var dataBlocks = Set<UInt32>()
    var inodePages = Set<UInt32>()
    var used = Set<UInt32>(0..<16)
    for h in run.uses {
      for (a, u) in h {
        used.insert(a)
        if case .data = u { dataBlocks.insert(a) }
        if case .inodePage = u { inodePages.insert(a) }
      }
    }
    #expect(used.count > 40)
    var flips = 0
    var missed: [String] = []
    // The extent tree's 340 data blocks are alike (one SSA checksum each): eight of them are
    // flipped, and only their flips need fsck's data pass (time: each pass reads every data block).
    let flippedData = Set(dataBlocks.sorted().prefix(4) + dataBlocks.sorted().suffix(4))
    let long = ProcessInfo.processInfo.environment["ROSEPACK_LONG_TESTS"] == "1"
    for block in used.sorted() where !dataBlocks.contains(block) || flippedData.contains(block) {
      let base = UInt64(block) * 4096
      let isData = dataBlocks.contains(block)
      let page = try img.image.readBlock(block)
      for o in Self.flipOffsets(
        block: block, isData: isData, isInodePage: inodePages.contains(block),
        long: long, page: page)
      {
        let orig = try img.image.read(count: 1, atByte: base + UInt64(o))
        try img.image.write([orig[0] ^ 0x5A], atByte: base + UInt64(o))
        if Fsck.check(image: img.image, verifyData: isData).isEmpty {
          missed.append("block \(block) byte \(o)")
        }
        try img.image.write(orig, atByte: base + UInt64(o))
        flips += 1
      }
    }
    #expect(missed.isEmpty, "undetected flips: \(missed.prefix(20))")
    #expect(Fsck.check(image: img.image).isEmpty)
    print("flipped \(flips) bytes in \(used.count) used blocks (long: \(long))")
  }

  @Test func truncatedImagesAreReported() throws {
    let img = try tinyImage()
    let size = img.image.fileSize
    let bytes = try img.image.read(count: Int(size), atByte: 0)
    for cut in [
      0, 1, 1024, 1100, 4096, 8192, 12288, 65536, 65536 + 4096, Int(size) / 2, Int(size) - 4096,
    ] {
      #expect(ftruncate(img.image.fd, off_t(cut)) == 0)
      #expect(!Fsck.check(image: img.image).isEmpty, "cut at \(cut)")
      #expect(throws: (any Error).self) { _ = try ImageReader(image: img.image).loadTree(head: 0) }
    }
    try img.image.write(bytes, atByte: 0)
    #expect(Fsck.check(image: img.image).isEmpty)
  }

  @Test func garbageIsReportedNotTrapped() throws {
    let img = try tinyImage()
    let size = img.image.fileSize
    let original = try img.image.read(count: Int(size), atByte: 0)
    // Pure garbage of several sizes.
    for (i, n) in [0, 100, 4096, 70_000, 300_000].enumerated() {
      #expect(ftruncate(img.image.fd, 0) == 0)
      try img.image.write(testBytes(n, seed: UInt64(100 + i)), atByte: 0)
      #expect(!Fsck.check(image: img.image).isEmpty)
    }
    // A valid fixed area followed by garbage.
    #expect(ftruncate(img.image.fd, 0) == 0)
    try img.image.write(
      Array(original[0..<65536]) + testBytes(Int(size) - 65536, seed: 9), atByte: 0)
    #expect(!Fsck.check(image: img.image).isEmpty)
    // Random multi-byte corruption of used blocks: problems, never a trap, never a hang.
    try img.image.write(original, atByte: 0)
    var rng = SystemRandomNumberGenerator()
    let usedEnd = Int(img.report.writtenBlocks) * 4096
    for _ in 0..<300 {
      var positions: [Int] = []
      for _ in 0..<Int.random(in: 1...8, using: &rng) {
        let o = Int.random(in: 0..<usedEnd, using: &rng)
        let v = UInt8.random(in: 1...255, using: &rng)
        try img.image.write([original[o] ^ v], atByte: UInt64(o))
        positions.append(o)
      }
      let problems = Fsck.check(image: img.image)
      if let r = try? ImageReader(image: img.image) {
        for h in 0..<r.checkpoint.heads.count { _ = try? r.loadTree(head: h) }
      }
      #expect(!problems.isEmpty, "flips at \(positions)")
      for o in positions { try img.image.write([original[o]], atByte: UInt64(o)) }
    }
  }
}

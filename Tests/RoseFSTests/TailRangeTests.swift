import Foundation
import Testing

@testable import RoseFS

/// The packer keeps a tail block's inode page range (`index` of its SSA entry) within 64 pages, the
/// bound the engine keeps (FORMAT.md 9.3, 13.2).
@Suite struct TailRangeTests {
  static let t = Timestamp(seconds: 1_700_000_000)

  /// Checks every tail-packed file of `files`: content, and an SSA entry whose range holds the
  /// file's inode page and spans at most 64 pages. Returns each file's tail block.
  static func checkTails(_ img: TestImage, _ files: [String: (Inode, [UInt8])]) throws -> [String:
    UInt32]
  {
    let r = try img.reader()
    var blockOf: [String: UInt32] = [:]
    for (name, (inode, bytes)) in files {
      let rec = try r.readInodeRecord(inode.ino, head: 0)
      #expect(try r.readAll(ino: inode.ino, head: 0) == bytes, "\(name)")
      guard rec.has(InodeFlag.tail) else { continue }
      let e = try #require(try r.ssaEntry(ofBlock: rec.tailBlk))
      let nid = inode.ino / UInt32(RoseLayout.inodesPerPage)
      #expect(e.kind == SSAKind.tail)
      #expect(e.index <= TailPacker.maxPageRange, "\(name): tail block range \(e.index) pages")
      #expect(e.owner <= nid && nid <= e.owner + e.index, "\(name)")
      blockOf[name] = rec.tailBlk
    }
    #expect(Fsck.check(image: img.image).isEmpty)
    return blockOf
  }

  /// A regular file named `name` in `root` holding `bytes`, stored as the packer stores ingested data.
  static func addFile(_ name: String, _ bytes: [UInt8], to root: Inode, in b: ImageBuilder) throws
    -> Inode
  {
    let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: Self.t)
    f.content = try b.data.store(bytes, ino: f.ino)
    root.children[Name(name)] = f
    return f
  }

  /// A 2000-byte tail leaves its block open with room; 2,800 empty files later (3-slot inodes, 42 to
  /// a page: 66 inode pages), a 1000-byte tail would fit there best, but the block's range would span
  /// 66 pages: it starts a new block.
  @Test func tailsFarApartInInputGoToSeparateBlocks() throws {
    var files: [String: (Inode, [UInt8])] = [:]
    let img = try TestImage { b in
      let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: Self.t)
      func add(_ name: String, _ bytes: [UInt8]) throws {
        files[name] = (try Self.addFile(name, bytes, to: root, in: b), bytes)
      }
      try add("first", testBytes(4096 + 2000, seed: 1))
      for i in 0..<2800 { try add("empty-\(i)", []) }
      try add("last", testBytes(4096 + 1000, seed: 2))
      return [Subvolume(name: "a", root: root)]
    }
    let blocks = try Self.checkTails(img, files)
    #expect(blocks["first"] != nil && blocks["last"] != nil)
    #expect(blocks["first"] != blocks["last"])
  }

  /// Close in input order (provisional inode numbers 80 apart, 2 pages), but 80 empty files with a
  /// 3,000-byte inline xattr between them (98 slots each: one to a page) spread the final numbers
  /// over 80 pages: the later fragment moves to a tail block of its own when the image is finished.
  @Test func multiSlotInodesBetweenTailsMoveTheFragment() throws {
    var files: [String: (Inode, [UInt8])] = [:]
    let img = try TestImage { b in
      let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: Self.t)
      func add(_ name: String, _ bytes: [UInt8]) throws {
        files[name] = (try Self.addFile(name, bytes, to: root, in: b), bytes)
      }
      try add("first", testBytes(4096 + 2000, seed: 1))
      for i in 0..<80 {
        let f = b.makeInode(
          kind: .regular, permissions: 0o644, mtime: Self.t,
          xattrs: [Xattr("user.pad", testBytes(3000, seed: UInt64(100 + i)))])
        f.content = try b.data.store([], ino: f.ino)
        root.children[Name("padded-\(i)")] = f
      }
      try add("last", testBytes(4096 + 1000, seed: 2))
      try add("after", testBytes(4096 + 500, seed: 3))
      return [Subvolume(name: "a", root: root)]
    }
    let blocks = try Self.checkTails(img, files)
    #expect(blocks["first"] != nil && blocks["last"] != nil)
    #expect(blocks["first"] != blocks["last"])
    let perPage = UInt32(RoseLayout.inodesPerPage)
    let first = try #require(files["first"]).0.ino / perPage
    let last = try #require(files["last"]).0.ino / perPage
    #expect(last - first > TailPacker.maxPageRange)
  }
}

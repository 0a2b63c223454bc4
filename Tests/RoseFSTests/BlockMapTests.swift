import Foundation
import Testing

@testable import RoseFS

@Suite struct BlockMapTests {
  /// Every block of a packed image has the owner the format says: the fixed area by address, the
  /// packed kinds add up to the space report, and each data block holds the bytes of the file the map
  /// names at the logical block it names.
  @Test func ownersMatchTheImage() throws {
    let tmp = TempImage()
    let b = try ImageBuilder(
      image: tmp.image, options: BuildOptions(label: "t", sourceDateEpoch: 1_700_000_000))
    let root = try makeSmallTree(b)
    _ = try b.finish(subvolumes: [Subvolume(name: "a", root: root)])
    let map = try BlockMap.build(image: tmp.image)
    #expect(map.problems.isEmpty)
    #expect(map.owners[0].kind == .superblock && map.owners[1].kind == .superblock)
    #expect(map.owners[2].kind == .checkpoint && map.owners[3].kind == .checkpoint)
    #expect((4..<16).allSatisfy { map.owners[$0].kind == .reserved })
    let space = try ImageReader(image: tmp.image).spaceReport()
    func bytes(_ k: BlockOwnerKind) -> UInt64 {
      UInt64(map.owners.filter { $0.kind == k }.count) * 4096
    }
    #expect(bytes(.fileData) == space.fileDataBytes)
    #expect(bytes(.tail) == space.tailBlockBytes)
    #expect(bytes(.inodePage) == space.inodePageBytes)
    #expect(bytes(.directoryNode) == space.directoryNodeBytes)
    #expect(bytes(.nat) == space.natBytes)
    #expect(bytes(.vbm) == space.vbmBytes)
    #expect(bytes(.ssa) == space.ssaBytes)
    #expect(bytes(.free) == space.freeBytes)
    let reader = try ImageReader(image: tmp.image)
    var checked = 0
    for (addr, o) in map.owners.enumerated() where o.kind == .fileData {
      let path = try #require(map.paths[o.id])
      let content = try reader.readAll(ino: o.id, head: 0)
      let start = Int(o.index) * 4096
      let expected = Array(content[start..<min(content.count, start + 4096)])
      let block = try tmp.image.readBlock(UInt32(addr))
      #expect(Array(block.prefix(expected.count)) == expected, "\(path) block \(o.index)")
      #expect(map.describe(addr).contains("\(path) (ino \(o.id)) block \(o.index)"))
      checked += 1
    }
    #expect(checked > 0)
    // One head: nothing is shared.
    #expect(!map.owners.contains { $0.isShared })
  }

  /// A snapshot B of A shares every live block: the map marks each of them as live in a+b.
  @Test func snapshotBlocksAreShared() throws {
    let tmp = TempImage()
    let b = try ImageBuilder(
      image: tmp.image, options: BuildOptions(label: "t", sourceDateEpoch: 1_700_000_000))
    let root = try makeSmallTree(b)
    _ = try b.finish(subvolumes: [
      Subvolume(name: "a", root: root), Subvolume(name: "b", root: b.snapshot(root)),
    ])
    let map = try BlockMap.build(image: tmp.image)
    #expect(map.headNames == ["a", "b"])
    let live = map.owners.filter { $0.headMask != 0 }
    #expect(!live.isEmpty)
    #expect(live.allSatisfy { $0.isShared })
    #expect(map.headList(3) == "a+b")
  }
}

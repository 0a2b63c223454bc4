import Foundation
import RoseTestSupport
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// Issue 10: the packer's own per-entry state stays a few flat arrays. These fail if a per-entry
/// dictionary, set or stored form (the old `[UInt32: Inode]` views at about 100 bytes per entry, or
/// the `[ObjectIdentifier: AuxNodes]` plan at about 280) comes back. Measured as the smallest of several
/// heap deltas, so that allocations of tests running beside it do not decide the outcome.
@Suite struct PackerMemoryTests {
  static let entries = 30_000

  /// A root with `entries` empty files in directories of 100 (inline dirents: no tree nodes, whose
  /// 4 KiB blocks the plan holds until they are written), numbered as `finish` numbers them.
  static func tree(_ b: ImageBuilder) throws -> Inode {
    let t = Timestamp(seconds: 1_700_000_000)
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    var dir = root
    for i in 0..<entries {
      if i % 100 == 0 {
        dir = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
        root.children[Name("d\(i / 100)")] = dir
      }
      let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
      dir.children[Name("f\(i)")] = f
    }
    try b.assignInodeNumbers([Subvolume(name: "a", root: root)])
    return root
  }

  @Test func headViewAndNodePlanStayFlat() throws {
    guard HeapMeter.bytesInUse() != nil else {
      print("skipped: no glibc malloc_info to measure the heap with")
      return
    }
    let tmp = TempImage()
    let b = try ImageBuilder(image: tmp.image, options: BuildOptions(sourceDateEpoch: 0))
    let root = try Self.tree(b)
    let view = try HeadView(root: root, inoLimit: b.nextIno, trackObjects: false)
    #expect(view.inodes.count == Self.entries + Self.entries / 100 + 1)
    // Inode? + nlink + parent per number: 16 bytes, with room for numbering gaps.
    let viewCost = try #require(
      try HeapMeter.smallestGrowthPerEntry(entries: Self.entries, under: 40) {
        try HeadView(root: root, inoLimit: b.nextIno, trackObjects: false)
      })
    print("PackerMemoryTests: HeadView \(viewCost) bytes per entry")
    #expect(viewCost < 40, "HeadView holds \(viewCost) bytes per entry")
    // With one head the plan keeps no object list (it reads the view: 0.01 bytes per entry measured;
    // the copy it replaced took 8) and only the forms of inodes with nodes.
    let planCost = try #require(
      try HeapMeter.smallestGrowthPerEntry(entries: Self.entries, under: 4) {
        try b.planNodes(views: [view], hashSeed: [UInt8](repeating: 0, count: 16))
      })
    print("PackerMemoryTests: node plan \(planCost) bytes per entry")
    #expect(planCost < 4, "the node plan holds \(planCost) bytes per entry")
  }
}

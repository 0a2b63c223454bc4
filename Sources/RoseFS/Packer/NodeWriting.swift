/// Each head's node address table while the packer writes nodes: `entries[h][nid]` is the block of
/// `nid` in head h (0: free there).
struct NATTable {
  var entries: [[UInt32]]
  let nextFreeNid: UInt32

  init(heads: Int, nextFreeNid: UInt32) {
    self.nextFreeNid = nextFreeNid
    entries = [[UInt32]](
      repeating: [UInt32](repeating: 0, count: Int(nextFreeNid)), count: heads)
  }

  var heads: Int { entries.count }
  /// Content blocks of every NAT: `ceil(next_free_nid / 1016)` (FORMAT.md 6.2).
  var leafCount: Int {
    (Int(nextFreeNid) + RoseLayout.addressesPerBlock - 1) / RoseLayout.addressesPerBlock
  }
  /// Whether head h's NAT equals head 0's (a snapshot: the same NAT blocks serve both).
  func sharesHead0(_ h: Int) -> Bool { h > 0 && entries[h] == entries[0] }
  /// Heads that write a NAT of their own.
  var ownHeads: [Int] { (0..<heads).filter { !sharesHead0($0) } }
}

extension ImageBuilder {
  /// Packer phase "inode pages" (FORMAT.md section 7), by nid; a page identical in several heads is
  /// written once and named by each head's NAT.
  func writeInodePages(views: [HeadView], plan: NodePlan, nat: inout NATTable) throws -> (
    runs: [OwnerRun], count: UInt64
  ) {
    var runs: [OwnerRun] = []
    var count: UInt64 = 0
    var slot = [UInt8](repeating: 0, count: RoseLayout.inodeSize)
    for nid in UInt32(1)..<max(plan.firstNodeNid, 1) {
      var versions: [(bytes: [UInt8], addr: UInt32)] = []
      for (h, v) in views.enumerated() {
        var page = [UInt8](repeating: 0, count: RoseLayout.blockSize)
        var any = false
        for s in 0..<RoseLayout.inodesPerPage {
          let ino = nid * UInt32(RoseLayout.inodesPerPage) + UInt32(s)
          guard let inode = v.inodes[ino] else { continue }
          let a = try form(of: inode, in: plan)
          encodeSlot(inode, view: v, aux: a, into: &slot)
          let at = s * RoseLayout.inodeSize
          page.replaceSubrange(at..<at + slot.count, with: slot)
          any = true
        }
        guard any else { continue }
        if let same = versions.first(where: { $0.bytes == page }) {
          nat.entries[h][Int(nid)] = same.addr
        } else {
          let addr = try page.withUnsafeBytes { try stream.append($0, dataChecksum: false) }
          versions.append((page, addr))
          nat.entries[h][Int(nid)] = addr
          runs.append(OwnerRun(start: addr, count: 1, kind: SSAKind.node, owner: nid, index: 0))
          count += 1
        }
      }
    }
    return (runs, count)
  }

  /// Packer phase "tree nodes" (FORMAT.md 8.2, 9.2, 10), by nid; each is in the NAT of every head
  /// that holds an object owning it.
  func writeTreeNodes(views: [HeadView], plan: NodePlan, nat: inout NATTable) throws -> [OwnerRun] {
    var runs: [OwnerRun] = []
    // Nodes planned without their bytes: each owner's, built again as its first node comes.
    var rebuilt: [PendingNode] = []
    var rebuiltNext = 0
    var nextOwner = 0
    for (n, owner) in zip(plan.nodes, plan.nodeOwner) {
      var bytes = n.bytes
      if bytes.isEmpty {
        if rebuiltNext == rebuilt.count {
          guard nextOwner < plan.rebuild.count else {
            throw RoseFSError.internalInvariant("tree node \(n.nid) has no owner to build it")
          }
          let r = plan.rebuild[nextOwner]
          nextOwner += 1
          var nid = r.startNid
          rebuilt = try buildAux(r.inode, hashSeed: plan.hashSeed, nextNid: &nid).nodes
          rebuiltNext = 0
        }
        guard rebuiltNext < rebuilt.count, rebuilt[rebuiltNext].nid == n.nid else {
          throw RoseFSError.internalInvariant(
            "tree node \(n.nid) came out differently when rebuilt")
        }
        bytes = rebuilt[rebuiltNext].bytes
        rebuilt[rebuiltNext].bytes = []
        rebuiltNext += 1
      }
      let addr = stream.nextBlock
      sealHeader(&bytes, blkaddr: addr)
      _ = try bytes.withUnsafeBytes { try stream.append($0, dataChecksum: false) }
      let owners = [owner] + (plan.nodeSharers[n.nid] ?? [])
      for (h, v) in views.enumerated() where owners.contains(where: v.holds) {
        nat.entries[h][Int(n.nid)] = addr
      }
      runs.append(OwnerRun(start: addr, count: 1, kind: SSAKind.node, owner: n.nid, index: 0))
    }
    return runs
  }
}

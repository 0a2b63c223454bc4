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
  /// Inode pages per chunk of `writeInodePages` on two cores: two chunks held, 128 KiB per head
  /// (the second lane's malloc arena grows to what it holds).
  static let pageChunk = 16

  /// Packer phase "inode pages" (FORMAT.md section 7), by nid; a page identical in several heads is
  /// written once and named by each head's NAT. Pages are encoded on both cores (`TwoLanes`) and
  /// written here in nid order.
  func writeInodePages(views: [HeadView], plan: NodePlan, nat: inout NATTable) throws -> (
    runs: [OwnerRun], count: UInt64
  ) {
    var runs: [OwnerRun] = []
    var count: UInt64 = 0
    // Inode pages are nids 1 ..< firstNodeNid (nid 0 is never used).
    try TwoLanes.run(
      count: max(Int(plan.firstNodeNid), 1) - 1, chunk: Self.pageChunk,
      work: { range in
        try range.map { i in
          let nid = UInt32(i + 1)
          return (nid, try views.map { try encodeInodePage(nid: nid, view: $0, plan: plan) })
        }
      },
      consume: { chunk in
        for (nid, pages) in chunk {
          var versions: [(bytes: [UInt8], addr: UInt32)] = []
          for (h, page) in pages.enumerated() {
            guard let page else { continue }
            if let same = versions.first(where: { $0.bytes == page }) {
              nat.entries[h][Int(nid)] = same.addr
            } else {
              let addr = try page.withUnsafeBytes { try stream.append($0, dataChecksum: false) }
              versions.append((page, addr))
              nat.entries[h][Int(nid)] = addr
              runs.append(
                OwnerRun(start: addr, count: 1, kind: SSAKind.node, owner: nid, index: 0))
              count += 1
            }
          }
        }
      })
    return (runs, count)
  }

  /// Inode page `nid` of one head, or nil when the head has no inode there.
  private func encodeInodePage(nid: UInt32, view: HeadView, plan: NodePlan) throws -> [UInt8]? {
    var page = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    var any = false
    for s in 0..<RoseLayout.inodesPerPage {
      let ino = nid * UInt32(RoseLayout.inodesPerPage) + UInt32(s)
      guard let inode = view.inodes[ino] else { continue }
      let a = try form(of: inode, in: plan)
      page.withUnsafeMutableBytes { buf in
        let at = s * RoseLayout.inodeSize
        encodeSlot(
          inode, view: view, aux: a, into: UnsafeMutableRawBufferPointer(rebasing: buf[at...]))
      }
      any = true
    }
    return any ? page : nil
  }

  /// Owners per chunk when `writeTreeNodes` builds tree nodes again on two cores: memory is the
  /// nodes of two owners at a time where one thread held one owner's (two per lane measured 0.4 MiB
  /// more peak RSS on 200,000 small files, in directories of 1,000).
  static let rebuildChunk = 1

  /// Packer phase "tree nodes" (FORMAT.md 8.2, 9.2, 10), by nid; each is in the NAT of every head
  /// that holds an object owning it. Nodes planned without their bytes (one head) are built again
  /// here, their owners on both cores (`TwoLanes`), and written in nid order.
  func writeTreeNodes(views: [HeadView], plan: NodePlan, nat: inout NATTable) throws -> [OwnerRun] {
    var runs: [OwnerRun] = []
    var next = 0
    func write(_ built: PendingNode) throws {
      guard next < plan.nodes.count, plan.nodes[next].nid == built.nid else {
        throw RoseFSError.internalInvariant(
          "tree node \(built.nid) came out differently when rebuilt")
      }
      let owner = plan.nodeOwner[next]
      next += 1
      var bytes = built.bytes
      let addr = stream.nextBlock
      sealHeader(&bytes, blkaddr: addr)
      _ = try bytes.withUnsafeBytes { try stream.append($0, dataChecksum: false) }
      let owners = [owner] + (plan.nodeSharers[built.nid] ?? [])
      for (h, v) in views.enumerated() where owners.contains(where: v.holds) {
        nat.entries[h][Int(built.nid)] = addr
      }
      runs.append(
        OwnerRun(start: addr, count: 1, kind: SSAKind.node, owner: built.nid, index: 0))
    }
    if plan.rebuild.isEmpty {
      for n in plan.nodes { try write(n) }
    } else {
      try TwoLanes.run(
        count: plan.rebuild.count, chunk: Self.rebuildChunk,
        work: { range in
          try plan.rebuild[range].map { r in
            var nid = r.startNid
            return try buildAux(r.inode, hashSeed: plan.hashSeed, nextNid: &nid).nodes
          }
        },
        consume: { owners in
          for nodes in owners {
            for n in nodes { try write(n) }
          }
        })
    }
    guard next == plan.nodes.count else {
      throw RoseFSError.internalInvariant(
        "\(plan.nodes.count - next) planned tree nodes have no owner to build them")
    }
    return runs
  }
}

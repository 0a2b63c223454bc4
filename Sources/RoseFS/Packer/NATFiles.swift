/// What `writeNATFiles` wrote: each head's NAT root and the addresses of every block of its map.
struct NATFiles {
  var roots: [MetaRoot]
  /// Per head: the content and index blocks its NAT map references (shared ones included).
  var blocks: [[UInt32]]
  /// SSA owners of the blocks written.
  var runs: [OwnerRun]
}

extension ImageBuilder {
  /// Packer phase "NAT files" (FORMAT.md 6.1, 6.2): each head's NAT meta-file after the nodes. A
  /// head whose NAT equals head 0's uses head 0's map; otherwise content blocks identical to head 0's
  /// are shared (same address in both maps) and only the others are written.
  func writeNATFiles(_ nat: NATTable) throws -> NATFiles {
    var files = NATFiles(
      roots: [MetaRoot](repeating: MetaRoot(), count: nat.heads),
      blocks: [[UInt32]](repeating: [], count: nat.heads), runs: [])
    var metaWriter = MetaFileWriter(builder: self, cpVer: cpVer)
    let per = RoseLayout.addressesPerBlock
    for h in 0..<nat.heads {
      if nat.sharesHead0(h) {
        files.roots[h] = files.roots[0]
        files.blocks[h] = files.blocks[0]
        continue
      }
      let entries = nat.entries[h]
      var leaves: [(index: Int, body: [UInt8])] = []
      for i in 0..<nat.leafCount {
        var body: [UInt8] = []
        body.reserveCapacity(RoseLayout.blockSize - RoseLayout.headerSize)
        for a in entries[(i * per)..<min((i + 1) * per, entries.count)] { appendLE(&body, a) }
        leaves.append((i, body))
      }
      let sharedFrom: [UInt32]? = h > 0 ? files.blocks[0] : nil
      let head0 = nat.entries[0]
      let (root, addrs) = try metaWriter.writeMetaFile(
        type: MetaType.nat, head: h, nblocks: nat.leafCount, leaves: leaves, magic: Magic.nat,
        countNonZero: true,
        reuse: sharedFrom.map { addrsA in
          { i, _ in
            let lo = i * per
            let hi = min(lo + per, head0.count)
            return head0[lo..<hi].elementsEqual(entries[lo..<hi]) ? addrsA[i] : nil
          }
        }, runs: &files.runs)
      files.roots[h] = root
      files.blocks[h] = addrs
    }
    return files
  }
}

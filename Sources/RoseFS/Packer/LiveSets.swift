/// Packer phase "live sets" (FORMAT.md 6.3, 11): the blocks each head reaches before the VBM and SSA
/// blocks are placed (file data, tail blocks, nodes, NAT blocks), and which heads can share another
/// head's bitmap (VBM_SAME_AS: the same live set).
struct LiveSets {
  /// Per head: sorted, merged block ranges.
  var ranges: [[(UInt32, UInt32)]]
  /// Per head: the lower head whose VBM it uses, or nil when it has its own.
  var vbmSameAs: [Int?]

  init(builder: ImageBuilder, views: [HeadView], nat: NATTable, natFiles: NATFiles) {
    ranges = []
    for (h, v) in views.enumerated() {
      var r: [(UInt32, UInt32)] = []
      for inode in v.inodes.values where !inode.content.isInline {
        for e in inode.content.extents { r.append((e.physical, e.count)) }
        if let t = inode.content.tail { r.append((builder.tails.resolve(t.block), 1)) }
      }
      for a in nat.entries[h] where a != 0 { r.append((a, 1)) }
      for a in natFiles.blocks[nat.sharesHead0(h) ? 0 : h] { r.append((a, 1)) }
      ranges.append(mergeRanges(r))
    }
    vbmSameAs = [Int?](repeating: nil, count: views.count)
    for h in 1..<max(views.count, 1) {
      if let g = (0..<h).first(where: { ranges[$0] == ranges[h] && vbmSameAs[$0] == nil }) {
        vbmSameAs[h] = g
      }
    }
  }

  /// Heads that write a bitmap of their own.
  var ownVBMHeads: [Int] { ranges.indices.filter { vbmSameAs[$0] == nil } }
}

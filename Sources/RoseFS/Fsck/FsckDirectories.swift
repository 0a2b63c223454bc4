// FORMAT.md section 14, item 6: directory entries, inline and in B+ trees, and the tree and xattr
// nodes' headers.

extension FsckRun {
  func node(_ h: Int, nid: UInt32, ino: UInt32, magic: UInt32, level: Int?, _ w: String) -> (
    UInt32, [UInt8]
  )? {
    guard let a = natMap[h][nid], nid != 0 else {
      problem("\(w): nid \(nid) is free in the NAT of head \(h)")
      return nil
    }
    guard reachedNids[h].insert(nid).inserted else {
      problem("\(w): nid \(nid) is reached twice in head \(h)")
      return nil
    }
    let u: BlockUse =
      magic == Magic.dirNode
      ? .dirNode(nid: nid)
      : magic == Magic.extentNode ? .extentNode(nid: nid) : .xattrNode(nid: nid)
    use(h, a, u, w)
    guard let b = headerBlock(a, magic: magic, "\(w) nid \(nid)") else { return nil }
    let hd = BlockHeader.decode(b)
    if hd.owner != nid || hd.aux != ino || hd.subtype != 0
      || level.map({ Int(hd.level) != $0 }) ?? false
    {
      problem(
        "\(w) nid \(nid) (block \(a)): header owner \(hd.owner) aux \(hd.aux) level \(hd.level) subtype \(hd.subtype), expected owner \(nid) aux \(ino) level \(level ?? 0) subtype 0"
      )
    }
    return (a, b)
  }

  /// Walks a B+ tree (items 6 and 7) with the shared `TreeWalk`: each node's header through `node`
  /// (which also records the block's use), the tree's shape by the walk. `leaf` returns the first key
  /// of a leaf.
  func walkTree(
    _ h: Int, rec: InodeRecord, kind: TreeKind, _ w: String, leaf: (UInt32, [UInt8]) -> UInt64?
  ) {
    let walk = TreeWalk(
      kind: kind,
      load: { nid in self.node(h, nid: nid, ino: rec.ino, magic: kind.magic, level: nil, w) },
      problem: { self.problem("\(w) \($0)") })
    // Neither closure throws: fsck reports and goes on.
    try? walk.walk(root: rec.treeRoot, depth: Int(rec.treeDepth)) { a, b in leaf(a, b) }
  }

  func directoryEntries(_ h: Int, _ d: InodeState) -> [DirectoryEntry] {
    guard let reader else { return [] }
    let rec = d.rec
    let w = "head \(h) \(d.path) (ino \(rec.ino))"
    var entries: [DirectoryEntry] = []
    if rec.has(InodeFlag.inlineDentry) {
      do { entries = try reader.inlineEntries(rec) } catch {
        report(error, w)
        return []
      }
      if rec.size != UInt64(rec.inlineLen) {
        problem("\(w): size \(rec.size) is not inline_len \(rec.inlineLen)")
      }
    } else if rec.has(InodeFlag.dirTree) {
      var leaves: UInt64 = 0
      walkTree(h, rec: rec, kind: .directory, "\(w) directory tree") { a, b in
        leaves += 1
        let r = ByteReader(b)
        let count = Int(BlockHeader.decode(r).count)
        let lw = "\(w) directory leaf block \(a)"
        do {
          let es = try ImageReader.dirLeafEntries(b, addr: a, ino: rec.ino)
          // Names packed downward from the end, no overlap; zero between records and names.
          var spans = (0..<count).map { i -> (Int, Int) in
            let d = DirLeafRecord.decode(r, DirLeafRecord.at(i))
            return (Int(d.nameOffset), Int(d.nameLength))
          }
          spans.sort { $0.0 > $1.0 }
          var low = RoseLayout.blockSize
          for (off, len) in spans {
            if off + len != low {
              problem("\(lw): names are not packed downward from the end (name at \(off))")
            }
            low = min(low, off)
          }
          requireZero(b, DirLeafRecord.at(count)..<low, "\(lw) between records and names")
          entries += es
          return es.first?.key
        } catch {
          report(error)
          return nil
        }
      }
      if rec.size != leaves * UInt64(RoseLayout.blockSize) {
        problem("\(w): size \(rec.size), the tree has \(leaves) leaves")
      }
      if rec.inlineLen != 0 { problem("\(w): inline_len \(rec.inlineLen) in a tree directory") }
    } else {
      return []
    }
    // Names, keys, order, uniqueness.
    var prev: DirectoryEntry?
    for e in entries {
      let ew = "\(w) entry \(Name.printable(e.name))"
      if e.name.isEmpty || e.name.count > 255 || e.name.contains(0)
        || e.name.contains(UInt8(ascii: "/"))
      {
        problem("\(ew): invalid name")
      }
      let hv = nameHash(e.name, seed: sb?.hashSeed ?? [])
      if e.key >> 32 != UInt64(hv) {
        problem("\(ew): key \(e.key) does not carry the name hash \(hv)")
      }
      if let p = prev {
        if e.key <= p.key { problem("\(ew): key \(e.key) is not above the previous key \(p.key)") }
        if p.key >> 32 == e.key >> 32 {
          if e.key & DirectoryKey.seqMask != (p.key & DirectoryKey.seqMask) + 1 {
            problem("\(ew): seq is not consecutive")
          }
          if !p.name.lexicographicallyPrecedes(e.name) {
            problem("\(ew): duplicate or unordered name")
          }
        } else if e.key & DirectoryKey.seqMask != 0 {
          problem("\(ew): first entry of its hash has seq \(e.key & DirectoryKey.seqMask)")
        }
      } else if e.key & DirectoryKey.seqMask != 0 {
        problem("\(ew): first entry of its hash has seq \(e.key & DirectoryKey.seqMask)")
      }
      prev = e
    }
    return entries
  }

  // Item 5 and 7: one inode's slot, content and xattrs.
}

// FORMAT.md section 14, item 4: the meta-files (NAT, VBM, SSA) of every head, map-index blocks
// included.

extension FsckRun {

  /// Walks one meta-file map: every index block and content block stored, checked, and handed to
  /// `content(index, address, bytes)`. Returns the addresses of every block of the meta-file.
  @discardableResult
  func walkMeta(
    _ root: MetaRoot, type: UInt8, aux: UInt32, expectedBlocks: UInt64, what: String,
    content: (UInt32, UInt32, [UInt8]) -> Void
  ) -> [(addr: UInt32, use: BlockUse)] {
    var out: [(UInt32, BlockUse)] = []
    if UInt64(root.nblocks) != expectedBlocks {
      problem("\(what): nblocks \(root.nblocks), expected \(expectedBlocks)")
    }
    let depth = Int(root.depth)
    if depth != ImageReader.minimalDepth(root.nblocks) {
      problem("\(what): depth \(depth) is not the smallest for \(root.nblocks) blocks")
    }
    guard depth <= 4 else { return out }
    let magic = [Magic.nat, Magic.nat, Magic.vbm, Magic.ssa][Int(type)]
    let head = UInt8(truncatingIfNeeded: aux)
    var seen = Set<UInt32>()
    let per = UInt64(RoseLayout.addressesPerBlock)
    func contentBlock(_ a: UInt32, _ index: UInt64) {
      guard index < UInt64(root.nblocks) else {
        problem("\(what): content block \(index) at block \(a) is past nblocks \(root.nblocks)")
        return
      }
      guard seen.insert(a).inserted else {
        problem("\(what): block \(a) appears twice in the map")
        return
      }
      let cw = "\(what) content block \(index)"
      guard let b = headerBlock(a, magic: magic, cw) else { return }
      let hd = BlockHeader.decode(b)
      let contentAux: UInt32 = type == MetaType.vbm ? aux : 0
      if UInt64(hd.owner) != index || hd.level != 0 || hd.subtype != 0 || hd.aux != contentAux {
        problem(
          "\(cw) (block \(a)): header owner \(hd.owner) level \(hd.level) subtype \(hd.subtype) aux \(hd.aux), expected owner \(index) level 0 subtype 0 aux \(contentAux)"
        )
      }
      out.append(
        (
          a,
          .meta(type: type, head: type == MetaType.ssa ? 0 : head, level: 0, index: UInt32(index))
        ))
      content(UInt32(index), a, b)
    }
    func indexBlock(_ a: UInt32, level: Int, index: UInt64, span: UInt64) {
      guard seen.insert(a).inserted else {
        problem("\(what): block \(a) appears twice in the map")
        return
      }
      let iw = "\(what) map-index level \(level) index \(index)"
      guard let b = headerBlock(a, magic: Magic.mapIndex, iw) else { return }
      let r = ByteReader(b)
      let hd = BlockHeader.decode(r)
      var nonZero = 0
      for i in 0..<RoseLayout.addressesPerBlock where AddressArray.read(r, i) != 0 { nonZero += 1 }
      if UInt64(hd.owner) != index || Int(hd.level) != level || hd.subtype != type || hd.aux != aux
        || Int(hd.count) != nonZero
      {
        problem(
          "\(iw) (block \(a)): header owner \(hd.owner) level \(hd.level) subtype \(hd.subtype) aux \(hd.aux) count \(hd.count), expected \(index) \(level) \(type) \(aux) \(nonZero)"
        )
      }
      if nonZero == 0 { problem("\(iw) (block \(a)): stored index block without children") }
      out.append(
        (
          a,
          .meta(
            type: type, head: type == MetaType.ssa ? 0 : head, level: UInt8(level),
            index: UInt32(index))
        ))
      let childSpan = span / per
      for i in 0..<RoseLayout.addressesPerBlock {
        let c = AddressArray.read(r, i)
        if c == 0 { continue }
        let childIndex = index * per + UInt64(i)
        if childIndex * childSpan >= UInt64(root.nblocks) {
          problem("\(iw) (block \(a)): child \(i) covers blocks past nblocks \(root.nblocks)")
          continue
        }
        if level == 1 {
          contentBlock(c, childIndex)
        } else {
          indexBlock(c, level: level - 1, index: childIndex, span: childSpan)
        }
      }
    }
    if root.root == 0 { return out }
    if depth == 0 {
      if root.nblocks == 0 {
        problem("\(what): root \(root.root) with nblocks 0")
      } else {
        contentBlock(root.root, 0)
      }
    } else {
      var span: UInt64 = 1
      for _ in 0..<depth { span *= per }
      indexBlock(root.root, level: depth, index: 0, span: span)
    }
    return out
  }

  func checkMetaFiles() {
    guard let sb, let cp else { return }
    let per = UInt64(RoseLayout.addressesPerBlock)
    let natBlocks = (UInt64(cp.nextFreeNid) + per - 1) / per
    let vbmCount =
      (mainBlocks + UInt64(RoseLayout.bitsPerVBMBlock) - 1) / UInt64(RoseLayout.bitsPerVBMBlock)
    let ssaCount =
      (mainBlocks + UInt64(RoseLayout.ssaEntriesPerBlock) - 1)
      / UInt64(RoseLayout.ssaEntriesPerBlock)
    // The NAT as stored, before a head's own journal entries (which apply to that head only).
    var natDone: [String: ([UInt32: UInt32], [(addr: UInt32, use: BlockUse)])] = [:]
    for h in 0..<nHeads {
      let head = cp.heads[h]
      var blocks: [(addr: UInt32, use: BlockUse)]
      let natKey = "\(head.nat.root)/\(head.nat.nblocks)/\(head.nat.depth)"
      if let (stored, b) = natDone[natKey] {
        natMap[h] = stored
        blocks = b
      } else {
        var map: [UInt32: UInt32] = [:]
        blocks = walkMeta(
          head.nat, type: MetaType.nat, aux: UInt32(h), expectedBlocks: natBlocks,
          what: "head \(h) NAT"
        ) { index, addr, b in
          let r = ByteReader(b)
          var nonZero = 0
          for i in 0..<RoseLayout.addressesPerBlock {
            let a = AddressArray.read(r, i)
            if a == 0 { continue }
            nonZero += 1
            let nid = UInt32(UInt64(index) * per + UInt64(i))
            if nid == 0 || nid >= cp.nextFreeNid {
              problem(
                "head \(h) NAT block \(addr): nid \(nid) maps to block \(a) but is past next_free_nid \(cp.nextFreeNid) or 0"
              )
            } else if !inMain(a) {
              problem(
                "head \(h) NAT block \(addr): nid \(nid) maps to block \(a), outside the main area")
            } else {
              map[nid] = a
            }
          }
          let count = BlockHeader.decode(r).count
          if Int(count) != nonZero {
            problem(
              "head \(h) NAT block \(addr): count \(count), \(nonZero) entries are non-zero")
          }
        }
        natMap[h] = map
        natDone[natKey] = (map, blocks)
      }
      for e in cp.natJournal where Int(e.head) == h {
        if e.blkaddr == 0 {
          natMap[h][e.nid] = nil
        } else if inMain(e.blkaddr) {
          natMap[h][e.nid] = e.blkaddr
        }
      }
      for (a, u) in blocks { use(h, a, u, "NAT map") }
      if head.vbmSource == nil {
        var stored: [UInt32: [UInt8]] = [:]
        let vbmBlocks = walkMeta(
          head.vbm, type: MetaType.vbm, aux: UInt32(h), expectedBlocks: vbmCount,
          what: "head \(h) VBM"
        ) { index, addr, b in
          let r = ByteReader(b)
          let count = BlockHeader.decode(r).count
          if count != 0 {
            problem("head \(h) VBM block \(addr): count \(count), must be 0")
          }
          // Bits past the main area are zero.
          let first = UInt64(index) * UInt64(RoseLayout.bitsPerVBMBlock)
          if first + UInt64(RoseLayout.bitsPerVBMBlock) > mainBlocks {
            let valid = mainBlocks > first ? Int(mainBlocks - first) : 0
            let bits = RoseLayout.headerSize
            let partial = valid % 8 != 0 ? b[bits + valid / 8] >> UInt8(valid % 8) : 0
            let wholeFrom = bits + (valid + 7) / 8
            if partial != 0 || !Self.allZero(b, wholeFrom..<RoseLayout.blockSize) {
              problem("head \(h) VBM block \(addr): a bit for a block past the main area is set")
            }
          }
          stored[index] = b
        }
        self.vbmBlocks[h] = stored
        for (a, u) in vbmBlocks { use(h, a, u, "VBM map") }
      }
    }
    // Heads with VBM_SAME_AS reach their source's bitmap blocks.
    let ssa = walkMeta(cp.ssa, type: MetaType.ssa, aux: 0, expectedBlocks: ssaCount, what: "SSA") {
      index, addr, b in
      let r = ByteReader(b)
      var nonFree = 0
      for i in 0..<RoseLayout.ssaEntriesPerBlock {
        let o = RoseLayout.headerSize + SSAEntry.size * i
        let kind = SSAEntry.decode(r, o).kind
        let blk = mainStart + UInt64(index) * UInt64(RoseLayout.ssaEntriesPerBlock) + UInt64(i)
        if kind == SSAKind.free {
          requireZero(b, o..<o + SSAEntry.size, "SSA block \(addr) entry for block \(blk) (FREE)")
        } else {
          nonFree += 1
          if kind > SSAKind.meta {
            problem("SSA block \(addr): entry for block \(blk) has kind \(kind)")
          }
          if blk >= mainStart + mainBlocks {
            problem("SSA block \(addr): entry for block \(blk) past the main area")
          }
        }
      }
      let count = BlockHeader.decode(r).count
      if Int(count) != nonFree {
        problem("SSA block \(addr): count \(count), \(nonFree) entries are not FREE")
      }
      requireZero(
        b,
        RoseLayout.headerSize + SSAEntry.size
          * RoseLayout.ssaEntriesPerBlock..<RoseLayout.blockSize,
        "SSA block \(addr) padding")
      ssaBlocks[index] = b
    }
    for h in 0..<nHeads {
      for (a, u) in ssa { use(h, a, u, "SSA map") }
      if let src = cp.heads[h].vbmSource, src < nHeads, src != h {
        for (a, u) in uses[src] {
          if case .meta(let t, _, _, _) = u, t == MetaType.vbm {
            use(h, a, u, "VBM of head \(src)")
          }
        }
      }
    }
    _ = sb
  }
}

// FORMAT.md section 14, item 11: each head's validity bitmap against what the head reaches, and
// the checkpoint's counters.

extension FsckRun {
  func vbmBit(_ h: Int, _ a: UInt32) -> Bool {
    guard let cp, h < cp.heads.count else { return false }
    let src = cp.heads[h].vbmSource ?? h
    guard UInt64(a) >= mainStart else { return false }
    let k = UInt64(a) - mainStart
    let per = UInt64(RoseLayout.bitsPerVBMBlock)
    guard let b = vbmBlocks[src]?[UInt32(truncatingIfNeeded: k / per)] else { return false }
    let bit = Int(k % per)
    return b[RoseLayout.headerSize + bit / 8] & UInt8(1 << (bit % 8)) != 0
  }

  func checkValidity() {
    guard let cp, let sb else { return }
    var live = Set<UInt32>()
    for h in 0..<nHeads {
      for (a, u) in uses[h] where !vbmBit(h, a) {
        problem("head \(h): block \(a) (\(u)) is in use but its VBM bit is clear")
      }
      let src = cp.heads[h].vbmSource ?? h
      for (index, b) in vbmBlocks[src] ?? [:] {
        var at = RoseLayout.headerSize
        while let nz = Self.firstNonZero(b, at..<RoseLayout.blockSize) {
          at = nz + 1
          let byte = nz - RoseLayout.headerSize
          for bit in 0..<8 where b[nz] & UInt8(1 << bit) != 0 {
            let k = UInt64(index) * UInt64(RoseLayout.bitsPerVBMBlock) + UInt64(byte * 8 + bit)
            let a = UInt32(truncatingIfNeeded: mainStart + k)
            if mainStart + k < mainStart + mainBlocks && uses[h][a] == nil {
              problem("head \(h): VBM marks block \(a) live but nothing in the head uses it")
            }
          }
        }
      }
      if UInt64(uses[h].count) != cp.heads[h].validBlocks {
        problem("head \(h): valid_blocks \(cp.heads[h].validBlocks), counted \(uses[h].count)")
      }
      live.formUnion(uses[h].keys)
    }
    if UInt64(live.count) != cp.validBlockCount {
      problem("checkpoint: valid_block_count \(cp.validBlockCount), counted \(live.count)")
    }
    let bps = UInt64(sb.blocksPerSegment)
    var liveSegs = Set<UInt64>()
    for a in live { liveSegs.insert((UInt64(a) - mainStart) / bps) }
    var logSegs = Set<UInt64>()
    for l in cp.logs where UInt64(l.segment) < UInt64(sb.segmentCount) {
      logSegs.insert(UInt64(l.segment))
    }
    for l in cp.logs where liveSegs.contains(UInt64(l.segment)) {
      for a in live
      where (UInt64(a) - mainStart) / bps == UInt64(l.segment)
        && (UInt64(a) - mainStart) % bps >= UInt64(l.blockOffset)
      {
        problem(
          "log of type \(l.type): block \(a) past its append point in segment \(l.segment) is live")
        break
      }
    }
    let free = UInt64(sb.segmentCount) - UInt64(liveSegs.union(logSegs).count)
    if UInt64(cp.freeSegments) != free {
      problem("checkpoint: free_segments \(cp.freeSegments), counted \(free)")
    }
    var maxNid: UInt32 = 0
    for m in natMap { for nid in m.keys { maxNid = max(maxNid, nid) } }
    if !natMap.allSatisfy({ $0.isEmpty }) && maxNid >= cp.nextFreeNid {
      problem(
        "checkpoint: next_free_nid \(cp.nextFreeNid) is not above nid \(maxNid), which is in use")
    }
  }
}

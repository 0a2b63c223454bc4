/// What `writeBitmapsAndSummary` wrote, and the final live sets.
struct SummaryFiles {
  var vbmRoots: [MetaRoot]
  var ssaRoot: MetaRoot
  var vbmSameAs: [Int?]
  /// Per head, every block it reaches, VBM and SSA blocks included.
  var live: [[(UInt32, UInt32)]]
  var liveUnion: [(UInt32, UInt32)]
  /// First block after everything written.
  var usedEnd: UInt32
  var dataRuns: [OwnerRun]
  /// VBM and SSA blocks written (content and index).
  var planned: Int
}

extension ImageBuilder {
  /// Packer phase "bitmaps and summary" (FORMAT.md 6.3, 6.4): every head's VBM (unless VBM_SAME_AS)
  /// and the SSA, last in the log. Their addresses are planned before their contents, so that the
  /// bitmaps include the bitmap and summary blocks themselves. `runs`: SSA owners of the nodes and
  /// NAT blocks written so far.
  func writeBitmapsAndSummary(
    live sets: LiveSets, geometry: Geometry, dataEnd: UInt32, runs: [OwnerRun],
    objects: some Sequence<Inode>
  ) throws -> SummaryFiles {
    let heads = sets.ranges.count
    let mainBlocks = Int(geometry.segmentCount) << Int(geometry.logBPS)
    let vbmCount = (mainBlocks + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock
    let ssaCount = (mainBlocks + RoseLayout.ssaEntriesPerBlock - 1) / RoseLayout.ssaEntriesPerBlock
    let ownVBM = sets.ownVBMHeads
    let plan = MetaPlan.make(
      start: stream.nextBlock, ownVBMHeads: ownVBM, vbmCount: vbmCount, ssaCount: ssaCount,
      mainStart: RoseLayout.mainStart)
    let plannedRuns = plan.blocks.map {
      OwnerRun(start: $0.addr, count: 1, kind: SSAKind.meta, owner: $0.ownerField, index: $0.index)
    }
    var live = sets.ranges
    for h in 0..<heads {
      let source = sets.vbmSameAs[h] ?? h
      var r = live[h]
      for p in plan.blocks
      where p.type == MetaType.ssa || (p.type == MetaType.vbm && p.head == source) {
        r.append((p.addr, 1))
      }
      live[h] = mergeRanges(r)
    }
    guard UInt64(plan.end) <= UInt64(RoseLayout.mainStart) + UInt64(mainBlocks) else {
      throw RoseFSError.volumeTooSmall(
        neededBytes: UInt64(plan.end) << RoseLayout.blockShift,
        haveBytes: geometry.blockCount << RoseLayout.blockShift)
    }
    let dataRuns = dataOwnerRuns(objects)
    let liveUnion = mergeRanges(live.flatMap { $0 })
    // One array, filtered and deduplicated in place. Memory (issue 10): the concatenation, its
    // filtered copy and the deduplicated copy were three arrays of every owner run at once, at the
    // point of `finish` where the most is held.
    let tailRuns = tailOwnerRuns(objects)
    var ssaRuns: [OwnerRun] = []
    ssaRuns.reserveCapacity(runs.count + plannedRuns.count + dataRuns.count + tailRuns.count)
    for part in [runs, plannedRuns, dataRuns, tailRuns] { ssaRuns += part }
    keepSummaryRuns(&ssaRuns, live: liveUnion)
    try stream.crcSpool.rewindForReading()
    var spoolPos: UInt32 = RoseLayout.mainStart
    for p in plan.blocks {
      var block = [UInt8](repeating: 0, count: RoseLayout.blockSize)
      switch p.role {
      case .vbmLeaf:
        fillVBM(&block, index: Int(p.index), live: live[p.head])
        writeHeader(
          &block, magic: Magic.vbm, addr: p.addr, owner: p.index, count: 0, level: 0, subtype: 0,
          aux: UInt32(p.head))
      case .ssaLeaf:
        let n = fillSSA(
          &block, index: Int(p.index), runs: ssaRuns, live: liveUnion, dataEnd: dataEnd,
          spoolPos: &spoolPos)
        writeHeader(
          &block, magic: Magic.ssa, addr: p.addr, owner: p.index, count: UInt16(n), level: 0,
          subtype: 0, aux: 0)
      case .index(let children):
        for (i, c) in children.enumerated() {
          block.withUnsafeMutableBytes {
            $0.storeBytes(of: c.littleEndian, toByteOffset: AddressArray.at(i), as: UInt32.self)
          }
        }
        writeHeader(
          &block, magic: Magic.mapIndex, addr: p.addr, owner: p.index,
          count: UInt16(children.filter { $0 != 0 }.count), level: p.level, subtype: p.type,
          aux: p.type == MetaType.ssa ? 0 : UInt32(p.head))
      }
      sealHeader(&block, blkaddr: p.addr)
      let a = try block.withUnsafeBytes { try stream.append($0, dataChecksum: false) }
      guard a == p.addr else {
        throw RoseFSError.internalInvariant("meta block planned at \(p.addr), written at \(a)")
      }
    }
    var vbmRoots = [MetaRoot](repeating: MetaRoot(), count: heads)
    for h in ownVBM { vbmRoots[h] = plan.root(type: MetaType.vbm, head: h) }
    try stream.flush()
    return SummaryFiles(
      vbmRoots: vbmRoots, ssaRoot: plan.root(type: MetaType.ssa, head: 0),
      vbmSameAs: sets.vbmSameAs, live: live, liveUnion: liveUnion, usedEnd: plan.end,
      dataRuns: dataRuns, planned: plan.blocks.count)
  }

  /// The SSA owners of the live blocks, sorted by address (in place): runs of blocks that are not
  /// live dropped, and the duplicate run a file cloned into another head (same ino, same extents)
  /// yields kept once.
  func keepSummaryRuns(_ runs: inout [OwnerRun], live: [(UInt32, UInt32)]) {
    runs.removeAll { !rangeIntersects(live, $0.start, $0.count) }
    runs.sort { ($0.start, $0.count) < ($1.start, $1.count) }
    var kept = 0
    for r in runs.indices {
      let run = runs[r]
      if kept > 0 {
        let last = runs[kept - 1]
        if last.start == run.start && last.count == run.count && last.owner == run.owner
          && last.kind == run.kind
        {
          continue
        }
      }
      runs[kept] = run
      kept += 1
    }
    runs.removeLast(runs.count - kept)
  }
}

// FORMAT.md section 14, items 2 and 3: the checkpoint slots and the reserved blocks 4..15.

extension FsckRun {
  func checkCheckpoint() -> Bool {
    let slot0 = RoseLayout.checkpointBlock
    guard let sb, let s0 = readBlock(slot0), let s1 = readBlock(slot0 + 1) else { return false }
    let slots = [s0, s1].map { Checkpoint.decode($0, checksum: ck) }
    for (i, s) in slots.enumerated() where s == nil && ![s0, s1][i].allSatisfy({ $0 == 0 }) {
      problem(
        "checkpoint slot \(i) (block \(2 + i)) is neither valid (magic, checksum) nor all zero")
    }
    var chosen: Int?
    for i in 0..<2 {
      if let c = slots[i], chosen.map({ c.cpVer > (slots[$0]?.cpVer ?? 0) }) ?? true { chosen = i }
    }
    guard let chosen, let cp = slots[chosen] else {
      problem("no valid checkpoint in block 2 or block 3; nothing more can be checked")
      return false
    }
    if let a = slots[0], let b = slots[1], a.cpVer == b.cpVer {
      problem("both checkpoint slots have cp_ver \(a.cpVer)")
    }
    let raw = chosen == 0 ? s0 : s1
    let w = "checkpoint (block \(2 + chosen))"
    if cp.cpVer < 1 { problem("\(w): cp_ver is 0") }
    let n = Int(cp.storedHeadCount)
    guard (1...RoseLayout.maxHeads).contains(n) else {
      problem("\(w): n_heads \(n) is not 1..4")
      return false
    }
    nHeads = n
    if Int(cp.defaultHead) >= n { problem("\(w): default_head \(cp.defaultHead) >= n_heads \(n)") }
    let knownCheckpointFlags = Checkpoint.flagUmount | Checkpoint.flagFresh
    if cp.flags & ~knownCheckpointFlags != 0 { problem("\(w): unknown flags \(hex32(cp.flags))") }
    let bps = UInt64(sb.blocksPerSegment)
    let expectUser =
      (UInt64(sb.segmentCount) &- UInt64(sb.rsvSegments)) &* bps &- UInt64(sb.opBlocks)
    if cp.userBlockCount != expectUser {
      problem("\(w): user_block_count \(cp.userBlockCount), expected \(expectUser)")
    }
    requireReservedZero(raw, at: 0, Checkpoint.self, w)
    requireReservedZero(raw, at: Checkpoint.Offset.ssa, MetaRoot.self, "\(w) SSA MetaRoot")
    var logSegs = Set<UInt32>()
    for (i, log) in cp.logs.enumerated() {
      if log.type != UInt8(i + 1) {
        problem("\(w): log \(i) has type \(log.type), expected \(i + 1)")
      }
      if log.reserved != 0 { problem("\(w): log \(i) padding byte is not zero") }
      if log.segment >= sb.segmentCount || UInt64(log.blockOffset) > bps {
        problem(
          "\(w): log \(i) at segment \(log.segment) block \(log.blockOffset) is outside the main area"
        )
      }
      if !logSegs.insert(log.segment).inserted {
        problem("\(w): two logs share segment \(log.segment)")
      }
    }
    let jn = Int(cp.storedJournalCount)
    if jn > Checkpoint.natJournalCapacity {
      problem("\(w): nat_journal_count \(jn) exceeds \(Checkpoint.natJournalCapacity)")
    }
    for (i, e) in cp.natJournal.enumerated() {
      if e.nid == 0 || e.nid >= cp.nextFreeNid || Int(e.head) >= n
        || (e.blkaddr != 0 && !inMain(e.blkaddr))
      {
        problem(
          "\(w): NAT journal entry \(i) (nid \(e.nid), block \(e.blkaddr), head \(e.head)) is invalid"
        )
      }
    }
    for i in 0..<Checkpoint.natJournalCapacity {
      let o = Checkpoint.Offset.natJournal + i * NatJournalEntry.size
      if i >= jn {
        requireZero(raw, o..<o + NatJournalEntry.size, "\(w) unused NAT journal entry \(i)")
      } else {
        requireReservedZero(raw, at: o, NatJournalEntry.self, "\(w) NAT journal entry \(i)")
      }
    }
    var names = Set<[UInt8]>()
    for i in 0..<RoseLayout.maxHeads {
      let o = Checkpoint.Offset.heads + i * Head.size
      let hw = "\(w) head \(i)"
      if i >= n {
        requireZero(raw, o..<o + Head.size, "\(hw) (unused)")
        continue
      }
      let h = cp.heads[i]
      let knownFlags =
        Head.active | Head.readOnly | Head.vbmSameAs
        | (h.flags & Head.vbmSameAs != 0 ? Head.vbmSourceMask : 0)
      if h.flags & ~knownFlags != 0 { problem("\(hw): unknown flags \(hex32(h.flags))") }
      if !h.isActive { problem("\(hw): ACTIVE flag is not set") }
      if let src = h.vbmSource {
        if src >= n || src == i || cp.heads[src].vbmSource != nil {
          problem("\(hw): VBM_SAME_AS names head \(src), which has no bitmap of its own")
        }
        let vbm = o + Head.Offset.vbm
        requireZero(raw, vbm..<vbm + MetaRoot.size, "\(hw): VBM MetaRoot of a VBM_SAME_AS head")
      }
      requireReservedZero(raw, at: o + Head.Offset.nat, MetaRoot.self, "\(hw) NAT MetaRoot")
      requireReservedZero(raw, at: o + Head.Offset.vbm, MetaRoot.self, "\(hw) VBM MetaRoot")
      requireReservedZero(raw, at: o, Head.self, hw)
      let nul = h.name.firstIndex(of: 0) ?? h.name.count
      if nul == 0 { problem("\(hw): empty name") }
      requireZero(h.name, nul..<h.name.count, "\(hw) name padding")
      if !names.insert(Array(h.name[0..<nul])).inserted {
        problem("\(hw): name is used by another head")
      }
      if h.parentHead != Head.noParent && Int(h.parentHead) >= n {
        problem("\(hw): parent_head \(h.parentHead) does not exist")
      }
      if h.createdCpVer > cp.cpVer {
        problem("\(hw): created_cp_ver \(h.createdCpVer) > cp_ver \(cp.cpVer)")
      }
      if h.rootIno < UInt32(RoseLayout.inodesPerPage) {
        problem("\(hw): root_ino \(h.rootIno) is reserved")
      }
    }
    self.cp = cp
    uses = Array(repeating: [:], count: n)
    natMap = Array(repeating: [:], count: n)
    reachedInodes = Array(repeating: [], count: n)
    reachedNids = Array(repeating: [], count: n)
    return true
  }

  // MARK: 3. Reserved blocks

  func checkReservedBlocks() {
    for a in RoseLayout.checkpointBlock + UInt32(RoseLayout.checkpointSlots)..<RoseLayout.mainStart
    {
      guard let b = readBlock(a) else { continue }
      requireZero(b, 0..<RoseLayout.blockSize, "reserved block \(a)")
    }
  }
}

extension FsckRun {
  // MARK: 12. Roll-forward chain

  /// `rf_next` and the record blocks reachable from it (FORMAT.md 13.7). The chain is runtime
  /// state: only bad contents of a record that belongs to it are problems.
  func checkRollForward() {
    guard let cp, cp.rfNext != 0 else { return }
    let w = "checkpoint rf_next"
    guard inMain(cp.rfNext) else {
      problem("\(w) \(cp.rfNext) is outside the main area")
      return
    }
    for h in 0..<nHeads where vbmBit(h, cp.rfNext) {
      problem("\(w) \(cp.rfNext) is live in head \(h)")
    }
    let chain = RollForwardChain.read(
      checkpoint: cp, mainStart: UInt32(mainStart), mainBlocks: Int(mainBlocks), checksum: ck
    ) { (a: UInt32) -> [UInt8] in readBlock(a) ?? [] }
    let partial = chain.partialGroupBlocks
    var blocks: [(addr: UInt32, record: RollForwardRecord)] = chain.groups.flatMap { $0 }
    if partial > 0 {
      // The blocks of an incomplete group still belong to the chain: check them too.
      var addr = blocks.last?.record.next ?? cp.rfNext
      for _ in 0..<partial {
        guard let b = readBlock(addr),
          let rec = RollForwardRecord.decode(b, addr: addr, checksum: ck)
        else { break }
        blocks.append((addr, rec))
        addr = rec.next
      }
    }
    for (addr, rec) in blocks {
      let rw = "roll-forward record at block \(addr) (sequence \(rec.sequence))"
      guard let raw = readBlock(addr) else { continue }
      let h = BlockHeader.decode(raw)
      if h.level != 0 || h.subtype != 0 || h.aux != 0 {
        problem("\(rw): header level, subtype and aux must be zero")
      }
      if rec.flags & ~RollForwardRecord.flagLast != 0 {
        problem("\(rw): unknown flags \(hex32(rec.flags))")
      }
      if rec.next != 0 && !inMain(rec.next) {
        problem("\(rw): next \(rec.next) is outside the main area")
      }
      requireReservedZero(raw, at: 0, RollForwardRecord.self, rw)
      for i in nHeads..<RoseLayout.maxHeads where rec.inodeCount[i] != 0 {
        problem("\(rw): inode_count of unused head \(i) is not zero")
      }
      let used = RollForwardRecord.Offset.entries + rec.entries.count * RollForwardEntry.size
      requireZero(raw, used..<RoseLayout.blockSize, "\(rw) unused entries")
      for (i, e) in rec.entries.enumerated() {
        let ew = "\(rw) entry \(i)"
        if e.reserved != 0 { problem("\(ew): reserved bytes are not zero") }
        if Int(e.head) >= nHeads { problem("\(ew): head \(e.head) >= n_heads \(nHeads)") }
        switch e.type {
        case RollForwardEntry.nat:
          if e.key == 0 || (e.value != 0 && !inMain(e.value)) {
            problem("\(ew): NAT nid \(e.key) -> block \(e.value) is invalid")
          }
        case RollForwardEntry.live, RollForwardEntry.dead, RollForwardEntry.ssa:
          if !inMain(e.key) { problem("\(ew): block \(e.key) is outside the main area") }
        default:
          problem("\(ew): unknown type \(e.type)")
        }
      }
    }
  }
}

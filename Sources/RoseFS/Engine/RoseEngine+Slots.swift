// Inode slots and tail blocks of the engine (FORMAT.md 7, 9.3 and 13.2): a pool of free 32-byte slots in
// the inode pages only this head uses, multi-slot inodes growing into the slots after them, and the
// inodes that use a headerless tail block, found through the inode pages its SSA entry names.

extension RoseEngine {
  var slotsPerPage: UInt32 { UInt32(RoseLayout.inodesPerPage) }

  /// A free inode number: the lowest free slot of a page this head alone uses that starts
  /// `minInodeSlots` free slots (a bare 96-byte core), or a new page. A popped slot that cannot start
  /// an inode stays in the pool for a neighbour to grow into.
  func allocateIno() -> UInt32 {
    let need = UInt32(RoseLayout.minInodeSlots)
    while let i = freeInos.popLast() {
      guard freeInoSet.contains(i), i % slotsPerPage + need <= slotsPerPage,
        (1..<need).allSatisfy({ freeInoSet.contains(i + $0) })
      else { continue }
      for j in 0..<need { freeInoSet.remove(i + j) }
      return i
    }
    let nid = newNid()
    reservedNids.insert(nid)
    for s in (need..<slotsPerPage).reversed() {
      freeInos.append(nid * slotsPerPage + s)
      freeInoSet.insert(nid * slotsPerPage + s)
    }
    return nid * slotsPerPage
  }

  /// Whether no other head has inode page `nid` (its slots may then be reused or claimed here).
  func pageIsOwnOnly(_ nid: UInt32) -> Bool {
    !(0..<heads.count).contains { $0 != head && natLookup($0, nid) != 0 }
  }

  /// Gives slot `ino` back to the pool when its page is this head's alone.
  func releaseSlot(_ ino: UInt32) {
    let nid = ino / slotsPerPage
    guard slotPoolActive, pageIsOwnOnly(nid) else { return }
    // The page stays reserved while the pool holds its slots, even if a checkpoint frees it.
    reservedNids.insert(nid)
    if freeInoSet.insert(ino).inserted { freeInos.append(ino) }
  }

  /// Whether `n` can have `want` slots: it has them, or the slots after its own are in the pool,
  /// inside its page, and the page is the open head's alone (the pool is the open head's; an inode
  /// of another head that the cleaner rewrites never grows into it).
  func slotsAvailable(_ n: EngineInode, _ want: Int) -> Bool {
    let have = Int(n.rec.nslots)
    if want <= have { return true }
    let ino = n.rec.ino
    guard want <= RoseLayout.maxInodeSlots, Int(ino % slotsPerPage) + want <= Int(slotsPerPage),
      slotPoolActive, pageIsOwnOnly(ino / slotsPerPage)
    else { return false }
    for j in have..<want where !freeInoSet.contains(ino + UInt32(j)) { return false }
    return true
  }

  /// Takes the slots up to `want` (after `slotsAvailable` said yes).
  func claimSlots(_ n: EngineInode, _ want: Int) {
    let have = Int(n.rec.nslots)
    guard want > have else { return }
    for j in have..<want { freeInoSet.remove(n.rec.ino + UInt32(j)) }
    n.rec.nslots = UInt8(want)
  }

  /// Gives back the slots past `want`.
  func shrinkSlots(_ n: EngineInode, to want: Int) {
    let have = Int(n.rec.nslots)
    guard want < have else { return }
    for j in want..<have { releaseSlot(n.rec.ino + UInt32(j)) }
    n.rec.nslots = UInt8(max(RoseLayout.minInodeSlots, want))
  }

  /// Whether a directory's `bytes` of inline entries (with its inline xattrs, if any) would be
  /// inline after the next checkpoint.
  func canHoldInline(_ n: EngineInode, bytes: Int) -> Bool {
    guard bytes <= RoseLayout.maxInline else { return false }
    return slotsAvailable(n, InodeSlots.slots(forInline: bytes))
  }

  // MARK: - Tail blocks

  /// A tail block, checked against the checksum its SSA entry records (FORMAT.md 9.3).
  func verifiedTailBlock(_ addr: UInt32, what: String) throws(EngineError) -> [UInt8] {
    guard addr >= mainStart, Int(addr - mainStart) < mainBlocks else {
      throw EngineError.corrupt("\(what): block \(addr) is outside the main area")
    }
    let b = try device.readBlock(addr)
    let e = ssaEntryFull(addr)
    guard e.info >> 28 == UInt32(SSAKind.tail) else {
      throw EngineError.corrupt("\(what): block \(addr) is not a tail block in the SSA")
    }
    let computed = checksum.checksum(b)
    guard computed == e.crc else {
      throw EngineError.corrupt(
        "\(what): block \(addr) fails its checksum (computed \(hex32(computed)), SSA \(hex32(e.crc)))"
      )
    }
    return b
  }

  /// The inode pages a tail block's fragments may belong to: `owner ... owner + index` of its SSA
  /// entry.
  func tailPageRange(_ addr: UInt32) -> ClosedRange<UInt32> {
    let e = ssaEntryFull(addr)
    let low = e.owner
    let span = min(e.info & 0x0FFF_FFFF, 1 << 20)
    return low...(low &+ span)
  }

  /// Inode numbers of head h whose stored inode has TAIL with block `addr`.
  func storedTailUsers(_ addr: UInt32, head h: Int) throws(EngineError) -> [UInt32] {
    var out: [UInt32] = []
    for nid in tailPageRange(addr) {
      let a = natLookup(h, nid)
      guard a != 0 else { continue }
      let page = try readPage(a)
      var s = 0
      while s < RoseLayout.inodesPerPage {
        let base = s * RoseLayout.inodeSize
        let ino = nid * slotsPerPage + UInt32(s)
        guard page[base..<base + RoseLayout.inodeSize].contains(where: { $0 != 0 }),
          let rec = try? InodeRecord.decode(
            page: page, ino: ino, checksum: checksum, pageAddress: a)
        else {
          s += 1
          continue
        }
        if rec.has(InodeFlag.tail) && rec.tailBlk == addr { out.append(ino) }
        s += Int(rec.nslots)
      }
    }
    return out
  }

  /// The open head's inodes whose tail fragment is in block `addr` now.
  func liveTailUsers(_ addr: UInt32) throws(EngineError) -> [EngineInode] {
    var out: [EngineInode] = []
    for ino in try storedTailUsers(addr, head: head) {
      var n = inodes[ino]
      if n == nil, let loaded = try loadInode(ino, head: head) {
        inodes[ino] = loaded
        n = loaded
      }
      guard let n, !n.deleted, case .tail(let blk, _, _) = n.partial, blk == addr else { continue }
      out.append(n)
    }
    return out
  }
}

// fsync by roll-forward (FORMAT.md 13.7). An fsync writes the changed inode pages, tree and xattr
// nodes and tail blocks copy-on-write, as a checkpoint does, and then, instead of the meta-files and
// a checkpoint slot, one group of record blocks: the NAT, validity and SSA changes since the previous
// group, chained from the block the checkpoint reserved (`rf_next`). At open the chain is replayed
// in memory; a writable open then checkpoints at once.

/// What the engine keeps for the roll-forward chain between two checkpoints.
struct RollForwardState {
  /// Where the next record block goes; 0: no chain of this instance's own, the next fsync
  /// checkpoints (FORMAT.md 13.7: only the writer of a checkpoint extends its chain).
  var next: UInt32 = 0
  /// Sequence number of the next record block (0 at `rf_next`).
  var sequence: UInt32 = 0
  /// Record blocks written since the last checkpoint.
  var blocks = 0
  /// Changes since the last record group or checkpoint: NAT values per head; per head, each validity
  /// bit touched with its value at that point; SSA entries touched (main-area block indices).
  var nat: [Int: [UInt32: UInt32]] = [:]
  var bits: [Int: [Int: Bool]] = [:]
  var ssa = Set<Int>()

  mutating func clearPending() {
    nat = [:]
    bits = [:]
    ssa = []
  }
}

/// What open found after the checkpoint (FORMAT.md 13.7).
public struct RollForwardReplay: Equatable, Sendable {
  /// Complete groups applied, and their record blocks.
  public var groups = 0
  public var blocks = 0
  /// A group whose blocks were not all valid (a crash during an fsync): ignored.
  public var ignoredPartialGroup = false
}

extension RoseEngine {
  /// Record blocks a chain may hold before an fsync checkpoints instead (FORMAT.md 13.7).
  static let rollForwardChainLimit = 128

  /// Prefree blocks above which an fsync checkpoints instead (FORMAT.md 13.3: half the reserve
  /// segments).
  var prefreeLimit: Int { Int(sb.rsvSegments) * bps / 2 }

  /// Blocks the checkpoint on disk (or a written record) reaches that no head uses any more.
  func prefreeBlocks() -> Int {
    var n = 0
    for i in 0..<committed.words.count {
      var live: UInt64 = 0
      for h in 0..<vbm.count { live |= vbm[h].words[i] }
      n += (committed.words[i] & ~live).nonzeroBitCount
    }
    return n
  }

  /// Keeps `addr` from being allocated until the next checkpoint (a record block or a block a
  /// record names).
  func protectUntilCheckpoint(_ addr: UInt32) {
    guard addr >= mainStart, Int(addr - mainStart) < mainBlocks else { return }
    let k = Int(addr - mainStart)
    if !isBusy(k) {
      busyPerSegment[k / bps] += 1
      busyTotal += 1
    }
    committed.set(k)
  }

  // MARK: - Tracking (called by setNAT, setLive, clearLive, setSSA)

  @inline(__always) func noteNAT(_ h: Int, _ nid: UInt32, _ addr: UInt32) {
    rf.nat[h, default: [:]][nid] = addr
  }

  @inline(__always) func noteBit(_ h: Int, _ k: Int, was: Bool) {
    if rf.bits[h]?[k] == nil { rf.bits[h, default: [:]][k] = was }
  }

  @inline(__always) func noteSSA(_ k: Int) { rf.ssa.insert(k) }

  // MARK: - fsync

  /// Makes everything written so far durable: a roll-forward record group when the chain allows it,
  /// else a checkpoint.
  func syncByRollForward() throws(EngineError) {
    if rf.next == 0 || rf.blocks >= Self.rollForwardChainLimit || prefreeBlocks() > prefreeLimit {
      try checkpoint(umount: false)
      return
    }
    let ver = cp.cpVer + 1
    try packTails(cpVer: ver)
    try writeInodes(cpVer: ver)
    let entries = try pendingEntries()
    if entries.isEmpty {
      rf.clearPending()
      try device.flush()
      return
    }
    let per = RollForwardRecord.capacity
    let n = (entries.count + per - 1) / per
    if rf.blocks + n > Self.rollForwardChainLimit {
      try checkpoint(umount: false)
      return
    }
    var addrs = [rf.next]
    do {
      for _ in 0..<n {
        let a = try allocate(.node)
        protectUntilCheckpoint(a)
        addrs.append(a)
      }
    } catch {
      // No block for the records: a checkpoint needs none.
      try checkpoint(umount: false)
      return
    }
    let counts = (0..<heads.count).map { UInt32(max(0, inodeCount[$0])) }
    for i in 0..<n {
      let rec = RollForwardRecord(
        cpVer: cp.cpVer, sequence: rf.sequence + UInt32(i), next: addrs[i + 1],
        nextFreeNid: nextFreeNid, inodeCount: counts,
        flags: i == n - 1 ? RollForwardRecord.flagLast : 0,
        entries: Array(entries[(i * per)..<min(entries.count, (i + 1) * per)]))
      try writeDeviceBlock(addrs[i], rec.encode(addr: addrs[i], checksum: checksum))
    }
    try device.flush()
    // A crash before the next checkpoint replays these entries: the blocks they name must keep
    // their bytes until then, even if they die in the meantime.
    for e in entries where e.type == RollForwardEntry.live { protectUntilCheckpoint(e.key) }
    rf.next = addrs[n]
    rf.sequence += UInt32(n)
    rf.blocks += n
    rf.clearPending()
  }

  /// The changes since the previous group, in a deterministic order: NAT values, then validity
  /// changes (with the SSA entry and block checksum of each new live block), then SSA changes of
  /// blocks whose liveness did not change.
  func pendingEntries() throws(EngineError) -> [RollForwardEntry] {
    var out: [RollForwardEntry] = []
    for h in rf.nat.keys.sorted() {
      guard let m = rf.nat[h] else { continue }
      for nid in m.keys.sorted() {
        out.append(
          RollForwardEntry(type: RollForwardEntry.nat, head: UInt8(h), key: nid, value: m[nid] ?? 0)
        )
      }
    }
    var recorded = Set<Int>()
    for h in rf.bits.keys.sorted() {
      guard let m = rf.bits[h] else { continue }
      for k in m.keys.sorted() {
        let now = vbm[h].get(k)
        guard now != m[k] else { continue }
        let addr = mainStart + UInt32(k)
        if !now {
          out.append(RollForwardEntry(type: RollForwardEntry.dead, head: UInt8(h), key: addr))
          continue
        }
        let s = ssaEntryFull(addr)
        // A data block's SSA crc is the checksum of its bytes (FORMAT.md 6.4); others are read back.
        let blockCRC =
          s.info >> 28 == UInt32(SSAKind.data)
          ? s.crc : checksum.checksum(try device.readBlock(addr))
        out.append(
          RollForwardEntry(
            type: RollForwardEntry.live, head: UInt8(h), key: addr, value: s.owner, info: s.info,
            ssaCRC: s.crc, blockCRC: blockCRC))
        recorded.insert(k)
      }
    }
    for k in rf.ssa.sorted() where !recorded.contains(k) && isLiveAnywhere(k) {
      let addr = mainStart + UInt32(k)
      let s = ssaEntryFull(addr)
      out.append(
        RollForwardEntry(
          type: RollForwardEntry.ssa, head: 0, key: addr, value: s.owner, info: s.info,
          ssaCRC: s.crc))
    }
    return out
  }

  func ssaEntryFull(_ addr: UInt32) -> (owner: UInt32, info: UInt32, crc: UInt32) {
    let k = Int(addr - mainStart)
    guard let body = ssaBodies[k / RoseLayout.ssaEntriesPerBlock] else { return (0, 0, 0) }
    let r = ByteReader(body, base: (k % RoseLayout.ssaEntriesPerBlock) * RoseLayout.ssaEntrySize)
    return (r.u32(0), r.u32(4), r.u32(8))
  }

  // MARK: - Replay at open

  /// Follows the chain from the checkpoint's `rf_next` and applies every complete group whose
  /// record blocks and named blocks are intact; stops at the first block that is not the expected
  /// record.
  func replayRollForward() throws(EngineError) -> RollForwardReplay {
    var result = RollForwardReplay()
    let chain = try RollForwardChain.read(
      checkpoint: cp, mainStart: mainStart, mainBlocks: mainBlocks, checksum: checksum
    ) { (a: UInt32) throws(EngineError) -> [UInt8] in try device.readBlock(a) }
    for group in chain.groups {
      guard try groupIsIntact(group) else {
        result.ignoredPartialGroup = true
        return result
      }
      apply(group)
      result.groups += 1
      result.blocks += group.count
    }
    result.ignoredPartialGroup = chain.partialGroupBlocks > 0
    return result
  }

  /// Every entry names a head and a main-area block, and every new live block holds the bytes the
  /// record says (writes within the fsync's flush may have landed in any order).
  func groupIsIntact(_ group: [(addr: UInt32, record: RollForwardRecord)]) throws(EngineError)
    -> Bool
  {
    let inMain = { (a: UInt32) in a >= self.mainStart && Int(a - self.mainStart) < self.mainBlocks }
    for (_, rec) in group {
      for e in rec.entries {
        guard Int(e.head) < heads.count, e.reserved == 0 else { return false }
        switch e.type {
        case RollForwardEntry.nat:
          guard e.key != 0, e.value == 0 || inMain(e.value) else { return false }
        case RollForwardEntry.live:
          guard inMain(e.key), checksum.checksum(try device.readBlock(e.key)) == e.blockCRC else {
            return false
          }
        case RollForwardEntry.dead, RollForwardEntry.ssa:
          guard inMain(e.key) else { return false }
        default:
          return false
        }
      }
    }
    return true
  }

  func apply(_ group: [(addr: UInt32, record: RollForwardRecord)]) {
    for (addr, rec) in group {
      for e in rec.entries {
        let h = Int(e.head)
        switch e.type {
        case RollForwardEntry.nat:
          setNAT(h, e.key, e.value)
        case RollForwardEntry.live:
          setLive(h, e.key)
          setSSA(
            e.key, owner: e.value, kind: UInt8(e.info >> 28), index: e.info & SSAEntry.indexMask,
            crc: e.ssaCRC)
        case RollForwardEntry.dead:
          clearLive(h, e.key)
        default:
          setSSA(
            e.key, owner: e.value, kind: UInt8(e.info >> 28), index: e.info & SSAEntry.indexMask,
            crc: e.ssaCRC)
        }
      }
      protectUntilCheckpoint(addr)
    }
    if let last = group.last?.record {
      nextFreeNid = max(nextFreeNid, last.nextFreeNid)
      for h in 0..<heads.count { inodeCount[h] = Int(last.inodeCount[h]) }
    }
    for (_, rec) in group {
      for e in rec.entries where e.type == RollForwardEntry.live { protectUntilCheckpoint(e.key) }
    }
  }
}

/// The record blocks reachable from a checkpoint's `rf_next`, cut into groups (FORMAT.md 13.7). A
/// block belongs to the chain when its magic, checksum, `blkaddr`, `cp_ver` (the checkpoint's) and
/// sequence number (0, 1, 2, ... along the chain) are right; the chain ends at the first block that
/// is not. Shared by the engine's open and by fsck.
public struct RollForwardChain: Sendable {
  /// Complete groups, in chain order: each a list of (address, record), the last one LAST.
  public var groups: [[(addr: UInt32, record: RollForwardRecord)]] = []
  /// Valid record blocks after the last complete group (a group cut by a crash).
  public var partialGroupBlocks = 0

  public static func read<E: Error>(
    checkpoint cp: Checkpoint, mainStart: UInt32, mainBlocks: Int, checksum: RoseChecksum,
    readBlock: (UInt32) throws(E) -> [UInt8]
  ) throws(E) -> RollForwardChain {
    var chain = RollForwardChain()
    var addr = cp.rfNext
    var sequence: UInt32 = 0
    var group: [(addr: UInt32, record: RollForwardRecord)] = []
    var seen = Set<UInt32>()
    while addr >= mainStart, Int(addr - mainStart) < mainBlocks, seen.insert(addr).inserted {
      guard let rec = RollForwardRecord.decode(try readBlock(addr), addr: addr, checksum: checksum),
        rec.cpVer == cp.cpVer, rec.sequence == sequence
      else { break }
      group.append((addr, rec))
      sequence += 1
      if rec.isLast {
        chain.groups.append(group)
        group = []
      }
      addr = rec.next
    }
    chain.partialGroupBlocks = group.count
    return chain
  }
}

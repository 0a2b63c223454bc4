#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Segment cleaning (FORMAT.md 13.5). A pass takes victim segments, relocates every block that is
// live in any head by its SSA kind, and ends with a checkpoint; after it no head and no checkpoint
// reaches a victim, so the victims are free segments. The allocator hands out no block in a victim
// while the pass runs (`cleaningVictims`), so the pass's own writes land elsewhere.
//
// - DATA: copied once to a new block; in every head whose bit is set, the inode `(ino, lblk)` of
//   the SSA entry is repointed (inline extents or an extent tree alike: the inode is re-encoded).
// - NODE: copied once (a tree or xattr node is resealed with its new `blkaddr`); every head whose
//   NAT maps the nid to the old address is repointed. A block shared by two heads stays shared.
// - TAIL: in every head with the bit set, each live fragment goes back to memory and is packed
//   densely into a new tail block of that head; dead fragments are dropped.
// - META: the meta-file block is marked dirty (a content block) or its map stale (an index block);
//   the pass's checkpoint writes it elsewhere like any changed meta-file block.
//
// Inodes of the open head are changed in its inode cache and written by the checkpoint; inodes of
// other heads are loaded from their own NAT, changed, and written copy-on-write into new inode pages
// of that head before the checkpoint (`asHead`), never over a block any checkpoint reaches.

/// How the cleaner picks victim segments.
public enum CleaningPolicy: Sendable {
  /// Fewest live blocks first (lowest segment number on ties): the most space per block moved.
  case greedy
  /// Highest `(1 - u) * age / (1 + u)` first (LFS cost-benefit), `u` the live share and `age` the
  /// checkpoints since a block was last allocated in the segment (counted since open: a segment not
  /// written since open is as old as the volume's checkpoint version).
  case costBenefit
}

/// What the cleaner did since the engine was opened.
public struct CleaningStats: Sendable, Equatable {
  /// Cleaning passes that ended with a checkpoint.
  public var passes = 0
  /// Victim segments that were free after their pass.
  public var segmentsCleaned = 0
  /// Blocks relocated (each once, however many heads share it).
  public var blocksMoved: Int { dataBlocks + nodeBlocks + tailBlocks + metaBlocks }
  public var dataBlocks = 0
  /// Of `dataBlocks`: blocks of files whose extents are stored in an extent tree.
  public var dataBlocksInExtentTrees = 0
  public var nodeBlocks: Int { inodePages + directoryNodes + extentNodes + xattrNodes }
  public var inodePages = 0
  public var directoryNodes = 0
  public var extentNodes = 0
  public var xattrNodes = 0
  public var tailBlocks = 0
  /// Live fragments taken out of relocated tail blocks (per head).
  public var tailFragments = 0
  public var metaBlocks = 0
  /// Repointings: a block live in two heads counts twice.
  public var headRepoints = 0
  public init() {}
}

extension RoseEngine {
  // MARK: - Public entry points

  /// Cleans up to `segments` victims chosen by `policy` (the engine's `cleaningPolicy` when nil):
  /// segments holding at least one live block and at least one that is not (a full segment gains
  /// nothing). Returns how many segments were freed.
  @discardableResult
  public func clean(segments: Int, policy: CleaningPolicy? = nil) throws(EngineError) -> Int {
    try withLock { () throws(EngineError) in
      try requireWritable()
      let victims = chooseVictims(
        segments, policy: policy ?? cleaningPolicy, maxLive: bps - 1)
      return try cleanVictims(victims).count
    }
  }

  /// Cleans exactly the segments `victims` (by segment number in the main area). Returns the ones
  /// that were free after the pass.
  @discardableResult
  public func clean(victims: [Int]) throws(EngineError) -> [Int] {
    try withLock { () throws(EngineError) in
      try requireWritable()
      for s in victims where s < 0 || s >= segmentCount {
        throw EngineError(EINVAL, "segment \(s) is not in the main area (0..<\(segmentCount))")
      }
      return try cleanVictims(victims)
    }
  }

  /// Segments with no block live in any head nor reached by the checkpoint on disk, not counting
  /// the three open log segments (the checkpoint's `free_segments`).
  public var freeSegmentCount: Int {
    lock.lock()
    defer { lock.unlock() }
    return countFreeSegments()
  }

  /// Blocks of segment `s` live in at least one head.
  public func liveBlocks(inSegment s: Int) -> Int {
    lock.lock()
    defer { lock.unlock() }
    return liveCount(s)
  }

  // MARK: - Victims

  func countFreeSegments() -> Int {
    var n = 0
    for s in 0..<segmentCount where busyPerSegment[s] == 0 && !logSegment.contains(s) { n += 1 }
    return n
  }

  func liveCount(_ s: Int) -> Int {
    let words = bps / 64
    var n = 0
    for w in s * words..<(s + 1) * words {
      var or: UInt64 = 0
      for h in 0..<vbm.count { or |= vbm[h].words[w] }
      n += or.nonzeroBitCount
    }
    return n
  }

  /// Up to `count` segments other than the open log segments with 1...maxLive live blocks, best
  /// first by `policy`.
  func chooseVictims(_ count: Int, policy: CleaningPolicy, maxLive: Int) -> [Int] {
    guard count > 0 else { return [] }
    var candidates: [(segment: Int, live: Int, score: Double)] = []
    for s in 0..<segmentCount where !logSegment.contains(s) {
      let live = liveCount(s)
      guard live > 0, live <= maxLive else { continue }
      switch policy {
      case .greedy:
        candidates.append((s, live, Double(-live)))
      case .costBenefit:
        let u = Double(live) / Double(bps)
        let stamp = s < segmentStamp.count ? segmentStamp[s] : 0
        let age = Double(cp.cpVer &- stamp) + 1
        candidates.append((s, live, (1 - u) * age / (1 + u)))
      }
    }
    candidates.sort { $0.score != $1.score ? $0.score > $1.score : $0.segment < $1.segment }
    return candidates.prefix(count).map { $0.segment }
  }

  /// Blocks a pass over `victims` may write at most: each live block once, an inode page (and a
  /// tree node) per head for each, the tail blocks, and the checkpoint's own estimate.
  func cleaningNeed(_ victims: [Int]) -> Int {
    let live = victims.reduce(0) { $0 + liveCount($1) }
    return live * (1 + 2 * heads.count) + metadataEstimate() + 8
  }

  /// Blocks free for the cleaner outside the victims (the reserve is the cleaner's to use).
  func cleaningRoom(_ victims: [Int]) -> Int {
    let inVictims = victims.reduce(0) { $0 + bps - busyPerSegment[$1] }
    return mainBlocks - busyTotal - inVictims
  }

  // MARK: - Triggers

  /// Foreground cleaning (FORMAT.md 13.3): when free segments are at most `2 * rsv_segments`, one
  /// greedy victim at most half live, at most once per two segments' worth of blocks allocated
  /// (the cleaner's and the checkpoints' included), so the cleaner moves at most a quarter block per
  /// block allocated. The test knob `cleanEveryOps` cleans one victim every so many calls instead,
  /// whatever the space.
  func cleanInForegroundIfDue() throws(EngineError) {
    guard !cleaningActive, !isReadOnly else { return }
    if cleanEveryOps > 0 {
      opsSinceClean += 1
      guard opsSinceClean >= cleanEveryOps else { return }
      opsSinceClean = 0
      let victims = chooseVictims(1, policy: cleaningPolicy, maxLive: bps)
      if !victims.isEmpty && cleaningRoom(victims) >= cleaningNeed(victims) {
        _ = try cleanVictims(victims)
      }
      return
    }
    guard allocatedSinceClean >= 2 * bps else { return }
    allocatedSinceClean = 0
    guard countFreeSegments() <= 2 * Int(sb.rsvSegments) else { return }
    let victims = chooseVictims(1, policy: cleaningPolicy, maxLive: bps / 2)
    guard !victims.isEmpty, cleaningRoom(victims) >= cleaningNeed(victims) else { return }
    _ = try cleanVictims(victims)
  }

  /// Before ENOSPC: greedy victims, while a pass still gains space for the user (with hole filling
  /// only dead tail fragments in a victim gain any). Returns whether `blocks` now fit.
  func cleanBeforeNoSpace(_ blocks: Int) throws(EngineError) -> Bool {
    guard !cleaningActive else { return false }
    var tried = Set<Int>()
    for _ in 0..<4 {
      let before = userSpaceLeft()
      guard
        let v = chooseVictims(segmentCount, policy: .greedy, maxLive: bps - 1).first(where: {
          !tried.contains($0)
        })
      else { return false }
      tried.insert(v)
      guard cleaningRoom([v]) >= cleaningNeed([v]) else { return false }
      _ = try cleanVictims([v])
      if userSpaceLeft() >= blocks { return true }
      if userSpaceLeft() <= before { return false }
    }
    return false
  }

  // MARK: - The pass

  /// Relocates every live block of `victims`, then checkpoints. Returns the victims free after it.
  func cleanVictims(_ victims: [Int]) throws(EngineError) -> [Int] {
    guard !victims.isEmpty else { return [] }
    cleaningActive = true
    cleaningVictims = Set(victims)
    defer {
      cleaningActive = false
      cleaningVictims = []
    }
    // No log continues inside a victim.
    for l in 0..<logSegment.count where cleaningVictims.contains(logSegment[l]) {
      try moveLog(l)
    }
    var foreign: [Int: [UInt32: EngineInode]] = [:]
    // Each relocation changes a head's bits and its inode together; when one fails, the other
    // heads' inodes already repointed are still written below, so their bitmaps stay true.
    var failure: EngineError?
    relocation: for s in victims.sorted() {
      for off in 0..<bps {
        let k = s * bps + off
        let owners = (0..<heads.count).filter { vbm[$0].get(k) }
        if owners.isEmpty { continue }
        do throws(EngineError) {
          try relocate(mainStart + UInt32(k), owners: owners, foreign: &foreign)
        } catch {
          failure = error
          break relocation
        }
      }
    }
    // Inodes of the other heads: their tails packed and their pages written, each in its head.
    for g in foreign.keys.sorted() {
      guard let loaded = foreign[g], loaded.values.contains(where: { $0.dirty }) else { continue }
      try asHead(g, inodes: loaded) { () throws(EngineError) in
        try packTails(cpVer: cp.cpVer + 1)
        try writeInodes(cpVer: cp.cpVer + 1)
      }
    }
    if let failure { throw failure }
    try checkpoint(umount: false)
    let freed = victims.filter { busyPerSegment[$0] == 0 }
    cleaningStats.passes += 1
    cleaningStats.segmentsCleaned += freed.count
    return freed
  }

  /// Relocates one block live in the heads `owners`, by its SSA kind.
  func relocate(
    _ old: UInt32, owners: [Int], foreign: inout [Int: [UInt32: EngineInode]]
  ) throws(EngineError) {
    let (owner, info) = ssaEntry(old)
    switch UInt8(info >> 28) {
    case SSAKind.data:
      try relocateData(old, ino: owner, lblk: info & 0x0FFF_FFFF, owners: owners, foreign: &foreign)
    case SSAKind.node:
      try relocateNode(old, nid: owner, owners: owners)
    case SSAKind.tail:
      try relocateTail(old, owners: owners, foreign: &foreign)
    case SSAKind.meta:
      try relocateMeta(old)
    default:
      throw EngineError.corrupt(
        "block \(old) is live in head(s) \(owners) but its SSA entry has kind \(info >> 28)")
    }
  }

  /// Inode `ino` of head `h` as the cleaner changes it: the open head's cache, or a copy loaded
  /// from head h's NAT and kept for the rest of the pass.
  func cleanerInode(_ ino: UInt32, head h: Int, foreign: inout [Int: [UInt32: EngineInode]])
    throws(EngineError) -> EngineInode?
  {
    if h == head {
      if let n = inodes[ino] { return n.deleted ? nil : n }
      guard let n = try loadInode(ino, head: h) else { return nil }
      inodes[ino] = n
      return n
    }
    if let n = foreign[h]?[ino] { return n }
    guard let n = try loadInode(ino, head: h) else { return nil }
    foreign[h, default: [:]][ino] = n
    return n
  }

  /// The crc field of block `addr`'s SSA entry.
  func ssaCRC(_ addr: UInt32) -> UInt32 {
    let k = Int(addr - mainStart)
    guard let body = ssaBodies[k / RoseLayout.ssaEntriesPerBlock] else { return 0 }
    return ByteReader(body, base: (k % RoseLayout.ssaEntriesPerBlock) * RoseLayout.ssaEntrySize)
      .u32(8)
  }

  func markChanged(_ n: EngineInode, head h: Int) {
    if h == head {
      markDirty(n)
      dataChanged = true
    } else {
      n.dirty = true
    }
  }

  func relocateData(
    _ old: UInt32, ino: UInt32, lblk: UInt32, owners: [Int],
    foreign: inout [Int: [UInt32: EngineInode]]
  ) throws(EngineError) {
    let bytes = try device.readBlock(old)
    // A damaged block is not moved: its copy would carry a checksum that hides the damage.
    let crc = ssaCRC(old)
    guard checksum.checksum(bytes) == crc else {
      throw EngineError.corrupt(
        "data block \(old) (ino \(ino), logical block \(lblk)) does not match its SSA checksum; the cleaner leaves it in place (run rosepack fsck)"
      )
    }
    let new = try allocate(.data)
    try writeDeviceBlock(new, bytes)
    setSSA(new, owner: ino, kind: SSAKind.data, index: lblk, crc: crc)
    var inTree = false
    for h in owners {
      guard let n = try cleanerInode(ino, head: h, foreign: &foreign) else {
        throw EngineError.corrupt(
          "data block \(old) is live in head \(h), but its owner ino \(ino) does not exist there")
      }
      if n.blocks[lblk] == old {
        n.blocks[lblk] = new
      } else if n.partial == .block(old) {
        n.partial = .block(new)
      } else {
        throw EngineError.corrupt(
          "data block \(old) is live in head \(h), but ino \(ino) has another block at lblk \(lblk)"
        )
      }
      if n.rec.has(InodeFlag.extentTree) { inTree = true }
      markChanged(n, head: h)
      setLive(h, new)
      clearLive(h, old)
      cleaningStats.headRepoints += 1
    }
    cleaningStats.dataBlocks += 1
    if inTree { cleaningStats.dataBlocksInExtentTrees += 1 }
  }

  func relocateNode(_ old: UInt32, nid: UInt32, owners: [Int]) throws(EngineError) {
    var b = try device.readBlock(old)
    let magic = ByteReader(b).u32(0)
    let isTreeNode = [Magic.dirNode, Magic.extentNode, Magic.xattrNode].contains(magic)
    if isTreeNode {
      // Checked before it is resealed, so that a damaged node is not given a valid checksum.
      b = try verifiedBlock(old, magic: magic, what: "node \(nid)")
    }
    let new = try allocate(.node)
    // A tree or xattr node names its own address in its header; an inode page names none (every
    // slot carries its own checksum) and is copied as it is.
    if isTreeNode { seal(&b, addr: new) }
    try writeDeviceBlock(new, b)
    setSSA(new, owner: nid, kind: SSAKind.node, index: 0, crc: 0)
    for h in owners {
      guard natLookup(h, nid) == old else {
        throw EngineError.corrupt(
          "node block \(old) is live in head \(h), but nat(\(nid)) there is \(natLookup(h, nid))")
      }
      setNAT(h, nid, new)
      setLive(h, new)
      clearLive(h, old)
      cleaningStats.headRepoints += 1
    }
    switch magic {
    case Magic.dirNode: cleaningStats.directoryNodes += 1
    case Magic.extentNode: cleaningStats.extentNodes += 1
    case Magic.xattrNode: cleaningStats.xattrNodes += 1
    default: cleaningStats.inodePages += 1
    }
  }

  func relocateTail(
    _ old: UInt32, owners: [Int], foreign: inout [Int: [UInt32: EngineInode]]
  ) throws(EngineError) {
    let b = try verifiedTailBlock(old, what: "tail block")
    for h in owners {
      // The block has no table: its fragments are found in the inode pages its SSA entry names.
      for ino in try storedTailUsers(old, head: h) {
        guard let n = try cleanerInode(ino, head: h, foreign: &foreign),
          case .tail(let blk, let off, let len) = n.partial, blk == old,
          Int(off) + Int(len) <= RoseLayout.blockSize
        else { continue }
        n.partial = .memory(Array(b[Int(off)..<Int(off) + Int(len)]))
        markChanged(n, head: h)
        cleaningStats.tailFragments += 1
      }
      clearLive(h, old)
      cleaningStats.headRepoints += 1
    }
    cleaningStats.tailBlocks += 1
  }

  /// A meta-file block: the checkpoint that ends the pass writes it elsewhere (every meta-file
  /// holding the address, so a NAT block two heads share moves out of both).
  func relocateMeta(_ old: UInt32) throws(EngineError) {
    var found = false
    for k in metaKeys {
      guard let f = meta(k) else { continue }
      if let i = f.leaves.firstIndex(of: old) {
        mutateMeta(k) { $0.dirty.insert(i) }
        found = true
      }
      if f.index.contains(where: { $0.addr == old }) {
        mutateMeta(k) { $0.indexStale = true }
        found = true
      }
    }
    guard found else {
      throw EngineError.corrupt("meta block \(old) is live but no meta-file holds it")
    }
    cleaningStats.metaBlocks += 1
  }
}

import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// The read-write engine (FORMAT.md section 13). At open it loads the superblock, the valid checkpoint,
// every head's NAT (journal applied), every head's validity bitmap and the SSA into memory. Changes
// are copy-on-write: file data goes to new blocks at once; inode pages, tree and xattr nodes, tail
// blocks and meta-file blocks are written by the next checkpoint, each to a block that the last
// checkpoint on disk does not reach. So a crash at any point leaves the last checkpoint intact.

/// The three logs of FORMAT.md 13 and what else the allocator hands out.
enum LogKind: Int {
  case node = 0
  case data = 1
  case tail = 2
}

public final class RoseEngine: VolumeOperations, @unchecked Sendable {
  let device: any BlockDevice
  let sb: Superblock
  let checksum: RoseChecksum
  let lock = NSRecursiveLock()
  public let isReadOnly: Bool
  /// The head this instance reads and writes.
  public private(set) var head: Int

  // Checkpoint state.
  var cp: Checkpoint
  var cpSlot: Int
  var nextFreeNid: UInt32
  var heads: [Head]
  var defaultHead: Int

  // Per head.
  var nat: [[UInt32]]
  /// Per head: NAT entries whose value differs from the stored NAT content block (the journal).
  var natDiff: [[UInt32: UInt32]]
  var natFiles: [EngineMetaFile]
  var vbm: [EngineBitmap]
  var vbmFiles: [EngineMetaFile?]
  var vbmSameAs: [Int?]
  var inodeCount: [Int]

  // Shared.
  var ssaFile: EngineMetaFile
  var ssaBodies: [Int: [UInt8]] = [:]
  /// OR of every head's bitmap as the checkpoint on disk has it: blocks not to overwrite.
  var committed: EngineBitmap
  /// Blocks live in a head now or in the committed checkpoint, per segment.
  var busyPerSegment: [Int]
  var busyTotal = 0

  // Allocation.
  var logSegment: [Int]
  var logCursor: [Int]
  var nidCursor: UInt32 = 1
  /// Free inode slots of pages only this head uses: a stack (lowest on top) and the set that says
  /// which entries of the stack are still free (claimed slots leave stale stack entries).
  var freeInos: [UInt32] = []
  var freeInoSet = Set<UInt32>()
  /// False while another head's inodes are written (`asHead`): the pool is the open head's.
  var slotPoolActive = true
  /// Nids handed out for inode pages not yet in any NAT.
  var reservedNids = Set<UInt32>()
  /// Where the tail-block cleaner continues its scan.
  var tailCleanCursor = 0
  /// Something in the open head changed since the last checkpoint.
  var dataChanged = false

  // Inodes in use.
  var inodes: [UInt32: EngineInode] = [:]
  var dirtyInodes = Set<UInt32>()
  var pageCache: [UInt32: [UInt8]] = [:]
  var unmounted = false

  // Segment cleaning (RoseEngine+Clean.swift, FORMAT.md 13.5).
  /// Segments being cleaned: the allocator hands out no block in them until the pass's checkpoint.
  var cleaningVictims = Set<Int>()
  /// How victims are chosen (greedy unless a caller or test asks otherwise).
  public var cleaningPolicy = CleaningPolicy.greedy
  /// What the cleaner did since open.
  public internal(set) var cleaningStats = CleaningStats()
  /// Per segment: the checkpoint version after which a block was last allocated in it (0: not
  /// since open). Cost-benefit cleaning takes a segment's age from it.
  var segmentStamp: [UInt64] = []
  /// Blocks allocated since the last foreground cleaning pass (the pass is rate-limited by it).
  var allocatedSinceClean = 0
  /// A cleaning pass is running (no foreground cleaning from inside it).
  var cleaningActive = false
  /// Test knob: > 0 cleans one victim (any segment with a live block) every this many calls of
  /// ensureUserSpace, whatever the free space.
  var cleanEveryOps = 0
  var opsSinceClean = 0

  // Roll-forward (FORMAT.md 13.7, RoseEngine+RollForward.swift): the chain this instance extends
  // and the changes since its last record group; what open replayed.
  var rf = RollForwardState()
  public internal(set) var rollForwardReplay = RollForwardReplay()

  var bps: Int { Int(sb.blocksPerSegment) }
  var mainStart: UInt32 { sb.mainBlkaddr }
  var mainBlocks: Int { Int(sb.mainBlocks) }
  var segmentCount: Int { Int(sb.segmentCount) }
  var reserveBlocks: Int { Int(sb.rsvSegments) * bps + Int(sb.opBlocks) }
  public var rootIno: UInt32 { heads[head].rootIno }

  // MARK: - Open

  /// Opens subvolume `subvolume` (nil: the checkpoint's default head) of the volume on `device`.
  public static func open(device: any BlockDevice, subvolume: String?, readOnly: Bool)
    throws(EngineError) -> RoseEngine
  {
    try RoseEngine(device: device, subvolume: subvolume, readOnly: readOnly)
  }

  init(device: any BlockDevice, subvolume: String?, readOnly: Bool) throws(EngineError) {
    self.device = device
    isReadOnly = readOnly
    var sbFound: Superblock?
    for copy in UInt32(0)..<2 {
      let b = try device.readBlock(copy)
      let raw = Array(
        b[RoseLayout.superblockOffset..<RoseLayout.superblockOffset + RoseLayout.superblockSize])
      if let s = try? Superblock.decode(raw) {
        sbFound = s
        break
      }
    }
    guard let sb = sbFound else {
      throw EngineError.corrupt("no valid RoseFS superblock in block 0 or block 1")
    }
    if !readOnly && sb.featureRoCompat & ~Feature.roCompatKnown != 0 {
      throw EngineError(EROFS, "the volume has read-only-compatible features this engine lacks")
    }
    guard UInt64(sb.mainBlkaddr) + UInt64(sb.mainBlocks) <= device.blockCount else {
      throw EngineError.corrupt(
        "the main area ends at block \(UInt64(sb.mainBlkaddr) + UInt64(sb.mainBlocks)), past the device (\(device.blockCount) blocks)"
      )
    }
    self.sb = sb
    checksum = RoseChecksum(uuid: sb.uuid)
    var best: (Checkpoint, Int)?
    for s in 0..<RoseLayout.checkpointSlots {
      let b = try device.readBlock(sb.cpBlkaddr + UInt32(s))
      if let c = Checkpoint.decode(b, checksum: checksum), c.cpVer >= 1,
        best.map({ c.cpVer > $0.0.cpVer }) ?? true
      {
        best = (c, s)
      }
    }
    guard let (cp, slot) = best else {
      throw EngineError.corrupt("no valid checkpoint in block 2 or block 3")
    }
    guard !cp.heads.isEmpty, Int(cp.defaultHead) < cp.heads.count else {
      throw EngineError.corrupt("checkpoint: bad head count or default head")
    }
    self.cp = cp
    cpSlot = slot
    nextFreeNid = cp.nextFreeNid
    heads = cp.heads
    defaultHead = Int(cp.defaultHead)
    if let subvolume {
      guard let h = cp.heads.firstIndex(where: { $0.nameString == subvolume }) else {
        let names = cp.heads.map { $0.nameString }.joined(separator: ", ")
        throw EngineError.noEntry("no subvolume named \"\(subvolume)\" (the volume has: \(names))")
      }
      head = h
    } else {
      head = Int(cp.defaultHead)
    }
    let mainBlocks = Int(sb.mainBlocks)
    nat = []
    natDiff = []
    natFiles = []
    vbm = []
    vbmFiles = []
    vbmSameAs = []
    inodeCount = []
    committed = EngineBitmap(count: mainBlocks)
    busyPerSegment = [Int](repeating: 0, count: Int(sb.segmentCount))
    logSegment = cp.logs.map { Int($0.segment) }
    logCursor = cp.logs.map { Int($0.blockOffset) }
    let natBlocks = Self.natBlockCount(cp.nextFreeNid)
    ssaFile = EngineMetaFile(type: MetaType.ssa, head: 0, nblocks: 0, leaves: [])
    let per = RoseLayout.addressesPerBlock
    for (h, hd) in cp.heads.enumerated() {
      var file = try readMap(hd.nat, type: MetaType.nat, head: h, what: "head \(h) NAT")
      if file.nblocks != natBlocks {
        throw EngineError.corrupt("head \(h) NAT: nblocks \(file.nblocks), expected \(natBlocks)")
      }
      var table = [UInt32](repeating: 0, count: natBlocks * per)
      for (i, a) in file.leaves.enumerated() where a != 0 {
        let b = try verifiedBlock(a, magic: Magic.nat, what: "head \(h) NAT block \(i)")
        let r = ByteReader(b)
        for j in 0..<per { table[i * per + j] = r.u32(0x20 + 4 * j) }
      }
      var diff: [UInt32: UInt32] = [:]
      for e in cp.natJournal where Int(e.head) == h {
        guard Int(e.nid) < table.count else {
          throw EngineError.corrupt("NAT journal: nid \(e.nid) is past the NAT")
        }
        table[Int(e.nid)] = e.blkaddr
        diff[e.nid] = e.blkaddr
      }
      file.head = h
      nat.append(table)
      natDiff.append(diff)
      natFiles.append(file)
      inodeCount.append(Int(hd.inodeCount))
      vbmSameAs.append(hd.vbmSource)
    }
    let vbmCount = (mainBlocks + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock
    for (h, hd) in cp.heads.enumerated() {
      var bitmap = EngineBitmap(count: mainBlocks)
      if hd.vbmSource == nil {
        let file = try readMap(hd.vbm, type: MetaType.vbm, head: h, what: "head \(h) VBM")
        guard file.nblocks == vbmCount else {
          throw EngineError.corrupt("head \(h) VBM: nblocks \(file.nblocks), expected \(vbmCount)")
        }
        for (i, a) in file.leaves.enumerated() where a != 0 {
          let b = try verifiedBlock(a, magic: Magic.vbm, what: "head \(h) VBM block \(i)")
          let base = i * (RoseLayout.bitsPerVBMBlock / 8)
          for j in 0..<(RoseLayout.bitsPerVBMBlock / 8) where b[0x20 + j] != 0 {
            bitmap.setByte(base + j, b[0x20 + j])
          }
        }
        vbmFiles.append(file)
      } else {
        vbmFiles.append(nil)
      }
      vbm.append(bitmap)
    }
    for (h, src) in vbmSameAs.enumerated() {
      if let src {
        guard src < heads.count, vbmSameAs[src] == nil else {
          throw EngineError.corrupt("head \(h): VBM_SAME_AS names head \(src)")
        }
        vbm[h] = vbm[src]
      }
    }
    ssaFile = try readMap(cp.ssa, type: MetaType.ssa, head: 0, what: "SSA")
    for (i, a) in ssaFile.leaves.enumerated() where a != 0 {
      let b = try verifiedBlock(a, magic: Magic.ssa, what: "SSA block \(i)")
      ssaBodies[i] = Array(b[RoseLayout.headerSize...])
    }
    recomputeCommitted()
    // The log heads of a fresh pack may sit on segments with live blocks past their offset only
    // if the packer left them so; keep distinct segments.
    if Set(logSegment).count != 3 || logSegment.contains(where: { $0 >= segmentCount }) {
      logSegment = [0, 1, 2]
      logCursor = [bps, bps, bps]
    }
    // FORMAT.md 13.7: the fsyncs since the checkpoint. A read-only open keeps the result in memory;
    // a writable one makes it a checkpoint at once (and starts a chain of its own).
    if cp.rfNext != 0 {
      rollForwardReplay = try replayRollForward()
      if rollForwardReplay.groups > 0 && !readOnly { try checkpoint(umount: false) }
    }
  }

  static func natBlockCount(_ nextFreeNid: UInt32) -> Int {
    (Int(nextFreeNid) + RoseLayout.addressesPerBlock - 1) / RoseLayout.addressesPerBlock
  }

  /// Reads and checks a block with a header.
  func verifiedBlock(_ addr: UInt32, magic: UInt32, what: String) throws(EngineError) -> [UInt8] {
    guard addr >= mainStart, Int(addr - mainStart) < mainBlocks else {
      throw EngineError.corrupt("\(what): block \(addr) is outside the main area")
    }
    let b = try device.readBlock(addr)
    do {
      try ImageReader.verifyHeader(b, addr: addr, magic: magic, checksum: checksum, what: what)
    } catch {
      throw EngineError.corrupt("\(error)")
    }
    return b
  }

  /// Loads a meta-file's map: every content address and every index block.
  func readMap(_ root: MetaRoot, type: UInt8, head h: Int, what: String) throws(EngineError)
    -> EngineMetaFile
  {
    let n = Int(root.nblocks)
    var file = EngineMetaFile(
      type: type, head: h, nblocks: n, leaves: [UInt32](repeating: 0, count: n))
    guard Int(root.depth) == file.depth, root.depth <= 4 else {
      throw EngineError.corrupt("\(what): depth \(root.depth) for \(n) blocks")
    }
    if root.depth == 0 {
      if n > 0 { file.leaves[0] = root.root }
      return file
    }
    let per = RoseLayout.addressesPerBlock
    func visit(_ addr: UInt32, level: Int, index: Int, span: Int) throws(EngineError) {
      let b = try verifiedBlock(addr, magic: Magic.mapIndex, what: "\(what) map-index")
      file.index.append((UInt8(level), UInt32(index), addr))
      let r = ByteReader(b)
      let childSpan = span / per
      for i in 0..<per {
        let c = r.u32(0x20 + 4 * i)
        if c == 0 { continue }
        let ci = index * per + i
        if level == 1 {
          guard ci < n else { throw EngineError.corrupt("\(what): child past nblocks") }
          file.leaves[ci] = c
        } else {
          guard ci * childSpan < n else { throw EngineError.corrupt("\(what): child past nblocks") }
          try visit(c, level: level - 1, index: ci, span: childSpan)
        }
      }
    }
    var span = 1
    for _ in 0..<Int(root.depth) { span *= per }
    if root.root != 0 { try visit(root.root, level: Int(root.depth), index: 0, span: span) }
    return file
  }

  // MARK: - Space accounting

  func isBusy(_ k: Int) -> Bool {
    if committed.get(k) { return true }
    for h in 0..<vbm.count where vbm[h].get(k) { return true }
    return false
  }

  func recomputeCommitted() {
    var or = EngineBitmap(count: mainBlocks)
    for b in vbm {
      for i in 0..<or.words.count { or.words[i] |= b.words[i] }
    }
    committed = or
    busyTotal = 0
    // Segments are whole words (at least 64 blocks each).
    let words = bps / 64
    for s in 0..<segmentCount {
      var n = 0
      for w in s * words..<(s + 1) * words { n += or.words[w].nonzeroBitCount }
      busyPerSegment[s] = n
      busyTotal += n
    }
  }

  /// Marks `addr` live in head `h` (and in every head that shares h's bitmap).
  func setLive(_ h: Int, _ addr: UInt32) {
    let k = Int(addr - mainStart)
    let was = isBusy(k)
    for g in headsSharing(h) where !vbm[g].get(k) {
      noteBit(g, k, was: false)
      vbm[g].set(k)
      markVBMDirty(g, k)
    }
    if !was {
      busyPerSegment[k / bps] += 1
      busyTotal += 1
    }
  }

  /// Marks `addr` not live in head `h` any more.
  func clearLive(_ h: Int, _ addr: UInt32) {
    guard addr >= mainStart, Int(addr - mainStart) < mainBlocks else { return }
    let k = Int(addr - mainStart)
    let was = isBusy(k)
    for g in headsSharing(h) where vbm[g].get(k) {
      noteBit(g, k, was: true)
      vbm[g].clear(k)
      markVBMDirty(g, k)
    }
    if was && !isBusy(k) {
      busyPerSegment[k / bps] -= 1
      busyTotal -= 1
    }
  }

  /// `h` alone: a head's bitmap is its own in memory (VBM_SAME_AS is decided when checkpointing).
  @inline(__always) func headsSharing(_ h: Int) -> [Int] { [h] }

  func markVBMDirty(_ h: Int, _ k: Int) {
    if vbmFiles[h] != nil { vbmFiles[h]!.dirty.insert(k / RoseLayout.bitsPerVBMBlock) }
  }

  /// Blocks a write may still take without touching the reserve or the next checkpoint's needs.
  func userSpaceLeft() -> Int {
    mainBlocks - busyTotal - reserveBlocks - metadataEstimate()
  }

  /// An upper bound of the blocks the next checkpoint writes. Without `countingTrees`, the tree
  /// nodes of dirty directories and files are left out: a checkpoint writes them again whole and
  /// they are as many after it, so checkpointing sooner does not make them fewer.
  func metadataEstimate(countingTrees: Bool = true) -> Int {
    var pages = Set<UInt32>()
    var nodes = 0
    var tailBytes = 0
    for ino in dirtyInodes {
      pages.insert(ino / UInt32(RoseLayout.inodesPerPage))
      guard let n = inodes[ino] else { continue }
      // Tree nodes as the encoders will lay them out (full leaves, one interior level per 254
      // children), never fewer than the inode has now; one xattr node.
      var tree = 0
      if n.kind == .directory {
        if n.entryBytes - 8 * n.entries.count > 0 {
          tree = n.entryBytes / 3000 + 2
        }
      } else if n.blocks.count > 20 {
        tree = n.blocks.count / 300 + 2
      }
      nodes += (countingTrees ? max(tree, n.nodeNids.count) : 0) + (n.xattrs.isEmpty ? 0 : 1)
      if case .memory(let b) = n.partial { tailBytes += b.count }
    }
    let tails = tailBytes / 3000 + 2
    let written = pages.count + nodes + tails
    var nat = 0
    for h in 0..<heads.count { nat += natFiles[h].leaves.count + 2 }
    var vbmBlocks = 0
    for _ in 0..<heads.count {
      vbmBlocks += (mainBlocks + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock + 2
    }
    let ssa = ssaFile.dirty.count + (written + nat + vbmBlocks) / 300 + 4
    return written + nat + vbmBlocks + ssa + 8
  }

  /// Makes room for `blocks` user blocks: checkpoints to release blocks freed since the last one
  /// when that helps, else ENOSPC.
  func ensureUserSpace(_ blocks: Int) throws(EngineError) {
    // Foreground segment cleaning when free segments run low (FORMAT.md 13.3).
    try cleanInForegroundIfDue()
    if userSpaceLeft() >= blocks { return }
    // Blocks freed since the last checkpoint become usable once a checkpoint no longer reaches them.
    try checkpoint(umount: false)
    if userSpaceLeft() >= blocks { return }
    // Then clean: tail blocks whose fragments are mostly dead are repacked (FORMAT.md 13.5).
    while try cleanTailBlocks() {
      if userSpaceLeft() >= blocks { return }
    }
    // Last, whole segments, while that still gains space (dead tail fragments in the victims).
    if try cleanBeforeNoSpace(blocks) { return }
    throw EngineError.noSpace("the volume is full (the reserve of FORMAT.md 13.3 is kept)")
  }

  func isLiveAnywhere(_ k: Int) -> Bool {
    for h in 0..<vbm.count where vbm[h].get(k) { return true }
    return false
  }

  /// A block for the log `kind`: the next one in the log's segment that no head uses and that the
  /// checkpoint on disk does not reach; a new segment when this one is used up (an empty one first,
  /// else the one with the most free blocks: hole filling).
  /// Segments being cleaned are skipped until the cleaning pass's checkpoint has freed them.
  func allocate(_ kind: LogKind) throws(EngineError) -> UInt32 {
    let l = kind.rawValue
    while true {
      let s = logSegment[l]
      if s < segmentCount && busyPerSegment[s] < bps && !cleaningVictims.contains(s) {
        while logCursor[l] < bps {
          let k = s * bps + logCursor[l]
          logCursor[l] += 1
          if !isBusy(k) {
            allocatedSinceClean += 1
            if segmentStamp.count != segmentCount {
              segmentStamp = [UInt64](repeating: 0, count: segmentCount)
            }
            segmentStamp[s] = cp.cpVer
            return mainStart + UInt32(k)
          }
        }
      }
      try moveLog(l)
    }
  }

  /// Points log `l` at a new segment: an empty one first, else the one with the most free blocks
  /// (hole filling); never another log's segment or a segment being cleaned.
  func moveLog(_ l: Int) throws(EngineError) {
    var best = -1
    var bestFree = 0
    for t in 0..<segmentCount where !logSegment.contains(t) && !cleaningVictims.contains(t) {
      let free = bps - busyPerSegment[t]
      if free > bestFree {
        best = t
        bestFree = free
        if free == bps { break }
      }
    }
    guard best >= 0 else { throw EngineError.noSpace("no free block left in the volume") }
    logSegment[l] = best
    logCursor[l] = 0
  }

  /// Runs `body` as if head `h` were the open one, with `loaded` as its inode cache; the open
  /// head's inode state is restored after. The cleaner rewrites inodes of other heads this way.
  func asHead(
    _ h: Int, inodes loaded: [UInt32: EngineInode], _ body: () throws(EngineError) -> Void
  ) throws(EngineError) {
    let savedHead = head
    let savedInodes = inodes
    let savedDirty = dirtyInodes
    head = h
    inodes = loaded
    dirtyInodes = Set(loaded.filter { $0.value.dirty }.keys)
    slotPoolActive = false
    defer {
      slotPoolActive = true
      head = savedHead
      inodes = savedInodes
      dirtyInodes = savedDirty
    }
    try body()
  }

  // MARK: - SSA

  func setSSA(_ addr: UInt32, owner: UInt32, kind: UInt8, index: UInt32, crc: UInt32) {
    let k = Int(addr - mainStart)
    let leaf = k / RoseLayout.ssaEntriesPerBlock
    let o = (k % RoseLayout.ssaEntriesPerBlock) * RoseLayout.ssaEntrySize
    if ssaBodies[leaf] == nil {
      ssaBodies[leaf] = [UInt8](repeating: 0, count: RoseLayout.blockSize - RoseLayout.headerSize)
    }
    // In place: no copy of the 4 KiB body per block written.
    ssaBodies[leaf]!.withUnsafeMutableBytes { buf in
      buf.storeBytes(of: owner.littleEndian, toByteOffset: o, as: UInt32.self)
      let info = UInt32(kind) << 28 | (index & 0x0FFF_FFFF)
      buf.storeBytes(of: info.littleEndian, toByteOffset: o + 4, as: UInt32.self)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: o + 8, as: UInt32.self)
    }
    ssaFile.dirty.insert(leaf)
    noteSSA(k)
  }

  func ssaEntry(_ addr: UInt32) -> (owner: UInt32, info: UInt32) {
    let k = Int(addr - mainStart)
    guard let body = ssaBodies[k / RoseLayout.ssaEntriesPerBlock] else { return (0, 0) }
    let r = ByteReader(body, base: (k % RoseLayout.ssaEntriesPerBlock) * RoseLayout.ssaEntrySize)
    return (r.u32(0), r.u32(4))
  }

  // MARK: - NAT

  func setNAT(_ h: Int, _ nid: UInt32, _ addr: UInt32) {
    let i = Int(nid)
    if i >= nat[h].count {
      let grow = (i / RoseLayout.addressesPerBlock + 1) * RoseLayout.addressesPerBlock
      for g in 0..<nat.count where nat[g].count < grow {
        nat[g] += [UInt32](repeating: 0, count: grow - nat[g].count)
      }
    }
    nat[h][i] = addr
    natDiff[h][nid] = addr
    noteNAT(h, nid, addr)
  }

  func natLookup(_ h: Int, _ nid: UInt32) -> UInt32 {
    Int(nid) < nat[h].count ? nat[h][Int(nid)] : 0
  }

  /// A nid free in every head.
  func newNid() -> UInt32 {
    var n = max(nidCursor, 1)
    while n < nextFreeNid {
      if !reservedNids.contains(n) && !(0..<heads.count).contains(where: { natLookup($0, n) != 0 })
      {
        nidCursor = n + 1
        return n
      }
      n += 1
    }
    nidCursor = nextFreeNid + 1
    nextFreeNid += 1
    return nextFreeNid - 1
  }

  func releaseNid(_ nid: UInt32) {
    let old = natLookup(head, nid)
    if old != 0 { clearLive(head, old) }
    setNAT(head, nid, 0)
    if nid < nidCursor { nidCursor = nid }
  }

  // MARK: - Clock

  func now() -> Timestamp {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: UInt32(ts.tv_nsec))
  }

  func withLock<T>(_ body: () throws(EngineError) -> T) throws(EngineError) -> T {
    lock.lock()
    defer { lock.unlock() }
    guard !unmounted else { throw EngineError(EIO, "the volume is unmounted") }
    return try body()
  }

  func requireWritable() throws(EngineError) {
    if isReadOnly { throw EngineError(EROFS, "the volume is open read-only") }
  }
}

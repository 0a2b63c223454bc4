#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// The checkpoint (FORMAT.md 4 and 13): tails packed, dirty inodes encoded with their tree and xattr
// nodes, inode pages written copy-on-write, NAT changes kept in the journal (or folded into NAT
// blocks when it would overflow), the changed meta-file blocks and their maps written to new places,
// then, after a write barrier, the other checkpoint slot with cp_ver + 1, then a barrier again.
// The slot names a free block reserved for the first roll-forward record (RoseEngine+RollForward).

/// One meta-file of the volume.
enum MetaKey: Hashable {
  case nat(Int)
  case vbm(Int)
  case ssa
}

extension RoseEngine {
  // MARK: - Meta-file access

  func meta(_ k: MetaKey) -> EngineMetaFile? {
    switch k {
    case .nat(let h): return natFiles[h]
    case .vbm(let h): return vbmFiles[h]
    case .ssa: return ssaFile
    }
  }

  func mutateMeta(_ k: MetaKey, _ body: (inout EngineMetaFile) -> Void) {
    switch k {
    case .nat(let h): body(&natFiles[h])
    case .vbm(let h): if vbmFiles[h] != nil { body(&vbmFiles[h]!) }
    case .ssa: body(&ssaFile)
    }
  }

  /// Heads whose bitmaps hold the blocks of meta-file `k` (FORMAT.md 14 item 11).
  func metaOwners(_ k: MetaKey) -> [Int] {
    switch k {
    case .nat(let h): return [h]
    case .vbm(let h): return [h] + (0..<heads.count).filter { vbmSameAs[$0] == h }
    case .ssa: return Array(0..<heads.count)
    }
  }

  func metaType(_ k: MetaKey) -> UInt8 {
    switch k {
    case .nat: return MetaType.nat
    case .vbm: return MetaType.vbm
    case .ssa: return MetaType.ssa
    }
  }

  func metaHead(_ k: MetaKey) -> Int {
    switch k {
    case .nat(let h), .vbm(let h): return h
    case .ssa: return 0
    }
  }

  var metaKeys: [MetaKey] {
    var keys: [MetaKey] = []
    for h in 0..<heads.count {
      keys.append(.nat(h))
      if vbmFiles[h] != nil { keys.append(.vbm(h)) }
    }
    keys.append(.ssa)
    return keys
  }

  func metaOwnerField(_ k: MetaKey, level: UInt8) -> UInt32 {
    UInt32(metaType(k)) | UInt32(metaHead(k)) << 8 | UInt32(level) << 16
  }

  /// Whether content block `i` of meta-file `k` would be all zero (then a hole stays a hole).
  func metaLeafIsZero(_ k: MetaKey, _ i: Int) -> Bool {
    switch k {
    case .nat(let h):
      let per = RoseLayout.addressesPerBlock
      let lo = i * per
      let hi = min(lo + per, nat[h].count)
      return lo >= hi || nat[h][lo..<hi].allSatisfy { $0 == 0 }
    case .vbm(let h):
      let wordsPer = RoseLayout.bitsPerVBMBlock / 64
      let lo = i * wordsPer
      let hi = min(lo + wordsPer, vbm[h].words.count)
      return lo >= hi || vbm[h].words[lo..<hi].allSatisfy { $0 == 0 }
    case .ssa:
      return ssaBodies[i].map { $0.allSatisfy { $0 == 0 } } ?? true
    }
  }

  /// Sets the header fields, `blkaddr` and the checksum of a block with a header.
  func seal(_ b: inout [UInt8], addr: UInt32) {
    b.withUnsafeMutableBytes { buf in
      buf.storeBytes(of: addr.littleEndian, toByteOffset: 0x10, as: UInt32.self)
      let crc = checksum.checksum(
        UnsafeRawBufferPointer(buf), zeroingFieldAt: BlockHeader.crcOffset)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: BlockHeader.crcOffset, as: UInt32.self)
    }
  }

  func headerBlock(
    magic: UInt32, cpVer: UInt64, owner: UInt32, count: Int, level: UInt8 = 0, subtype: UInt8 = 0,
    aux: UInt32 = 0, body: [UInt8]
  ) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    b.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      BlockHeader(
        magic: magic, cpVer: cpVer, blkaddr: 0, owner: owner, count: UInt16(count), level: level,
        subtype: subtype, aux: aux
      ).encode(into: &w)
    }
    let n = min(body.count, RoseLayout.blockSize - RoseLayout.headerSize)
    b.replaceSubrange(RoseLayout.headerSize..<RoseLayout.headerSize + n, with: body[0..<n])
    return b
  }

  // MARK: - Checkpoint

  func checkpoint(umount: Bool) throws(EngineError) {
    guard !isReadOnly else { return }
    let ver = cp.cpVer + 1
    try packTails(cpVer: ver)
    try writeInodes(cpVer: ver)
    prepareNAT()
    try writeMetaFiles(cpVer: ver)
    try writeCheckpointBlock(cpVer: ver, umount: umount)
  }

  /// Places every partial block held in memory: into new tail blocks, or into a data block when
  /// longer than `tail_max`. Tail blocks are headerless (FORMAT.md 9.3): fragments from byte 0 up,
  /// in ino order; the SSA entry names the inode pages `owner ... owner + index`, and a block is
  /// closed before that range would pass `RoseLayout.maxTailPageSpan` pages.
  func packTails(cpVer: UInt64) throws(EngineError) {
    var group: [(EngineInode, [UInt8], UInt16)] = []
    var used = 0
    let perPage = UInt32(RoseLayout.inodesPerPage)
    func flush() throws(EngineError) {
      guard let first = group.first, let last = group.last else { return }
      let a = try allocate(.tail)
      var b = [UInt8](repeating: 0, count: RoseLayout.blockSize)
      for (_, bytes, off) in group {
        b.replaceSubrange(Int(off)..<Int(off) + bytes.count, with: bytes)
      }
      try writeDeviceBlock(a, b)
      setLive(head, a)
      let low = first.0.rec.ino / perPage
      let high = last.0.rec.ino / perPage
      setSSA(a, owner: low, kind: SSAKind.tail, index: high - low, crc: checksum.checksum(b))
      for (n, bytes, off) in group {
        n.partial = .tail(block: a, offset: off, length: UInt16(bytes.count))
      }
      group = []
      used = 0
    }
    for ino in dirtyInodes.sorted() {
      guard let n = inodes[ino], !n.deleted, case .memory(let bytes) = n.partial else { continue }
      if bytes.count > Int(sb.tailMax) {
        var block = bytes
        block += [UInt8](repeating: 0, count: RoseLayout.blockSize - block.count)
        let a = try allocate(.data)
        try writeDeviceBlock(a, block)
        setLive(head, a)
        let lblk = UInt32(n.rec.size / UInt64(RoseLayout.blockSize))
        setSSA(a, owner: ino, kind: SSAKind.data, index: lblk, crc: checksum.checksum(block))
        n.partial = .block(a)
        continue
      }
      if let first = group.first,
        used + bytes.count > RoseLayout.blockSize
          || ino / perPage - first.0.rec.ino / perPage > RoseLayout.maxTailPageSpan
      {
        try flush()
      }
      group.append((n, bytes, UInt16(used)))
      used += bytes.count
    }
    try flush()
  }

  /// Encodes every dirty inode (with its tree and xattr nodes) and writes its inode page anew. The
  /// slots an inode held on disk are zeroed first, then every inode is written at its slots.
  func writeInodes(cpVer: UInt64) throws(EngineError) {
    fixParentHints()
    var zeroed: [UInt32: [Range<Int>]] = [:]
    var written: [UInt32: [(Int, [UInt8])]] = [:]
    let perPage = UInt32(RoseLayout.inodesPerPage)
    for ino in dirtyInodes.sorted() {
      guard let n = inodes[ino] else { continue }
      let nid = ino / perPage
      let base = Int(ino % perPage) * RoseLayout.inodeSize
      if n.diskSlots > 0 {
        zeroed[nid, default: []].append(base..<base + n.diskSlots * RoseLayout.inodeSize)
      }
      if n.deleted {
        n.diskSlots = 0
      } else {
        let bytes = try encodeInode(n, cpVer: cpVer)
        written[nid, default: []].append((base, bytes))
        n.diskSlots = Int(n.rec.nslots)
      }
      n.dirty = false
    }
    for nid in Set(zeroed.keys).union(written.keys).sorted() {
      let old = natLookup(head, nid)
      var page =
        old != 0 ? try readPage(old) : [UInt8](repeating: 0, count: RoseLayout.blockSize)
      for r in zeroed[nid] ?? [] {
        page.replaceSubrange(r, with: repeatElement(0, count: r.count))
      }
      for (o, bytes) in written[nid] ?? [] {
        page.replaceSubrange(o..<o + bytes.count, with: bytes)
      }
      if old != 0 { clearLive(head, old) }
      if page.allSatisfy({ $0 == 0 }) {
        if old != 0 { setNAT(head, nid, 0) }
        continue
      }
      let a = try allocate(.node)
      try writeDeviceBlock(a, page)
      setLive(head, a)
      setSSA(a, owner: nid, kind: SSAKind.node, index: 0, crc: 0)
      setNAT(head, nid, a)
    }
    for ino in dirtyInodes where inodes[ino]?.deleted ?? false { inodes[ino] = nil }
    dirtyInodes.removeAll()
  }

  /// The slots of an inode; writes its tree and xattr nodes (reusing its nids, FORMAT.md 13.4).
  /// Inline forms grow into the free slots after the inode (`claimSlots`), else become trees;
  /// slots the result does not need go back to the pool.
  func encodeInode(_ n: EngineInode, cpVer: UInt64) throws(EngineError) -> [UInt8] {
    var rec = n.rec
    let ino = rec.ino
    rec.flags = 0
    rec.inlineLen = 0
    rec.xattrLen = 0
    if !rec.isDevice {
      // A device keeps its numbers in these two fields (FORMAT.md 7).
      rec.treeRoot = 0
      rec.tailBlk = 0
    }
    rec.treeDepth = 0
    rec.tailOff = 0
    rec.dataBlocks = 0
    rec.xattrNid = 0
    var area = [UInt8](repeating: 0, count: RoseLayout.maxInline)
    var reuse = n.nodeNids
    var used: [UInt32] = []
    var nodes: [PendingNode] = []
    let alloc = { () -> UInt32 in
      let x = reuse.isEmpty ? self.newNid() : reuse.removeFirst()
      used.append(x)
      return x
    }
    switch n.kind {
    case .directory:
      let set = leafSet(n)
      let inl = encodeInlineDirents(set.sorted)
      if canHoldInline(n, bytes: inl.count) {
        claimSlots(n, InodeSlots.slots(forInline: inl.count))
        rec.flags = InodeFlag.inlineDentry
        area.replaceSubrange(0..<inl.count, with: inl)
        rec.inlineLen = UInt16(inl.count)
        rec.size = UInt64(inl.count)
      } else {
        let leaves = set.encodedLeaves()
        let t = BTreeBulkLoader(magic: Magic.dirNode, ownerIno: ino, cpVer: cpVer, keyWidth: 8)
          .build(leaves: leaves, allocateNid: alloc)
        nodes += t.nodes
        rec.treeRoot = t.root
        rec.treeDepth = t.depth
        rec.flags = InodeFlag.dirTree
        rec.size = UInt64(leaves.count * RoseLayout.blockSize)
      }
    case .regular, .symlink:
      if n.isInlineForm {
        rec.flags = InodeFlag.inlineData
        area.replaceSubrange(0..<n.inline.count, with: n.inline)
        rec.inlineLen = UInt16(n.inline.count)
      } else {
        var map = n.blocks
        if case .block(let a) = n.partial {
          map[UInt32(rec.size / UInt64(RoseLayout.blockSize))] = a
        }
        var extents: [Extent] = []
        for l in map.keys.sorted() {
          let a = map[l]!
          if var last = extents.last, last.logical &+ last.count == l,
            last.physical &+ last.count == a
          {
            last.count += 1
            extents[extents.count - 1] = last
          } else {
            extents.append(Extent(logical: l, physical: a, count: 1))
          }
        }
        rec.dataBlocks = UInt32(clamping: map.count)
        let e = encodeExtents(extents)
        if canHoldInline(n, bytes: e.count) {
          claimSlots(n, InodeSlots.slots(forInline: e.count))
          rec.flags = InodeFlag.extents
          area.replaceSubrange(0..<e.count, with: e)
          rec.inlineLen = UInt16(e.count)
        } else {
          let t = BTreeBulkLoader(magic: Magic.extentNode, ownerIno: ino, cpVer: cpVer, keyWidth: 4)
            .build(leaves: extentLeaves(extents), allocateNid: alloc)
          nodes += t.nodes
          rec.treeRoot = t.root
          rec.treeDepth = t.depth
          rec.flags = InodeFlag.extentTree
        }
        if case .tail(let blk, let off, let len) = n.partial {
          rec.flags |= InodeFlag.tail
          rec.tailBlk = blk
          rec.tailOff = off
          guard UInt64(len) == rec.size % UInt64(RoseLayout.blockSize) else {
            throw EngineError.corrupt("ino \(ino): tail fragment of \(len) bytes, size \(rec.size)")
          }
        }
      }
    default:
      break
    }
    var need = InodeSlots.slots(forInline: Int(rec.inlineLen))
    if !n.xattrs.isEmpty {
      let x = encodeXattrs(n.xattrs)
      let withXattrs = Int(rec.inlineLen) + x.count
      if canHoldInline(n, bytes: withXattrs) {
        need = InodeSlots.slots(forInline: withXattrs)
        claimSlots(n, need)
        let capacity = InodeSlots.capacity(nslots: need)
        area.replaceSubrange((capacity - x.count)..<capacity, with: x)
        rec.xattrLen = UInt16(x.count)
      } else {
        let nid = alloc()
        let loader = BTreeBulkLoader(
          magic: Magic.xattrNode, ownerIno: ino, cpVer: cpVer, keyWidth: 8)
        nodes.append(
          PendingNode(
            nid: nid, bytes: loader.block(nid: nid, level: 0, count: n.xattrs.count, body: x)))
        rec.flags |= InodeFlag.xattrNode
        rec.xattrNid = nid
      }
    }
    for node in nodes {
      let a = try allocate(.node)
      var b = node.bytes
      seal(&b, addr: a)
      try writeDeviceBlock(a, b)
      let old = natLookup(head, node.nid)
      if old != 0 { clearLive(head, old) }
      setNAT(head, node.nid, a)
      setLive(head, a)
      setSSA(a, owner: node.nid, kind: SSAKind.node, index: 0, crc: 0)
    }
    for nid in reuse { releaseNid(nid) }
    n.nodeNids = used
    shrinkSlots(n, to: need)
    rec.nslots = n.rec.nslots
    rec.inlineArea = Array(area[0..<rec.inlineCapacity])
    n.rec = rec
    return rec.encode(checksum: checksum)
  }

  /// NAT size follows next_free_nid; changes go to the journal while it has room, else into the
  /// NAT blocks.
  func prepareNAT() {
    let nblocks = Self.natBlockCount(nextFreeNid)
    for h in 0..<heads.count {
      if nat[h].count < nblocks * RoseLayout.addressesPerBlock {
        nat[h] += [UInt32](
          repeating: 0, count: nblocks * RoseLayout.addressesPerBlock - nat[h].count)
      }
      if natFiles[h].nblocks != nblocks {
        let oldDepth = natFiles[h].depth
        natFiles[h].leaves += [UInt32](repeating: 0, count: nblocks - natFiles[h].nblocks)
        natFiles[h].nblocks = nblocks
        if natFiles[h].depth != oldDepth { natFiles[h].indexStale = true }
      }
    }
    let total = natDiff.reduce(0) { $0 + $1.count }
    if total > Checkpoint.natJournalCapacity {
      for h in 0..<heads.count {
        for nid in natDiff[h].keys {
          natFiles[h].dirty.insert(Int(nid) / RoseLayout.addressesPerBlock)
        }
        natDiff[h] = [:]
      }
    }
  }

  /// Gives every changed meta-file block a new address, until writing them changes nothing more
  /// (a new block changes the bitmaps and the SSA, whose blocks are meta-file blocks too); then
  /// writes them all with their final contents.
  func writeMetaFiles(cpVer: UInt64) throws(EngineError) {
    var rounds = 0
    while true {
      rounds += 1
      if rounds > 64 { throw EngineError.io("checkpoint: meta-files do not settle") }
      var progress = false
      for k in metaKeys {
        guard let f = meta(k) else { continue }
        for i in f.dirty.subtracting(f.relocated).sorted() {
          if f.leaves[i] == 0 && metaLeafIsZero(k, i) {
            mutateMeta(k) { $0.dirty.remove(i) }
            continue
          }
          try relocateLeaf(k, i)
          progress = true
        }
        if meta(k)?.indexStale ?? false {
          try relocateIndex(k)
          progress = true
        }
      }
      for g in 0..<heads.count {
        guard let s = vbmSameAs[g], vbm[g] != vbm[s] else { continue }
        materializeVBM(g)
        progress = true
      }
      if !progress { break }
    }
    for k in metaKeys {
      guard let f = meta(k) else { continue }
      for i in f.relocated.sorted() {
        var b = metaLeafBytes(k, i, cpVer: cpVer)
        seal(&b, addr: f.leaves[i])
        try writeDeviceBlock(f.leaves[i], b)
      }
      if !f.newIndexAddrs.isEmpty {
        var pool = f.newIndexAddrs
        let t = MapTree.build(nblocks: f.nblocks, leafAddrs: f.leaves) { pool.removeFirst() }
        for ix in t.index {
          var body: [UInt8] = []
          for c in ix.children { appendLE(&body, c) }
          var b = headerBlock(
            magic: Magic.mapIndex, cpVer: cpVer, owner: ix.index,
            count: ix.children.filter { $0 != 0 }.count, level: ix.level, subtype: metaType(k),
            aux: UInt32(metaHead(k)), body: body)
          seal(&b, addr: ix.addr)
          try writeDeviceBlock(ix.addr, b)
        }
      }
      mutateMeta(k) {
        $0.dirty = []
        $0.relocated = []
        $0.newIndexAddrs = []
        $0.indexStale = false
      }
    }
  }

  func relocateLeaf(_ k: MetaKey, _ i: Int) throws(EngineError) {
    guard let f = meta(k) else { return }
    let old = f.leaves[i]
    let a = try allocate(.node)
    mutateMeta(k) {
      $0.leaves[i] = a
      $0.relocated.insert(i)
      $0.indexStale = true
    }
    let owners = metaOwners(k)
    for o in owners { setLive(o, a) }
    setSSA(a, owner: metaOwnerField(k, level: 0), kind: SSAKind.meta, index: UInt32(i), crc: 0)
    guard old != 0 else { return }
    for o in owners { clearLive(o, old) }
    // A NAT block shared with another head: its SSA entry must name a head that still uses it.
    if case .nat(let h) = k {
      for g in 0..<heads.count where g != h && natFiles[g].leaves.contains(old) {
        if ssaEntry(old).owner >> 8 & 0xFF == UInt32(h) {
          setSSA(
            old, owner: UInt32(MetaType.nat) | UInt32(g) << 8, kind: SSAKind.meta,
            index: UInt32(i), crc: 0)
        }
        break
      }
    }
  }

  func relocateIndex(_ k: MetaKey) throws(EngineError) {
    guard let f = meta(k) else { return }
    var count = 0
    _ = MapTree.build(nblocks: f.nblocks, leafAddrs: f.leaves) {
      count += 1
      return 1
    }
    var addrs: [UInt32] = []
    for _ in 0..<count { addrs.append(try allocate(.node)) }
    var pool = addrs
    let t = MapTree.build(nblocks: f.nblocks, leafAddrs: f.leaves) { pool.removeFirst() }
    let old = f.index
    let owners = metaOwners(k)
    mutateMeta(k) {
      $0.index = t.index.map { ($0.level, $0.index, $0.addr) }
      $0.newIndexAddrs = addrs
      $0.indexStale = false
    }
    for ix in t.index {
      for o in owners { setLive(o, ix.addr) }
      setSSA(
        ix.addr, owner: metaOwnerField(k, level: ix.level), kind: SSAKind.meta, index: ix.index,
        crc: 0)
    }
    let oldAddrs = Set(old.map { $0.addr })
    for a in oldAddrs { for o in owners { clearLive(o, a) } }
    // A head that shared these index blocks (a snapshot) now needs its own, with its own aux.
    if case .nat(let h) = k {
      for g in 0..<heads.count where g != h {
        if natFiles[g].index.contains(where: { oldAddrs.contains($0.addr) }) {
          natFiles[g].indexStale = true
        }
      }
    }
  }

  /// A VBM_SAME_AS head whose bitmap now differs from its source's gets a bitmap of its own.
  func materializeVBM(_ g: Int) {
    guard let s = vbmSameAs[g], let src = vbmFiles[s] else { return }
    vbmSameAs[g] = nil
    for a in src.allAddresses { clearLive(g, a) }
    let count = (mainBlocks + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock
    var f = EngineMetaFile(
      type: MetaType.vbm, head: g, nblocks: count, leaves: [UInt32](repeating: 0, count: count))
    f.dirty = Set(0..<count)
    f.indexStale = true
    vbmFiles[g] = f
  }

  func metaLeafBytes(_ k: MetaKey, _ i: Int, cpVer: UInt64) -> [UInt8] {
    switch k {
    case .nat(let h):
      let per = RoseLayout.addressesPerBlock
      var body: [UInt8] = []
      body.reserveCapacity(per * 4)
      var count = 0
      for j in 0..<per {
        let v = i * per + j < nat[h].count ? nat[h][i * per + j] : 0
        if v != 0 { count += 1 }
        appendLE(&body, v)
      }
      return headerBlock(
        magic: Magic.nat, cpVer: cpVer, owner: UInt32(i), count: count, body: body)
    case .vbm(let h):
      let bytesPer = RoseLayout.bitsPerVBMBlock / 8
      var body = [UInt8](repeating: 0, count: bytesPer)
      for j in 0..<bytesPer { body[j] = vbm[h].byte(i * bytesPer + j) }
      return headerBlock(
        magic: Magic.vbm, cpVer: cpVer, owner: UInt32(i), count: 0, aux: UInt32(h), body: body)
    case .ssa:
      let body =
        ssaBodies[i] ?? [UInt8](repeating: 0, count: RoseLayout.blockSize - RoseLayout.headerSize)
      var count = 0
      let r = ByteReader(body)
      for j in 0..<RoseLayout.ssaEntriesPerBlock where r.u32(12 * j + 4) >> 28 != 0 { count += 1 }
      return headerBlock(
        magic: Magic.ssa, cpVer: cpVer, owner: UInt32(i), count: count, body: body)
    }
  }

  func writeCheckpointBlock(cpVer: UInt64, umount: Bool) throws(EngineError) {
    var or = EngineBitmap(count: mainBlocks)
    for b in vbm { for i in 0..<or.words.count { or.words[i] |= b.words[i] } }
    var liveSegs = Set<Int>()
    var lastLive = [Int](repeating: -1, count: segmentCount)
    for (wi, w) in or.words.enumerated() where w != 0 {
      let k = wi * 64 + (63 - w.leadingZeroBitCount)
      liveSegs.insert(k / bps)
      lastLive[k / bps] = max(lastLive[k / bps], k % bps)
    }
    // The block for the first roll-forward record after this checkpoint (FORMAT.md 13.7); none
    // at unmount, nor when the volume has no free block left (fsync then checkpoints).
    let rfNext: UInt32 = umount ? 0 : ((try? allocate(.node)) ?? 0)
    var logs: [LogHead] = []
    for l in 0..<3 {
      let s = logSegment[l]
      let off = min(bps, max(logCursor[l], lastLive[s] + 1))
      logs.append(LogHead(segment: UInt32(s), blockOffset: UInt16(off), type: UInt8(l + 1)))
    }
    let freeSegs = segmentCount - liveSegs.union(logSegment).count
    var newHeads = heads
    for h in 0..<heads.count {
      var hd = heads[h]
      hd.flags = (hd.flags & (Head.active | Head.readOnly)) | Head.active
      if let s = vbmSameAs[h] {
        hd.flags |= Head.vbmSameAs | UInt32(s) << 8
        hd.vbm = MetaRoot()
      } else {
        hd.vbm = vbmFiles[h]?.root() ?? MetaRoot()
      }
      hd.nat = natFiles[h].root()
      hd.validBlocks = UInt64(vbm[h].population)
      hd.inodeCount = UInt32(max(0, inodeCount[h]))
      newHeads[h] = hd
    }
    var journal: [(nid: UInt32, blkaddr: UInt32, head: UInt8)] = []
    for h in 0..<heads.count {
      for nid in natDiff[h].keys.sorted() { journal.append((nid, natDiff[h][nid]!, UInt8(h))) }
    }
    var c = cp
    c.cpVer = cpVer
    c.validBlockCount = UInt64(or.population)
    c.freeSegments = UInt32(freeSegs)
    c.flags = umount ? Checkpoint.flagUmount : 0
    c.nextFreeNid = nextFreeNid
    c.logs = logs
    c.ssa = ssaFile.root()
    c.defaultHead = UInt8(defaultHead)
    c.heads = newHeads
    c.natJournal = journal
    c.rfNext = rfNext
    let bytes = c.encode(checksum: checksum)
    try device.flush()
    let slot = 1 - cpSlot
    try device.writeBlock(sb.cpBlkaddr + UInt32(slot), bytes)
    try device.flush()
    cp = c
    cpSlot = slot
    heads = newHeads
    dataChanged = false
    recomputeCommitted()
    rf = RollForwardState(next: rfNext)
    if rfNext != 0 { protectUntilCheckpoint(rfNext) }
  }
}

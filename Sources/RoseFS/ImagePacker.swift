#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a pack produced: the geometry and where the blocks went, for `convert`'s summary and the disk
/// layer's allocation map.
public struct BuildReport: Sendable, Codable {
  public var volumeBytes: UInt64
  public var blockCount: UInt64
  public var blocksPerSegment: UInt32
  public var segmentCount: UInt32
  public var reserveSegments: UInt32
  /// Blocks from 0 to the end of the last written block (the used, contiguous prefix of the volume).
  public var writtenBlocks: UInt64
  public var dataBlocks: UInt64
  public var releasedBlocks: UInt64
  public var tailBlocks: UInt64
  public var inodePages: UInt64
  public var treeNodes: UInt64
  public var metaBlocks: UInt64
  public var liveBlocks: UInt64
  public var privateBlocksPerHead: [UInt64]
  public var inodeCount: UInt64
  public var uuid: String
  /// Volume block ranges holding something (start, count); everything else is a hole.
  public var usedRanges: [[UInt64]]
}

/// The metadata phase of `ImageBuilder`: inode pages, tree nodes, meta-files, checkpoint, superblocks.
extension ImageBuilder {
  /// Writes everything after the file data. `subvolumes[0]` is head "a"; a later subvolume that shares
  /// `Inode` objects with an earlier one shares their blocks on disk (FORMAT.md section 11).
  public func finish(subvolumes: [Subvolume], defaultSubvolume: Int = 0) throws -> BuildReport {
    guard !subvolumes.isEmpty, subvolumes.count <= RoseLayout.maxHeads else {
      throw RoseFSError.invalidOption(
        "a RoseFS volume has 1 to 4 subvolumes, not \(subvolumes.count)")
    }
    guard defaultSubvolume >= 0 && defaultSubvolume < subvolumes.count else {
      throw RoseFSError.invalidOption("default subvolume \(defaultSubvolume) does not exist")
    }
    for (i, s) in subvolumes.enumerated() {
      guard !s.name.isEmpty, s.name.utf8.count <= 16, s.root.kind == .directory else {
        throw RoseFSError.invalidOption(
          "subvolume name '\(s.name)' must be 1 to 16 bytes with a directory root")
      }
      if subvolumes[..<i].contains(where: { $0.name == s.name }) {
        throw RoseFSError.invalidOption("subvolume '\(s.name)' given twice")
      }
    }
    try tails.flushAll()
    stream.recordsChecksums = false
    let dataEnd = stream.nextBlock

    // 1. Each head's view: reachable inodes, link counts, parents.
    var views: [HeadView] = []
    for s in subvolumes { views.append(try HeadView(root: s.root)) }
    try settleIdentity(subvolumes: subvolumes, views: views, dataEnd: dataEnd)
    let hashSeed = deriveSeed("hash")

    // 2. Distinct inode objects in a deterministic order, and their tree/xattr nodes.
    var objects: [Inode] = []
    var seen = Set<ObjectIdentifier>()
    for v in views {
      for ino in v.order {
        guard let inode = v.inodes[ino] else { continue }
        if seen.insert(ObjectIdentifier(inode)).inserted { objects.append(inode) }
      }
    }
    let firstAuxNid = (allocatedInoLimit + 7) / 8
    var nextNid = firstAuxNid
    var aux: [ObjectIdentifier: AuxNodes] = [:]
    var auxNodes: [PendingNode] = []
    var auxOwner: [ObjectIdentifier] = []
    var auxSharers: [UInt32: [ObjectIdentifier]] = [:]
    // Objects with the same ino (a snapshot's copy of a directory) whose nodes come out identical
    // share them: same nids, written once.
    var auxByIno: [UInt32: [(AuxNodes, [ObjectIdentifier])]] = [:]
    for inode in objects {
      var probe = nextNid
      let a = try buildAux(inode, hashSeed: hashSeed, nextNid: &probe)
      if !a.nodes.isEmpty, let candidates = auxByIno[inode.ino],
        let match = candidates.firstIndex(where: { $0.0.sameNodes(as: a) })
      {
        let shared = candidates[match].0
        aux[ObjectIdentifier(inode)] = shared
        auxByIno[inode.ino]?[match].1.append(ObjectIdentifier(inode))
        for n in shared.nodes { auxSharers[n.nid, default: []].append(ObjectIdentifier(inode)) }
        continue
      }
      nextNid = probe
      aux[ObjectIdentifier(inode)] = a
      auxByIno[inode.ino, default: []].append((a, [ObjectIdentifier(inode)]))
      for n in a.nodes {
        auxNodes.append(n)
        auxOwner.append(ObjectIdentifier(inode))
      }
    }
    let nextFreeNid = nextNid
    var nat = [[UInt32]](
      repeating: [UInt32](repeating: 0, count: Int(nextFreeNid)), count: views.count)

    // 3. Inode pages, per nid; a page identical in several heads is written once.
    var nodeRuns: [OwnerRun] = []
    var inodePages: UInt64 = 0
    var slot = [UInt8](repeating: 0, count: RoseLayout.inodeSize)
    let pageCount = firstAuxNid
    for nid in UInt32(1)..<max(pageCount, 1) {
      var versions: [(bytes: [UInt8], addr: UInt32)] = []
      for (h, v) in views.enumerated() {
        var page = [UInt8](repeating: 0, count: RoseLayout.blockSize)
        var any = false
        for s in 0..<RoseLayout.inodesPerPage {
          let ino = nid * 8 + UInt32(s)
          guard let inode = v.inodes[ino], let a = aux[ObjectIdentifier(inode)] else { continue }
          encodeSlot(inode, view: v, aux: a, into: &slot)
          page.replaceSubrange(s * 512..<(s + 1) * 512, with: slot)
          any = true
        }
        guard any else { continue }
        if let same = versions.first(where: { $0.bytes == page }) {
          nat[h][Int(nid)] = same.addr
        } else {
          let addr = try page.withUnsafeBytes { try stream.append($0, dataChecksum: false) }
          versions.append((page, addr))
          nat[h][Int(nid)] = addr
          nodeRuns.append(OwnerRun(start: addr, count: 1, kind: SSAKind.node, owner: nid, index: 0))
          inodePages += 1
        }
      }
    }

    // 4. Tree and xattr nodes, by nid; present in every head that holds their inode.
    for (n, owner) in zip(auxNodes, auxOwner) {
      var bytes = n.bytes
      let addr = stream.nextBlock
      sealHeader(&bytes, blkaddr: addr)
      _ = try bytes.withUnsafeBytes { try stream.append($0, dataChecksum: false) }
      let owners = [owner] + (auxSharers[n.nid] ?? [])
      for (h, v) in views.enumerated() where owners.contains(where: { v.objects.contains($0) }) {
        nat[h][Int(n.nid)] = addr
      }
      nodeRuns.append(OwnerRun(start: addr, count: 1, kind: SSAKind.node, owner: n.nid, index: 0))
    }
    let nodesEnd = stream.nextBlock

    // 5. Geometry, then the meta-files placed after the nodes.
    let natLeafCount =
      (Int(nextFreeNid) + RoseLayout.addressesPerBlock - 1) / RoseLayout.addressesPerBlock
    var natShared = [Bool](repeating: false, count: views.count)
    for h in 1..<max(views.count, 1) where nat[h] == nat[0] { natShared[h] = true }
    let geometry = try chooseGeometry(
      usedBeforeMeta: nodesEnd, natLeafCount: natLeafCount, heads: views.count,
      ownNATHeads: natShared.filter { !$0 }.count)

    var metaRuns: [OwnerRun] = []
    var metaWriter = MetaFileWriter(builder: self, cpVer: cpVer)
    var natRoots = [MetaRoot](repeating: MetaRoot(), count: views.count)
    var natBlockAddrs = [[UInt32]](repeating: [], count: views.count)
    for h in 0..<views.count {
      if natShared[h] {
        natRoots[h] = natRoots[0]
        natBlockAddrs[h] = natBlockAddrs[0]
        continue
      }
      var leaves: [(index: Int, body: [UInt8])] = []
      for i in 0..<natLeafCount {
        let slice = nat[h][
          (i * RoseLayout.addressesPerBlock)..<min(
            (i + 1) * RoseLayout.addressesPerBlock, nat[h].count)]
        var body: [UInt8] = []
        body.reserveCapacity(RoseLayout.blockSize - RoseLayout.headerSize)
        for a in slice { appendLE(&body, a) }
        leaves.append((i, body))
      }
      // Leaves identical to head 0's are shared: same address in both maps.
      let sharedFrom: [UInt32]? = h > 0 ? natBlockAddrs[0] : nil
      let (root, addrs) = try metaWriter.writeMetaFile(
        type: MetaType.nat, head: h, nblocks: natLeafCount, leaves: leaves, magic: Magic.nat,
        countNonZero: true,
        reuse: sharedFrom.map { addrsA in
          { i, body in
            let lo = i * RoseLayout.addressesPerBlock
            let hi = min(lo + RoseLayout.addressesPerBlock, nat[0].count)
            return nat[0][lo..<hi].elementsEqual(nat[h][lo..<hi]) ? addrsA[i] : nil
          }
        }, runs: &metaRuns)
      natRoots[h] = root
      natBlockAddrs[h] = addrs
    }

    // Live sets (without the VBM blocks, which come next).
    let dataRuns = dataOwnerRuns(objects)
    var live: [[(UInt32, UInt32)]] = []
    for (h, v) in views.enumerated() {
      var r: [(UInt32, UInt32)] = []
      for inode in v.objects.compactMap({ v.objectByID[$0] }) {
        for e in inode.content.extents where inode.content.inline == nil {
          r.append((e.physical, e.count))
        }
        if let t = inode.content.tail, inode.content.inline == nil {
          r.append((tails.resolve(t.block), 1))
        }
      }
      for a in nat[h] where a != 0 { r.append((a, 1)) }
      for a in natBlockAddrs[natShared[h] ? 0 : h] { r.append((a, 1)) }
      live.append(mergeRanges(r))
    }
    var vbmSameAs = [Int?](repeating: nil, count: views.count)
    for h in 1..<max(views.count, 1) {
      if let g = (0..<h).first(where: { live[$0] == live[h] && vbmSameAs[$0] == nil }) {
        vbmSameAs[h] = g
      }
    }
    // VBM and SSA blocks: addresses are planned before their contents so that the bitmaps include them.
    let mainBlocks = Int(geometry.segmentCount) << Int(geometry.logBPS)
    let vbmCount = (mainBlocks + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock
    let ssaCount = (mainBlocks + RoseLayout.ssaEntriesPerBlock - 1) / RoseLayout.ssaEntriesPerBlock
    let ownVBM = (0..<views.count).filter { vbmSameAs[$0] == nil }
    let plan = MetaPlan.make(
      start: stream.nextBlock, ownVBMHeads: ownVBM, vbmCount: vbmCount, ssaCount: ssaCount,
      mainStart: RoseLayout.mainStart)
    for p in plan.blocks {
      metaRuns.append(
        OwnerRun(start: p.addr, count: 1, kind: SSAKind.meta, owner: p.ownerField, index: p.index))
    }
    for h in 0..<views.count {
      let source = vbmSameAs[h] ?? h
      var r = live[h]
      for p in plan.blocks
      where p.type == MetaType.ssa || (p.type == MetaType.vbm && p.head == source) {
        r.append((p.addr, 1))
      }
      live[h] = mergeRanges(r)
    }
    let usedEnd = plan.end
    guard UInt64(usedEnd) <= UInt64(RoseLayout.mainStart) + UInt64(mainBlocks) else {
      throw RoseFSError.volumeTooSmall(
        neededBytes: UInt64(usedEnd) << RoseLayout.blockShift, haveBytes: geometry.blockCount << 12)
    }
    // Write VBM content and index blocks, then SSA, in plan order.
    var allRuns = nodeRuns + metaRuns + dataRuns
    allRuns.sort { $0.start < $1.start }
    let tailRuns = tails.addresses.map {
      OwnerRun(start: $0, count: 1, kind: SSAKind.tail, owner: 0, index: 0)
    }
    let liveUnion = mergeRanges(live.flatMap { $0 })
    var ssaRuns = (allRuns + tailRuns).filter { run in
      rangeIntersects(liveUnion, run.start, run.count)
    }
    ssaRuns.sort { ($0.start, $0.count) < ($1.start, $1.count) }
    // A file cloned into another head (same ino, same extents) yields the same run twice: keep one.
    ssaRuns = ssaRuns.enumerated().compactMap { i, r in
      i > 0 && ssaRuns[i - 1].start == r.start && ssaRuns[i - 1].count == r.count
        && ssaRuns[i - 1].owner == r.owner && ssaRuns[i - 1].kind == r.kind ? nil : r
    }
    try stream.crcSpool.rewindForReading()
    var vbmRoots = [MetaRoot](repeating: MetaRoot(), count: views.count)
    var ssaRoot = MetaRoot()
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
        throw RoseFSError.corrupt("internal: meta block planned at \(p.addr), written at \(a)")
      }
    }
    for h in ownVBM { vbmRoots[h] = plan.root(type: MetaType.vbm, head: h) }
    ssaRoot = plan.root(type: MetaType.ssa, head: 0)
    try stream.flush()

    // 6. Checkpoint and superblocks.
    let bps = UInt32(1) << geometry.logBPS
    let usedSegments = (usedEnd - RoseLayout.mainStart + bps - 1) / bps
    var heads: [Head] = []
    for (h, s) in subvolumes.enumerated() {
      var flags = Head.active
      if let g = vbmSameAs[h] { flags |= Head.vbmSameAs | UInt32(g) << 8 }
      heads.append(
        Head(
          flags: flags, rootIno: s.root.ino, createdCpVer: cpVer,
          validBlocks: live[h].reduce(0) { $0 + UInt64($1.1) },
          inodeCount: UInt32(views[h].inodes.count),
          parentHead: h > 0 && !views[h].objects.isDisjoint(with: views[0].objects)
            ? 0 : 0xFFFF_FFFF,
          name: Array(s.name.utf8), nat: natRoots[h],
          vbm: vbmRoots[h]))
    }
    let validCount = liveUnion.reduce(0) { $0 + UInt64($1.1) }
    let logs = (0..<3).map { i in
      LogHead(segment: usedSegments + UInt32(i), blockOffset: 0, type: UInt8(i + 1))
    }
    let cp = Checkpoint(
      cpVer: cpVer,
      userBlockCount: UInt64(geometry.segmentCount - geometry.rsvSegments) * UInt64(bps)
        - UInt64(options.overprovisionBlocks),
      validBlockCount: validCount,
      freeSegments: freeSegments(live: liveUnion, geometry: geometry, logs: logs),
      flags: Checkpoint.flagUmount | Checkpoint.flagFresh, nextFreeNid: nextFreeNid, logs: logs,
      ssa: ssaRoot, defaultHead: UInt8(defaultSubvolume), heads: heads)
    let sb = Superblock(
      featureIncompat: Feature.incompatKnown, featureRoCompat: Feature.roCompatDataChecksum,
      logBlocksPerSegment: geometry.logBPS, blockCount: geometry.blockCount,
      segmentCount: geometry.segmentCount, rsvSegments: geometry.rsvSegments,
      opBlocks: options.overprovisionBlocks, uuid: uuid,
      label: Array(options.label.utf8.prefix(32)),
      hashSeed: hashSeed, tailMax: UInt32(options.tailMax), mkfsTime: options.sourceDateEpoch)
    var head = [UInt8](repeating: 0, count: Int(RoseLayout.mainStart) * RoseLayout.blockSize)
    let sbBytes = sb.encode(checksum: checksum)
    head.replaceSubrange(1024..<1024 + 256, with: sbBytes)
    head.replaceSubrange(4096 + 1024..<4096 + 1024 + 256, with: sbBytes)
    head.replaceSubrange(8192..<12288, with: cp.encode(checksum: checksum))
    try image.write(head, atByte: 0)
    let volumeBytes = geometry.blockCount << RoseLayout.blockShift
    if image.fileSize < image.baseOffset + volumeBytes {
      guard ftruncate(image.fd, off_t(image.baseOffset + volumeBytes)) == 0 else {
        throw RoseFSError.io(path: image.path, operation: "truncate", errno: errno)
      }
    }

    let released = data.deadRanges.reduce(UInt64(0)) { $0 + UInt64($1.1) }
    var used: [[UInt64]] = [[0, UInt64(RoseLayout.mainStart)]]
    for r in liveUnion { used.append([UInt64(r.0), UInt64(r.1)]) }
    let dataBlockCount = dataRuns.reduce(UInt64(0)) { $0 + UInt64($1.count) }
    return BuildReport(
      volumeBytes: volumeBytes, blockCount: geometry.blockCount, blocksPerSegment: bps,
      segmentCount: geometry.segmentCount, reserveSegments: geometry.rsvSegments,
      writtenBlocks: UInt64(usedEnd), dataBlocks: dataBlockCount, releasedBlocks: released,
      tailBlocks: UInt64(tails.addresses.count), inodePages: inodePages,
      treeNodes: UInt64(auxNodes.count), metaBlocks: UInt64(metaRuns.count),
      liveBlocks: validCount,
      privateBlocksPerHead: live.indices.map { h in
        let others = mergeRanges(live.indices.filter { $0 != h }.flatMap { live[$0] })
        return live[h].reduce(0) { $0 + UInt64($1.1) } - UInt64(rangeOverlapCount(live[h], others))
      },
      inodeCount: UInt64(Set(views.flatMap { $0.inodes.keys }).count),
      uuid: uuidString(uuid), usedRanges: used)
  }

  /// Segments with no live block in any head, not counting the open log segments (FORMAT.md 4).
  func freeSegments(live: [(UInt32, UInt32)], geometry: Geometry, logs: [LogHead]) -> UInt32 {
    var busy = Set<UInt32>()
    let shift = UInt32(geometry.logBPS)
    for (s, c) in live where s >= RoseLayout.mainStart {
      let first = (s - RoseLayout.mainStart) >> shift
      let last = (s + c - 1 - RoseLayout.mainStart) >> shift
      for seg in first...last { busy.insert(seg) }
    }
    for l in logs { busy.insert(l.segment) }
    return geometry.segmentCount - UInt32(busy.count)
  }

  func deriveSeed(_ purpose: String) -> [UInt8] {
    var out: [UInt8] = []
    for i in 0..<4 {
      let c = crc32c(uuid + Array(purpose.utf8) + [UInt8(i)])
      appendLE(&out, c)
    }
    return out
  }

  /// Fills in `blkaddr` and the checksum of a block that starts with a block header.
  func sealHeader(_ bytes: inout [UInt8], blkaddr: UInt32) {
    bytes.withUnsafeMutableBytes { buf in
      buf.storeBytes(
        of: blkaddr.littleEndian, toByteOffset: BlockHeader.Offset.blkaddr, as: UInt32.self)
      let crc = checksum.checksum(
        UnsafeRawBufferPointer(buf), zeroingFieldAt: BlockHeader.crcOffset)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: BlockHeader.crcOffset, as: UInt32.self)
    }
  }

  func writeHeader(
    _ bytes: inout [UInt8], magic: UInt32, addr: UInt32, owner: UInt32, count: UInt16, level: UInt8,
    subtype: UInt8, aux: UInt32
  ) {
    bytes.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      BlockHeader(
        magic: magic, cpVer: cpVer, blkaddr: addr, owner: owner, count: count, level: level,
        subtype: subtype, aux: aux
      ).encode(into: &w)
    }
  }

  // MARK: - Geometry

  struct Geometry {
    var logBPS: UInt8
    var segmentCount: UInt32
    var rsvSegments: UInt32
    var blockCount: UInt64
  }

  static func logBlocksPerSegment(volumeBytes: UInt64) -> UInt8 {
    switch volumeBytes {
    case ...(256 << 20): 6
    case ...(2 << 30): 7
    case ...(64 << 30): 8
    default: 9
    }
  }

  /// Picks the volume geometry: from `--size`, or the smallest that holds everything written plus the
  /// meta-files (whose size depends on the geometry, hence the fixpoint) plus the reserve.
  func chooseGeometry(usedBeforeMeta: UInt32, natLeafCount: Int, heads: Int, ownNATHeads: Int)
    throws
    -> Geometry
  {
    let rsv = UInt32(RoseLayout.nrLogs + 2)
    let op = UInt64(options.overprovisionBlocks)
    func metaEstimate(mainBlocks: Int, usedEnd: UInt64) -> UInt64 {
      let usedMain = Int(usedEnd) - Int(RoseLayout.mainStart)
      let natBlocks = ownNATHeads * (natLeafCount + indexBlockEstimate(natLeafCount))
      let vbmN = (mainBlocks + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock
      let vbmUsed = (usedMain + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock
      let ssaN = (mainBlocks + RoseLayout.ssaEntriesPerBlock - 1) / RoseLayout.ssaEntriesPerBlock
      let ssaUsed = (usedMain + RoseLayout.ssaEntriesPerBlock - 1) / RoseLayout.ssaEntriesPerBlock
      let vbm = heads * (vbmUsed + MetaPlan.indexCount(nblocks: vbmN, used: vbmUsed))
      let ssa = ssaUsed + MetaPlan.indexCount(nblocks: ssaN, used: ssaUsed)
      return UInt64(natBlocks + vbm + ssa)
    }
    if let size = options.size {
      let blockCount = size >> RoseLayout.blockShift
      let log = Self.logBlocksPerSegment(volumeBytes: size)
      let segs = UInt32((blockCount - UInt64(RoseLayout.mainStart)) >> UInt64(log))
      let mainBlocks = Int(segs) << Int(log)
      var end = UInt64(usedBeforeMeta)
      for _ in 0..<8 {
        end = UInt64(usedBeforeMeta) + metaEstimate(mainBlocks: mainBlocks, usedEnd: end)
      }
      let capacity = segs > rsv ? (UInt64(segs - rsv) << UInt64(log)) : 0
      let need = end - UInt64(RoseLayout.mainStart) + op
      if need > capacity {
        let bps = UInt64(1) << UInt64(log)
        let segNeed = (need + bps - 1) / bps + UInt64(rsv)
        let needBytes = (UInt64(RoseLayout.mainStart) + segNeed * bps) << RoseLayout.blockShift
        throw RoseFSError.volumeTooSmall(neededBytes: needBytes, haveBytes: size)
      }
      return Geometry(logBPS: log, segmentCount: segs, rsvSegments: rsv, blockCount: blockCount)
    }
    var volume = RoseLayout.minVolumeBytes
    for _ in 0..<16 {
      let log = Self.logBlocksPerSegment(volumeBytes: volume)
      let bps = UInt64(1) << UInt64(log)
      var segs =
        UInt64((volume >> RoseLayout.blockShift) - UInt64(RoseLayout.mainStart)) >> UInt64(log)
      var end = UInt64(usedBeforeMeta)
      for _ in 0..<8 {
        end = UInt64(usedBeforeMeta) + metaEstimate(mainBlocks: Int(segs * bps), usedEnd: end)
      }
      let need = end - UInt64(RoseLayout.mainStart) + op
      let segNeed = (need + bps - 1) / bps + UInt64(rsv)
      if segNeed <= segs {
        // Fits: shrink to exactly what is needed, but keep the 16 MiB minimum.
        let minSegs =
          ((RoseLayout.minVolumeBytes >> RoseLayout.blockShift) - UInt64(RoseLayout.mainStart) + bps
            - 1) / bps
        segs = max(segNeed, minSegs)
        let blocks = UInt64(RoseLayout.mainStart) + segs * bps
        if Self.logBlocksPerSegment(volumeBytes: blocks << RoseLayout.blockShift) == log {
          return Geometry(
            logBPS: log, segmentCount: UInt32(segs), rsvSegments: rsv, blockCount: blocks)
        }
      }
      volume = max(
        volume * 2, (UInt64(RoseLayout.mainStart) + segNeed * bps) << RoseLayout.blockShift)
      if volume > (UInt64(UInt32.max) << RoseLayout.blockShift) {
        throw RoseFSError.volumeTooLarge(bytes: volume)
      }
    }
    throw RoseFSError.volumeTooLarge(bytes: volume)
  }

  func indexBlockEstimate(_ n: Int) -> Int { MetaPlan.indexCount(nblocks: n, used: n) }

  // MARK: - Slots and aux nodes

  struct AuxNodes {
    var nodes: [PendingNode] = []
    var inline: [UInt8] = []
    var flags: UInt16 = 0
    var nitems: UInt32 = 0
    var treeRoot: UInt32 = 0
    var treeDepth: UInt8 = 0
    var xattrInline: [UInt8] = []
    var xattrNid: UInt32 = 0
    var size: UInt64 = 0

    /// Same nodes apart from nid numbering: compare bodies with the header's owner field masked.
    func sameNodes(as other: AuxNodes) -> Bool {
      guard nodes.count == other.nodes.count, inline == other.inline, flags == other.flags,
        xattrInline == other.xattrInline, treeDepth == other.treeDepth
      else { return false }
      let base = nodes.first?.nid ?? 0
      let otherBase = other.nodes.first?.nid ?? 0
      for (a, b) in zip(nodes, other.nodes) {
        guard a.nid - base == b.nid - otherBase else { return false }
        if a.bytes[0x18...] != b.bytes[0x18...]
          && !sameInteriorModuloNids(a.bytes, b.bytes, shift: Int64(base) - Int64(otherBase))
        {
          return false
        }
      }
      return true
    }

    /// Interior nodes hold child nids, which differ by the numbering shift between the two sets.
    private func sameInteriorModuloNids(_ a: [UInt8], _ b: [UInt8], shift: Int64) -> Bool {
      let ra = ByteReader(a)
      let rb = ByteReader(b)
      guard ra.u8(0x1A) > 0, ra.u8(0x1A) == rb.u8(0x1A), ra.u16(0x18) == rb.u16(0x18) else {
        return false
      }
      let width = ra.u32(0) == Magic.dirNode ? 12 : 8
      let keyWidth = width - 4
      for i in 0..<Int(ra.u16(0x18)) {
        let o = 0x20 + i * width
        guard ra.slice(o, keyWidth) == rb.slice(o, keyWidth),
          Int64(ra.u32(o + keyWidth)) - Int64(rb.u32(o + keyWidth)) == shift
        else { return false }
      }
      return true
    }
  }

  /// Decides the storage form of an inode's content and xattrs; builds its tree and xattr nodes.
  func buildAux(_ inode: Inode, hashSeed: [UInt8], nextNid: inout UInt32) throws -> AuxNodes {
    var a = AuxNodes()
    var localNid = nextNid
    let alloc = { () -> UInt32 in
      localNid += 1
      return localNid - 1
    }
    switch inode.kind {
    case .directory:
      let children = inode.children.map { ($0.key, $0.value.ino, $0.value.kind.rawValue) }
      let entries = sortedDirents(children, seed: hashSeed)
      let inlineBytes = encodeInlineDirents(entries)
      a.nitems = UInt32(entries.count)
      if inlineBytes.count <= RoseLayout.inlineCapacity {
        a.flags = InodeFlag.inlineDentry
        a.inline = inlineBytes
        a.size = UInt64(inlineBytes.count)
      } else {
        let leaves = directoryLeaves(entries)
        let loader = BTreeBulkLoader(
          magic: Magic.dirNode, ownerIno: inode.ino, cpVer: cpVer, keyWidth: 8)
        let t = loader.build(leaves: leaves, allocateNid: alloc)
        a.nodes = t.nodes
        a.treeRoot = t.root
        a.treeDepth = t.depth
        a.flags = InodeFlag.dirTree
        a.size = UInt64(leaves.count) * UInt64(RoseLayout.blockSize)
      }
    case .regular, .symlink:
      let c = inode.content
      a.size = c.size
      if c.size > RoseLayout.maxFileSize {
        throw RoseFSError.fileTooLarge(path: "inode \(inode.ino)", size: c.size)
      }
      if let bytes = c.inline {
        a.flags = InodeFlag.inlineData
        a.inline = bytes
      } else {
        let ext = encodeExtents(c.extents)
        a.nitems = UInt32(c.extents.count)
        if ext.count <= RoseLayout.inlineCapacity {
          a.flags = InodeFlag.extents
          a.inline = ext
        } else {
          let loader = BTreeBulkLoader(
            magic: Magic.extentNode, ownerIno: inode.ino, cpVer: cpVer, keyWidth: 4)
          let t = loader.build(leaves: extentLeaves(c.extents), allocateNid: alloc)
          a.nodes = t.nodes
          a.treeRoot = t.root
          a.treeDepth = t.depth
          a.flags = InodeFlag.extentTree
        }
        if c.tail != nil { a.flags |= InodeFlag.tail }
      }
    default:
      break
    }
    guard a.inline.count <= RoseLayout.inlineCapacity else {
      throw RoseFSError.invalidOption(
        "internal: inode \(inode.ino) (\(inode.kind), \(a.size) bytes) has \(a.inline.count) inline bytes"
      )
    }
    if !inode.xattrs.isEmpty {
      let x = try encodeXattrRecords(inode.xattrs, path: "inode \(inode.ino)")
      if x.count <= RoseLayout.inlineCapacity - a.inline.count {
        a.xattrInline = x
      } else if x.count <= RoseLayout.maxXattrBytes {
        let nid = alloc()
        let loader = BTreeBulkLoader(
          magic: Magic.xattrNode, ownerIno: inode.ino, cpVer: cpVer, keyWidth: 8)
        a.nodes.append(
          PendingNode(
            nid: nid, bytes: loader.block(nid: nid, level: 0, count: inode.xattrs.count, body: x)))
        a.xattrNid = nid
        a.flags |= InodeFlag.xattrNode
      } else {
        throw RoseFSError.xattrsTooLarge(path: "inode \(inode.ino)", bytes: x.count)
      }
    }
    nextNid = localNid
    return a
  }

  /// The 512 bytes of an inode's slot in one head (FORMAT.md section 7).
  func encodeSlot(_ inode: Inode, view: HeadView, aux a: AuxNodes, into slot: inout [UInt8]) {
    slotRecord(inode, view: view, aux: a).encode(into: &slot, checksum: checksum)
  }

  /// The slot of `inode` as the packer fills it: crtime is ctime, generation 0, and the `i_u` area
  /// holds the content form's bytes from its start and the inline xattrs at its end.
  func slotRecord(_ inode: Inode, view: HeadView, aux a: AuxNodes) -> InodeRecord {
    let isDevice = inode.kind == .characterDevice || inode.kind == .blockDevice
    let isFile = inode.kind == .regular || inode.kind == .symlink
    var area = [UInt8](repeating: 0, count: RoseLayout.inlineCapacity)
    area.replaceSubrange(0..<a.inline.count, with: a.inline)
    area.replaceSubrange(
      (RoseLayout.inlineCapacity - a.xattrInline.count)..<RoseLayout.inlineCapacity,
      with: a.xattrInline)
    let tail = a.flags & InodeFlag.tail != 0 ? inode.content.tail : nil
    return InodeRecord(
      ino: inode.ino, mode: inode.mode, flags: a.flags, uid: inode.uid, gid: inode.gid,
      nlink: view.nlink[inode.ino] ?? 1, size: a.size,
      blocks: inode.content.inline == nil && isFile ? inode.content.blockCount * 8 : 0,
      atime: inode.atime, mtime: inode.mtime, ctime: inode.ctime, crtime: inode.ctime,
      generation: 0, parent: view.parent[inode.ino] ?? inode.ino, xattrNid: a.xattrNid,
      rdevMajor: isDevice ? inode.rdevMajor : 0, rdevMinor: isDevice ? inode.rdevMinor : 0,
      cpVer: cpVer, tailBlk: tail.map { tails.resolve($0.block) } ?? 0, tailOff: tail?.offset ?? 0,
      tailLen: tail?.length ?? 0, inlineLen: UInt16(a.inline.count),
      xattrLen: UInt16(a.xattrInline.count), nitems: a.nitems, treeRoot: a.treeRoot,
      treeDepth: a.treeDepth, inlineArea: area)
  }

  // MARK: - Owners, bitmaps, summaries

  func dataOwnerRuns(_ objects: [Inode]) -> [OwnerRun] {
    var runs: [OwnerRun] = []
    for inode in objects where inode.content.inline == nil {
      for e in inode.content.extents {
        runs.append(
          OwnerRun(
            start: e.physical, count: e.count, kind: SSAKind.data, owner: inode.ino,
            index: e.logical))
      }
    }
    return runs
  }

  func fillVBM(_ block: inout [UInt8], index: Int, live: [(UInt32, UInt32)]) {
    let first = Int(RoseLayout.mainStart) + index * RoseLayout.bitsPerVBMBlock
    let last = first + RoseLayout.bitsPerVBMBlock
    block.withUnsafeMutableBytes { buf in
      let bits = buf.baseAddress! + RoseLayout.headerSize
      for (s, c) in live {
        let lo = max(Int(s), first)
        let hi = min(Int(s) + Int(c), last)
        if lo >= hi { continue }
        for b in (lo - first)..<(hi - first) {
          bits.storeBytes(
            of: bits.load(fromByteOffset: b >> 3, as: UInt8.self) | UInt8(1 << (b & 7)),
            toByteOffset: b >> 3,
            as: UInt8.self)
        }
      }
    }
  }

  /// Fills SSA content block `index`; returns the number of entries that are not FREE. `spoolPos` walks
  /// the data-phase checksum spool in step with the block addresses.
  func fillSSA(
    _ block: inout [UInt8], index: Int, runs: [OwnerRun], live: [(UInt32, UInt32)], dataEnd: UInt32,
    spoolPos: inout UInt32
  ) -> Int {
    let first = UInt32(Int(RoseLayout.mainStart) + index * RoseLayout.ssaEntriesPerBlock)
    let last = first + UInt32(RoseLayout.ssaEntriesPerBlock)
    var n = 0
    // Binary search the first run ending after `first`.
    var lo = 0
    var hi = runs.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if runs[mid].start + runs[mid].count <= first { lo = mid + 1 } else { hi = mid }
    }
    var crcs = [UInt32](repeating: 0, count: RoseLayout.ssaEntriesPerBlock)
    for i in 0..<RoseLayout.ssaEntriesPerBlock {
      let addr = first + UInt32(i)
      if addr < dataEnd && addr >= spoolPos {
        crcs[i] = stream.crcSpool.next() ^ dataChecksumCorrection
        spoolPos = addr + 1
      }
    }
    block.withUnsafeMutableBytes { buf in
      var r = lo
      while r < runs.count && runs[r].start < last {
        let run = runs[r]
        let s = max(run.start, first)
        let e = min(run.start + run.count, last)
        if s < e {
          for addr in s..<e {
            SSAEntry(
              owner: run.owner, kind: run.kind, index: run.index + (addr - run.start),
              crc: run.kind == SSAKind.data ? crcs[Int(addr - first)] : 0
            ).encode(into: buf, at: RoseLayout.headerSize + Int(addr - first) * SSAEntry.size)
            n += 1
          }
        }
        r += 1
      }
    }
    return n
  }
}

/// SSA entry kinds (FORMAT.md 6.4).
public enum SSAKind {
  public static let free: UInt8 = 0
  public static let data: UInt8 = 1
  public static let node: UInt8 = 2
  public static let tail: UInt8 = 3
  public static let meta: UInt8 = 4
}

/// Meta-file types (SSA META owner and map-index subtype).
public enum MetaType {
  public static let nat: UInt8 = 1
  public static let vbm: UInt8 = 2
  public static let ssa: UInt8 = 3
}

/// Consecutive blocks with one owner: what the SSA says about them.
struct OwnerRun {
  var start: UInt32
  var count: UInt32
  var kind: UInt8
  var owner: UInt32
  var index: UInt32
  var head: Int = -1
  var type: UInt8 = 0
}

/// One head's tree as the packer sees it: reachable inodes by number, link counts, parents.
struct HeadView {
  var inodes: [UInt32: Inode] = [:]
  var order: [UInt32] = []
  var nlink: [UInt32: UInt32] = [:]
  var parent: [UInt32: UInt32] = [:]
  var objects = Set<ObjectIdentifier>()
  var objectByID: [ObjectIdentifier: Inode] = [:]

  init(root: Inode) throws {
    var stack: [Inode] = [root]
    inodes[root.ino] = root
    parent[root.ino] = root.ino
    while let dir = stack.popLast() {
      var subdirs: UInt32 = 0
      for (name, child) in dir.children.sorted(by: { $0.key < $1.key }) {
        if let existing = inodes[child.ino] {
          guard existing === child else {
            throw RoseFSError.invalidOption(
              "internal: two inodes numbered \(child.ino) ('\(name)')")
          }
          guard child.kind != .directory else {
            throw RoseFSError.invalidOption("directory '\(name)' appears twice in the tree")
          }
          nlink[child.ino, default: 1] += 1
          continue
        }
        inodes[child.ino] = child
        parent[child.ino] = dir.ino
        if child.kind == .directory {
          subdirs += 1
          stack.append(child)
        } else {
          nlink[child.ino] = 1
        }
      }
      nlink[dir.ino] = 2 + subdirs
    }
    order = inodes.keys.sorted()
    for inode in inodes.values {
      objects.insert(ObjectIdentifier(inode))
      objectByID[ObjectIdentifier(inode)] = inode
    }
  }
}

func mergeRanges(_ r: [(UInt32, UInt32)]) -> [(UInt32, UInt32)] {
  let sorted = r.filter { $0.1 > 0 }.sorted { $0.0 < $1.0 }
  var out: [(UInt32, UInt32)] = []
  for (s, c) in sorted {
    if let last = out.last, last.0 + last.1 >= s {
      let end = max(last.0 + last.1, s + c)
      out[out.count - 1] = (last.0, end - last.0)
    } else {
      out.append((s, c))
    }
  }
  return out
}

func rangeIntersects(_ ranges: [(UInt32, UInt32)], _ start: UInt32, _ count: UInt32) -> Bool {
  var lo = 0
  var hi = ranges.count
  while lo < hi {
    let mid = (lo + hi) / 2
    if ranges[mid].0 + ranges[mid].1 <= start { lo = mid + 1 } else { hi = mid }
  }
  return lo < ranges.count && ranges[lo].0 < start + count
}

/// Blocks that two sorted, merged range lists have in common (one linear pass over both).
func rangeOverlapCount(_ a: [(UInt32, UInt32)], _ b: [(UInt32, UInt32)]) -> Int {
  var n = 0
  var i = 0
  var j = 0
  while i < a.count && j < b.count {
    let lo = max(a[i].0, b[j].0)
    let aEnd = a[i].0 + a[i].1
    let bEnd = b[j].0 + b[j].1
    if lo < min(aEnd, bEnd) { n += Int(min(aEnd, bEnd) - lo) }
    if aEnd < bEnd { i += 1 } else { j += 1 }
  }
  return n
}

extension Array where Element == (UInt32, UInt32) {
  static func == (a: [(UInt32, UInt32)], b: [(UInt32, UInt32)]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
  }
}

public func uuidString(_ u: [UInt8]) -> String {
  let hex = u.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
  guard hex.count == 32 else { return hex }
  let c = Array(hex)
  return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-"
    + String(c[16..<20]) + "-" + String(c[20..<32])
}

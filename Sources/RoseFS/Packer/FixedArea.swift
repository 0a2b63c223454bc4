#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

extension ImageBuilder {
  /// Packer phase "fixed area" (FORMAT.md sections 2 to 4, 13.1): the heads, the checkpoint in slot 0
  /// (slot 1 zero) and both superblock copies, written last; then the file is sized to the volume.
  /// Returns the checkpoint written.
  func writeFixedArea(
    subvolumes: [Subvolume], defaultSubvolume: Int, views: [HeadView], nat: NATTable,
    natFiles: NATFiles, summary: SummaryFiles, geometry: Geometry, hashSeed: [UInt8]
  ) throws -> Checkpoint {
    let bps = UInt32(1) << geometry.logBPS
    let usedSegments = (summary.usedEnd - RoseLayout.mainStart + bps - 1) / bps
    var heads: [Head] = []
    for (h, s) in subvolumes.enumerated() {
      var flags = Head.active
      if let g = summary.vbmSameAs[h] { flags |= Head.vbmSameAs | UInt32(g) << 8 }
      heads.append(
        Head(
          flags: flags, rootIno: s.root.ino, createdCpVer: cpVer,
          validBlocks: summary.live[h].reduce(0) { $0 + UInt64($1.1) },
          inodeCount: UInt32(views[h].inodes.count),
          parentHead: h > 0 && !(views[h].objects ?? []).isDisjoint(with: views[0].objects ?? [])
            ? 0 : Head.noParent,
          name: Array(s.name.utf8), nat: natFiles.roots[h], vbm: summary.vbmRoots[h]))
    }
    // The three logs open at the first empty segments after everything written (FORMAT.md 13.1).
    let logs = (0..<RoseLayout.nrLogs).map { i in
      LogHead(segment: usedSegments + UInt32(i), blockOffset: 0, type: UInt8(i + 1))
    }
    let cp = Checkpoint(
      cpVer: cpVer,
      userBlockCount: UInt64(geometry.segmentCount - geometry.rsvSegments) * UInt64(bps)
        - UInt64(options.overprovisionBlocks),
      validBlockCount: summary.liveUnion.reduce(0) { $0 + UInt64($1.1) },
      freeSegments: freeSegments(live: summary.liveUnion, geometry: geometry, logs: logs),
      flags: Checkpoint.flagUmount | Checkpoint.flagFresh, nextFreeNid: nat.nextFreeNid,
      logs: logs, ssa: summary.ssaRoot, defaultHead: UInt8(defaultSubvolume), heads: heads)
    let sb = Superblock(
      featureIncompat: Feature.incompatKnown, featureRoCompat: Feature.roCompatDataChecksum,
      logBlocksPerSegment: geometry.logBPS, blockCount: geometry.blockCount,
      segmentCount: geometry.segmentCount, rsvSegments: geometry.rsvSegments,
      opBlocks: options.overprovisionBlocks, uuid: uuid,
      label: Array(options.label.utf8.prefix(32)),
      hashSeed: hashSeed, tailMax: UInt32(options.tailMax), mkfsTime: options.sourceDateEpoch)
    let bs = RoseLayout.blockSize
    var area = [UInt8](repeating: 0, count: Int(RoseLayout.mainStart) * bs)
    let sbBytes = sb.encode(checksum: checksum)
    for offset in RosePartitionType.magicOffsets.map(Int.init) {
      area.replaceSubrange(offset..<offset + Superblock.size, with: sbBytes)
    }
    let slot0 = Int(RoseLayout.checkpointBlock) * bs
    area.replaceSubrange(slot0..<slot0 + bs, with: cp.encode(checksum: checksum))
    try image.write(area, atByte: 0)
    let volumeBytes = geometry.blockCount << RoseLayout.blockShift
    if image.fileSize < image.baseOffset + volumeBytes {
      guard ftruncate(image.fd, off_t(image.baseOffset + volumeBytes)) == 0 else {
        throw RoseFSError.io(path: image.path, operation: "truncate", errno: errno)
      }
    }
    return cp
  }

  /// Packer phase "report": what `convert` prints and the disk layer's allocation map uses.
  func makeReport(
    geometry: Geometry, summary: SummaryFiles, fixed: Checkpoint, views: [HeadView],
    inodePages: UInt64, treeNodes: Int, metaBlocks: Int
  ) -> BuildReport {
    let live = summary.live
    var used: [[UInt64]] = [[0, UInt64(RoseLayout.mainStart)]]
    for r in summary.liveUnion { used.append([UInt64(r.0), UInt64(r.1)]) }
    return BuildReport(
      volumeBytes: geometry.blockCount << RoseLayout.blockShift, blockCount: geometry.blockCount,
      blocksPerSegment: UInt32(1) << geometry.logBPS, segmentCount: geometry.segmentCount,
      reserveSegments: geometry.rsvSegments, writtenBlocks: UInt64(summary.usedEnd),
      dataBlocks: summary.dataRuns.reduce(0) { $0 + UInt64($1.count) },
      releasedBlocks: data.deadRanges.reduce(0) { $0 + UInt64($1.1) },
      tailBlocks: UInt64(tails.addresses.count), inodePages: inodePages,
      treeNodes: UInt64(treeNodes), metaBlocks: UInt64(metaBlocks),
      liveBlocks: fixed.validBlockCount,
      privateBlocksPerHead: live.indices.map { h in
        let others = mergeRanges(live.indices.filter { $0 != h }.flatMap { live[$0] })
        return live[h].reduce(0) { $0 + UInt64($1.1) } - UInt64(rangeOverlapCount(live[h], others))
      },
      inodeCount: Self.distinctInodeNumbers(views),
      uuid: uuidString(uuid), usedRanges: used)
  }
}

extension ImageBuilder {
  /// Inode numbers present in any head.
  static func distinctInodeNumbers(_ views: [HeadView]) -> UInt64 {
    if views.count == 1 { return UInt64(views[0].inodes.count) }
    var seen = Set<UInt32>()
    for v in views { seen.formUnion(v.inodes.keys) }
    return UInt64(seen.count)
  }
}

/// Packer phase "geometry" (FORMAT.md section 2): segment size and count for the volume, from
/// `--size` or the smallest volume that holds what was written plus the meta-files and the reserve.
extension ImageBuilder {
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
        // The shrunk volume may fall in a smaller segment class than `log` (content just under a
        // class boundary, reached from below in coarse steps). Growing further can never give a
        // smaller class, so keep these larger segments (any of 6...9 is valid, FORMAT.md 3)
        // rather than doubling until the volume is too large (1.5 GiB of files failed so).
        return Geometry(
          logBPS: log, segmentCount: UInt32(segs), rsvSegments: rsv, blockCount: blocks)
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
}

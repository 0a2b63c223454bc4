/// Packer phase "bitmaps and summary" helpers (FORMAT.md 6.3 and 6.4): data owners, VBM bits and SSA
/// entries of the blocks written.
extension ImageBuilder {
  func dataOwnerRuns(_ objects: some Sequence<Inode>) -> [OwnerRun] {
    var runs: [OwnerRun] = []
    for inode in objects where !inode.content.isInline {
      for e in inode.content.extents {
        runs.append(
          OwnerRun(
            start: e.physical, count: e.count, kind: SSAKind.data, owner: inode.ino,
            index: e.logical))
      }
    }
    return runs
  }

  /// Tail blocks (FORMAT.md 9.3): `owner` = the lowest inode page (nid) among the inodes whose
  /// fragments a block holds, `index` = the highest minus the lowest.
  func tailOwnerRuns(_ objects: some Sequence<Inode>) -> [OwnerRun] {
    var range: [UInt32: (low: UInt32, high: UInt32)] = [:]
    let perPage = UInt32(RoseLayout.inodesPerPage)
    for inode in objects where !inode.content.isInline {
      guard let t = inode.content.tail else { continue }
      let nid = inode.ino / perPage
      let r = range[t.block] ?? (nid, nid)
      range[t.block] = (min(r.low, nid), max(r.high, nid))
    }
    return range.map { id, r in
      OwnerRun(
        start: tails.resolve(id), count: 1, kind: SSAKind.tail, owner: r.low,
        index: r.high - r.low)
    }
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
              crc: run.kind == SSAKind.data || run.kind == SSAKind.tail
                ? crcs[Int(addr - first)] : 0
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

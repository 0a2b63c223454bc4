#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// fallocate's FALLOC_FL_PUNCH_HOLE and FALLOC_FL_ZERO_RANGE. A punched range reads as zeros: the
// whole blocks it covers leave the file's extents (holes are simply absent, FORMAT.md 9), a block it
// covers in part is written again copy-on-write with that part zeroed (or dropped when nothing else
// in it is non-zero), and the partial last block is zeroed in memory (a hole when all of it is).
// The size never changes. Zeroing a range is punching it and then allocating its holes.

extension RoseEngine {
  /// `fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`: bytes `offset..<offset + length` that
  /// lie inside the file read as zeros after, and the blocks they cover whole are freed.
  public func punchHole(_ ino: UInt32, offset: UInt64, length: UInt64) throws(EngineError) {
    try withLock { () throws(EngineError) in
      try requireWritable()
      let n = try inode(ino)
      if n.kind == .directory { throw EngineError(EISDIR, "ino \(ino) is a directory") }
      guard n.kind == .regular else { throw EngineError(ENODEV, "ino \(ino) is not a file") }
      guard length > 0 else { throw EngineError(EINVAL, "fallocate of 0 bytes") }
      let (sum, overflow) = offset.addingReportingOverflow(length)
      let end = min(overflow ? UInt64.max : sum, n.rec.size)
      guard offset < end else { return }
      // At most two blocks are written again (the first and the last, each covered in part).
      try ensureUserSpace(2)
      dataChanged = true
      try zeroBytes(n, from: offset, to: end)
      let t = now()
      n.rec.mtime = t
      n.rec.ctime = t
      markDirty(n)
      try checkpointIfLarge()
    }
  }

  /// `fallocate(FALLOC_FL_ZERO_RANGE)`: the range reads as zeros and is allocated; without
  /// `keepSize` the file grows to its end.
  public func zeroRange(_ ino: UInt32, offset: UInt64, length: UInt64, keepSize: Bool)
    throws(EngineError)
  {
    try withLock { () throws(EngineError) in
      try punchHole(ino, offset: offset, length: length)
      try fallocate(ino, offset: offset, length: length, keepSize: keepSize)
    }
  }

  /// Makes bytes `from..<to` (inside the size) zeros.
  func zeroBytes(_ n: EngineInode, from: UInt64, to end: UInt64) throws(EngineError) {
    if n.isInlineForm {
      n.inline.replaceSubrange(
        Int(from)..<Int(end), with: repeatElement(0, count: Int(end - from)))
      return
    }
    let bs = UInt64(RoseLayout.blockSize)
    let full = n.rec.size / bs
    var pos = from
    while pos < end {
      let lblk = pos / bs
      let inBlock = Int(pos % bs)
      let stop = min(end, (lblk + 1) * bs)
      let len = Int(stop - pos)
      if lblk < full && len == RoseLayout.blockSize {
        // A run of whole blocks: each stored one is freed. The run may be far longer than the
        // blocks the file has (a sparse file), so the shorter of the two is walked.
        let run = min(end / bs, full) - lblk
        let range = UInt32(lblk)..<UInt32(lblk + run)
        let stored =
          run > UInt64(n.blocks.count)
          ? n.blocks.keys.filter { range.contains($0) } : range.filter { n.blocks[$0] != nil }
        for l in stored {
          if let a = n.blocks.removeValue(forKey: l) { clearLive(head, a) }
        }
        pos = (lblk + run) * bs
        continue
      }
      if lblk < full {
        let l = UInt32(lblk)
        if n.blocks[l] != nil {
          var block = try readLogicalBlock(n, l)
          block.replaceSubrange(inBlock..<inBlock + len, with: repeatElement(0, count: len))
          if block.allSatisfy({ $0 == 0 }) {
            if let a = n.blocks.removeValue(forKey: l) { clearLive(head, a) }
          } else {
            try putBlock(n, l, block)
          }
        }
      } else {
        // The partial last block: zeroed where it lies in the range; all zeros is a hole.
        var p = try partialBytes(n)
        p.replaceSubrange(inBlock..<inBlock + len, with: repeatElement(0, count: len))
        try releasePartial(n)
        n.partial = p.allSatisfy({ $0 == 0 }) ? .hole : .memory(p)
      }
      pos = stop
    }
  }
}

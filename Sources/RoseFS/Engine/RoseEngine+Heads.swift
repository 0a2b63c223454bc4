#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Subvolume heads (FORMAT.md 11): snapshots and the default head.

extension RoseEngine {
  /// Names of the heads, by index.
  public var headNames: [String] {
    lock.lock()
    defer { lock.unlock() }
    return heads.map { $0.nameString }
  }

  /// The name of the head this instance reads and writes.
  public var subvolumeName: String {
    lock.lock()
    defer { lock.unlock() }
    return heads[head].nameString
  }

  /// Makes head `to` a snapshot of head `from` (FORMAT.md 11: the same NAT, VBM_SAME_AS), replacing
  /// it if it exists, creating it otherwise; then checkpoints. When `to` is the head this instance
  /// has open, the instance continues on the snapshot, so a caller can apply a diff through it.
  public func snapshotHead(from: String, to: String) throws(EngineError) {
    try withLock { () throws(EngineError) in
      try requireWritable()
      guard let src = heads.firstIndex(where: { $0.nameString == from }) else {
        throw EngineError.noEntry("no subvolume named \"\(from)\"")
      }
      let nameBytes = Array(to.utf8)
      guard !nameBytes.isEmpty, nameBytes.count <= 16, !nameBytes.contains(0) else {
        throw EngineError(EINVAL, "a subvolume name is 1 to 16 bytes")
      }
      try checkpoint(umount: false)
      if from == to { return }
      var dst: Int
      if let d = heads.firstIndex(where: { $0.nameString == to }) {
        dst = d
        // Heads sharing dst's bitmap keep what they reach: give them their own first.
        for g in 0..<heads.count where vbmSameAs[g] == dst { materializeVBM(g) }
        for k in 0..<mainBlocks where vbm[dst].get(k) { clearLive(dst, mainStart + UInt32(k)) }
      } else {
        guard heads.count < RoseLayout.maxHeads else {
          throw EngineError.noSpace("a RoseFS volume has at most 4 subvolumes")
        }
        dst = heads.count
        heads.append(heads[src])
        nat.append([])
        natDiff.append([:])
        natFiles.append(natFiles[src])
        vbm.append(EngineBitmap(count: mainBlocks))
        vbmFiles.append(nil)
        vbmSameAs.append(nil)
        inodeCount.append(0)
      }
      let source = vbmSameAs[src] ?? src
      var hd = heads[src]
      hd.flags = Head.active
      hd.name = nameBytes
      hd.createdCpVer = cp.cpVer + 1
      hd.parentHead = UInt32(src)
      heads[dst] = hd
      nat[dst] = nat[src]
      natDiff[dst] = natDiff[src]
      natFiles[dst] = natFiles[src]
      natFiles[dst].head = dst
      vbm[dst] = vbm[src]
      vbmFiles[dst] = nil
      vbmSameAs[dst] = source
      inodeCount[dst] = inodeCount[src]
      if dst == head {
        inodes = [:]
        freeInos = []
      }
      try checkpoint(umount: false)
    }
  }

  /// Makes `name` the head mounted when none is named; checkpoints.
  public func setDefaultHead(_ name: String) throws(EngineError) {
    try withLock { () throws(EngineError) in
      try requireWritable()
      guard let h = heads.firstIndex(where: { $0.nameString == name }) else {
        throw EngineError.noEntry("no subvolume named \"\(name)\"")
      }
      defaultHead = h
      try checkpoint(umount: false)
    }
  }
}

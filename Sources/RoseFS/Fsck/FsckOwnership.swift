// FORMAT.md section 14, items 9 and 10: data checksums against the SSA, and every live block's
// SSA entry against its use.

extension FsckRun {
  func ssaEntry(_ a: UInt32) -> SSAEntry? {
    guard UInt64(a) >= mainStart else { return nil }
    let at = SSAEntry.location(ofMainBlock: UInt64(a) - mainStart)
    guard let b = ssaBlocks[UInt32(truncatingIfNeeded: at.block)] else { return nil }
    return SSAEntry.decode(ByteReader(b), at.offset)
  }

  func checkOwnership() {
    var union: [UInt32: [BlockUse]] = [:]
    for h in 0..<nHeads {
      for (a, u) in uses[h] where !(union[a]?.contains(u) ?? false) {
        union[a, default: []].append(u)
      }
    }
    var dataAddrs: [UInt32] = []
    for (a, us) in union {
      guard let e = ssaEntry(a) else {
        problem("block \(a) (\(us[0])) is live but its SSA entry is in a hole")
        continue
      }
      let ok = us.contains { u in
        let x = u.ssa
        switch u {
        case .data: break
        case .tail: return e.kind == SSAKind.tail  // owner, index and crc: item 8
        default: if e.crc != 0 { return false }
        }
        return e.kind == x.kind && e.owner == x.owner && e.index == x.index
      }
      if !ok {
        problem(
          "block \(a): SSA entry (kind \(e.kind), owner \(e.owner), index \(e.index)) does not match its use as \(us.map { $0.description }.joined(separator: " / "))"
        )
      }
      if us.contains(where: { if case .data = $0 { true } else { false } }) { dataAddrs.append(a) }
    }
    if verifyData { checkDataChecksums(dataAddrs.sorted()) }
  }

  /// Item 9: every data block's checksum equals its SSA crc, read in large sequential runs.
  func checkDataChecksums(_ addrs: [UInt32]) {
    let maxRun = 256
    let buffer = UnsafeMutableRawBufferPointer.allocate(
      byteCount: maxRun * RoseLayout.blockSize, alignment: 4096)
    defer { buffer.deallocate() }
    var i = 0
    while i < addrs.count {
      var n = 1
      while i + n < addrs.count, n < maxRun, addrs[i + n] == addrs[i] + UInt32(n) { n += 1 }
      let view = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n * RoseLayout.blockSize])
      do {
        try image.read(into: view, atByte: UInt64(addrs[i]) * UInt64(RoseLayout.blockSize))
        for j in 0..<n {
          let a = addrs[i + j]
          let crc = ck.checksum(
            UnsafeRawBufferPointer(
              rebasing: view[j * RoseLayout.blockSize..<(j + 1) * RoseLayout.blockSize]))
          if let e = ssaEntry(a), e.crc != crc {
            problem("data block \(a): checksum \(hex32(crc)), the SSA records \(hex32(e.crc))")
          }
        }
      } catch { report(error, "data blocks \(addrs[i])..\(addrs[i] + UInt32(n) - 1)") }
      i += n
    }
  }
}

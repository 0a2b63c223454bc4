// FORMAT.md section 14, item 1: the superblocks and the bytes around them.

extension FsckRun {
  func checkSuperblock() -> Bool {
    let size = image.containerSize
    if size < UInt64(RoseLayout.mainStart) * UInt64(RoseLayout.blockSize) {
      problem("image is \(size) bytes, smaller than the 64 KiB fixed area")
    }
    guard let b0 = readBlock(0), let b1 = readBlock(1) else { return false }  // copies 0 and 1
    let sbRange =
      RoseLayout.superblockOffset..<RoseLayout.superblockOffset + RoseLayout.superblockSize
    let raw0 = Array(b0[sbRange])
    var sb: Superblock?
    do { sb = try Superblock.decode(raw0) } catch { report(error, "superblock copy 0 (block 0)") }
    if Array(b1[sbRange]) != raw0 { problem("superblock copy 1 (block 1) differs from copy 0") }
    for (i, b) in [b0, b1].enumerated() {
      requireZero(b, 0..<RoseLayout.superblockOffset, "block \(i) (before the superblock)")
      requireZero(b, sbRange.upperBound..<RoseLayout.blockSize, "block \(i) (after the superblock)")
    }
    if sb == nil {
      sb = try? Superblock.decode(Array(b1[sbRange]))
      guard sb != nil else {
        problem("no valid superblock in block 0 or block 1; nothing more can be checked")
        return false
      }
    } else {
      let fields = Superblock.decodeFields(raw0)
      if fields.featureCompat != 0 {
        problem("superblock: feature_compat \(hex32(fields.featureCompat)) is not 0")
      }
      if fields.featureRoCompat & ~Feature.roCompatKnown != 0 {
        problem("superblock: unknown ro_compat features \(hex32(fields.featureRoCompat))")
      }
      requireReservedZero(raw0, at: 0, Superblock.self, "superblock")
      if let nul = fields.label.firstIndex(of: 0) {
        requireZero(fields.label, nul..<fields.label.count, "superblock label padding")
      }
    }
    guard let sb else { return false }
    self.sb = sb
    ck = RoseChecksum(uuid: sb.uuid)
    if sb.rsvSegments >= sb.segmentCount {
      problem("superblock: rsv_segments \(sb.rsvSegments) >= segment_count \(sb.segmentCount)")
    }
    if UInt64(sb.segmentCount) << UInt64(sb.logBlocksPerSegment) > UInt64(UInt32.max) {
      problem("superblock: segment_count \(sb.segmentCount) gives more than 2^32 main-area blocks")
    }
    if size / UInt64(RoseLayout.blockSize) < sb.blockCount {
      problem(
        "the volume has \(sb.blockCount) blocks but its container (image or partition) holds \(size) bytes: truncated, or block_count is wrong"
      )
    }
    return true
  }
}

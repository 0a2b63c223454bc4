/// File content read with every data block checked against the checksum its segment summary (SSA)
/// records (FORMAT.md, "data_csum"): `cat` and `export` must not hand out corrupt bytes as if they
/// were the file. Inline bytes and tails are covered by their own checksums (inode slot, tail
/// block header), which the reader always checks.
public final class ChecksumVerifyingSource: ContentSource {
  public let reader: ImageReader
  private var ssaBlocks: [UInt32: [UInt8]] = [:]  // SSA content block index -> its bytes
  private let enabled: Bool

  public init(reader: ImageReader) {
    self.reader = reader
    enabled = reader.superblock.featureRoCompat & Feature.roCompatDataChecksum != 0
  }

  public func readContent(
    _ content: FileContent, _ body: (UnsafeRawBufferPointer, UInt64) throws -> Void
  ) throws {
    guard enabled, content.inline == nil, !content.extents.isEmpty else {
      return try reader.readContent(content, body)
    }
    let bs = UInt64(RoseLayout.blockSize)
    let extents = content.extents.sorted { $0.logical < $1.logical }
    let bodyEnd = content.size - UInt64(content.tail?.length ?? 0)
    try reader.readContent(content) { buf, offset in
      // Chunks of the extents come block-aligned; the tail comes at `bodyEnd`.
      if offset < bodyEnd || content.tail == nil {
        var at = 0
        while at < buf.count {
          let logical = (offset + UInt64(at)) / bs
          let n = min(Int(bs), buf.count - at)
          try verify(
            logical: logical, extents: extents,
            bytes: UnsafeRawBufferPointer(rebasing: buf[at..<at + n]))
          at += n
        }
      }
      try body(buf, offset)
    }
  }

  private func verify(logical: UInt64, extents: [Extent], bytes: UnsafeRawBufferPointer) throws {
    // The extent holding `logical` (binary search: extents are sorted and do not overlap).
    var lo = 0
    var hi = extents.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if UInt64(extents[mid].logical) + UInt64(extents[mid].count) <= logical {
        lo = mid + 1
      } else {
        hi = mid
      }
    }
    guard lo < extents.count, UInt64(extents[lo].logical) <= logical else { return }
    let physical = UInt64(extents[lo].physical) + (logical - UInt64(extents[lo].logical))
    guard let address = UInt32(exactly: physical) else { return }
    var block = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    if bytes.count == RoseLayout.blockSize {
      block.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
    } else {
      // The last block of the body is read whole: the checksum covers all 4096 bytes.
      try block.withUnsafeMutableBytes {
        try reader.image.read(into: $0, atByte: physical * UInt64(RoseLayout.blockSize))
      }
    }
    let computed = reader.checksum.checksum(block)
    let recorded = try recordedChecksum(address)
    guard computed == recorded else {
      throw RoseFSError.corrupt(
        "data block \(address) (bytes \(logical * UInt64(RoseLayout.blockSize)) to \((logical + 1) * UInt64(RoseLayout.blockSize) - 1) of the file) fails its checksum (computed \(hex32(computed)), the segment summary records \(hex32(recorded))); --ignore-checksums reads it anyway"
      )
    }
  }

  private func recordedChecksum(_ address: UInt32) throws -> UInt32 {
    let main = UInt64(reader.superblock.mainBlkaddr)
    guard UInt64(address) >= main else {
      throw RoseFSError.corrupt("data block \(address) lies before the main area")
    }
    let at = SSAEntry.location(ofMainBlock: UInt64(address) - main)
    let index = UInt32(truncatingIfNeeded: at.block)
    if ssaBlocks[index] == nil {
      if ssaBlocks.count > 4096 { ssaBlocks.removeAll() }  // memory stays bounded
      let a = try reader.metaContentAddress(
        reader.checkpoint.ssa, index: index, type: MetaType.ssa, what: "SSA")
      guard a != 0 else {
        throw RoseFSError.corrupt("data block \(address) has no segment summary entry")
      }
      ssaBlocks[index] = try reader.readHeaderBlock(a, magic: Magic.ssa, what: "SSA block")
    }
    guard let b = ssaBlocks[index] else { return 0 }
    return SSAEntry.decode(ByteReader(b), at.offset).crc
  }
}

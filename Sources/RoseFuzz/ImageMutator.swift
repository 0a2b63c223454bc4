import RoseFS

/// Damages one metadata structure of a RoseFS image and makes its checksum right again.
public enum ImageMutator {
  static let bs = RoseLayout.blockSize

  public static func mutate(_ pristine: [UInt8], _ rng: inout FuzzRandom) -> ([UInt8], String) {
    var img = pristine
    let blocks = img.count / bs
    guard blocks > 16, let sb = try? Superblock.decode(Array(img[1024..<1280])) else {
      return (img, "not an image")
    }
    let checksum = RoseChecksum(uuid: sb.uuid)
    // Classify blocks once per mutation (cheap for the small test images).
    var headerBlocks: [Int] = []
    var inodePages: [Int] = []
    for b in 16..<blocks {
      let base = b * bs
      let magic = img.loadLE(UInt32.self, at: base)
      if magic != 0 && isHeaderMagic(magic) {
        headerBlocks.append(b)
      } else if validSlots(img, block: b, checksum).count > 0 {
        inodePages.append(b)
      }
    }
    var notes: [String] = []
    let rounds = 1 + rng.below(3)
    for _ in 0..<rounds {
      let kind = rng.below(100)
      if kind < 12 {
        // Superblock: copy 0, or both copies alike.
        let off = 8 + rng.below(RoseLayout.superblockSize - 8)
        let width = [1, 2, 4, 8][rng.below(4)]
        let o = min(off, RoseLayout.superblockSize - width)
        let value = rng.interesting(width: width)
        let both = rng.chance(50)
        for copy in both ? [0, 1] : [0] {
          let base = copy * bs + RoseLayout.superblockOffset
          put(&img, base + o, value, width)
          fixCRC(&img, base, RoseLayout.superblockSize, at: 4, checksum)
        }
        notes.append("superblock\(both ? "s" : "") +0x\(hex(o)) w\(width)=0x\(hex(value))")
      } else if kind < 40 {
        // Checkpoint: mostly the fields and the heads (0x000..0x280).
        let slot = rng.below(2)
        let base = (2 + slot) * bs
        let off = rng.chance(80) ? 8 + rng.below(0x280 - 8) : 0x280 + rng.below(bs - 0x288)
        let width = [1, 2, 4, 8][rng.below(4)]
        let value = rng.interesting(width: width)
        put(&img, base + off, value, width)
        fixCRC(&img, base, bs, at: 4, checksum)
        notes.append("checkpoint \(slot) +0x\(hex(off)) w\(width)=0x\(hex(value))")
      } else if kind < 75, !headerBlocks.isEmpty {
        let b = headerBlocks[rng.below(headerBlocks.count)]
        let base = b * bs
        let off = rng.chance(50) ? 8 + rng.below(56) : 8 + rng.below(bs - 16)
        let width = [1, 2, 4, 8][rng.below(4)]
        let value = rng.interesting(width: width)
        put(&img, base + off, value, width)
        fixCRC(&img, base, bs, at: BlockHeader.crcOffset, checksum)
        notes.append("block \(b) +0x\(hex(off)) w\(width)=0x\(hex(value))")
      } else if kind < 97, !inodePages.isEmpty {
        let b = inodePages[rng.below(inodePages.count)]
        let slots = validSlots(img, block: b, checksum)
        let slot = slots[rng.below(slots.count)]
        let base = b * bs + slot * RoseLayout.inodeSize
        // The 96-byte core mostly, else anywhere in the inode's slots (8-byte writes stay inside).
        let length = inodeLength(img, base, slot: slot)
        var off = rng.chance(70) ? rng.below(InodeCore.size - 7) : rng.below(length - 7)
        if off >= SlotOffset.crc && off < SlotOffset.crc + 4 { off = SlotOffset.size }
        let width = [1, 2, 4, 8][rng.below(4)]
        let value = rng.interesting(width: width)
        put(&img, base + off, value, width)
        fixCRC(&img, base, inodeLength(img, base, slot: slot), at: SlotOffset.crc, checksum)
        notes.append("inode block \(b) slot \(slot) +0x\(hex(off)) w\(width)=0x\(hex(value))")
      } else {
        // A data block (or anything): its checksum is left wrong, for the readers to catch.
        let b = 16 + rng.below(blocks - 16)
        let off = rng.below(bs)
        img[b * bs + off] ^= UInt8(1 + rng.below(255))
        notes.append("raw block \(b) +0x\(hex(off)) flipped")
      }
    }
    return (img, notes.joined(separator: "; "))
  }

  static func isHeaderMagic(_ m: UInt32) -> Bool {
    [
      Magic.nat, Magic.vbm, Magic.ssa, Magic.mapIndex, Magic.dirNode, Magic.extentNode,
      Magic.xattrNode,
    ].contains(m)
  }

  /// Bytes of the inode at `base` (slot `slot`): its `nslots` slots, kept inside the page.
  static func inodeLength(_ img: [UInt8], _ base: Int, slot: Int) -> Int {
    let n = Int(img[base + SlotOffset.nslots])
    return min(max(n, RoseLayout.minInodeSlots), RoseLayout.inodesPerPage - slot)
      * RoseLayout.inodeSize
  }

  static func validSlots(_ img: [UInt8], block b: Int, _ checksum: RoseChecksum) -> [Int] {
    var out: [Int] = []
    // An inode starts at least 3 slots before the end of its page.
    for s in 0...(RoseLayout.inodesPerPage - RoseLayout.minInodeSlots) {
      let base = b * bs + s * RoseLayout.inodeSize
      let stored = img.loadLE(UInt32.self, at: base + SlotOffset.crc)
      if stored == 0 { continue }
      let computed = img.withUnsafeBytes {
        checksum.checksum(
          UnsafeRawBufferPointer(rebasing: $0[base..<base + inodeLength(img, base, slot: s)]),
          zeroingFieldAt: SlotOffset.crc)
      }
      if computed == stored { out.append(s) }
    }
    return out
  }

  static func put(_ img: inout [UInt8], _ at: Int, _ value: UInt64, _ width: Int) {
    for i in 0..<width { img[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
  }

  static func fixCRC(
    _ img: inout [UInt8], _ base: Int, _ length: Int, at field: Int, _ checksum: RoseChecksum
  ) {
    let crc = img.withUnsafeBytes {
      checksum.checksum(
        UnsafeRawBufferPointer(rebasing: $0[base..<base + length]), zeroingFieldAt: field)
    }
    put(&img, base + field, UInt64(crc), 4)
  }

  static func hex(_ v: some BinaryInteger) -> String { String(v, radix: 16) }
}

/// Feature bits (FORMAT.md, "Features"). A reader refuses an image with an incompat bit it does not
/// know; a writer refuses one with an unknown ro_compat bit.
public enum Feature {
  public static let incompatInline: UInt32 = 0x1
  public static let incompatTailPack: UInt32 = 0x2
  public static let incompatDirTree: UInt32 = 0x4
  public static let incompatExtentTree: UInt32 = 0x8
  public static let incompatXattrNode: UInt32 = 0x10
  public static let incompatKnown: UInt32 = 0x1F
  public static let roCompatDataChecksum: UInt32 = 0x1
  public static let roCompatKnown: UInt32 = 0x1
}

/// The superblock: 256 bytes at byte 1024 of block 0, and the same at byte 1024 of block 1.
///
///     0x000 u32 magic "ROSE"          0x004 u32 crc (over the 256 bytes, this field zero)
///     0x008 u16 major (1)             0x00A u16 minor (0)
///     0x00C u32 feature_compat        0x010 u32 feature_incompat      0x014 u32 feature_ro_compat
///     0x018 u8  log_block_size (12)   0x019 u8 log_blocks_per_seg (6..9)
///     0x01A u8  nr_logs (3)           0x01B u8 max_heads (4)
///     0x01C u32 sb_size (256)         0x020 u64 block_count
///     0x028 u32 cp_blkaddr (2)        0x02C u16 cp_slot_blocks (1)    0x02E u16 cp_nslots (2)
///     0x030 u32 main_blkaddr (16)     0x034 u32 segment_count
///     0x038 u32 rsv_segments          0x03C u32 op_blocks
///     0x040 u8[16] uuid               0x050 u8[32] label (UTF-8, NUL padded)
///     0x070 u8[16] hash_seed          0x080 u16 inode_size (512)      0x082 u16 inline_max (368)
///     0x084 u32 tail_max              0x088 i64 mkfs_time             0x090..0x100 zero
public struct Superblock: Equatable, Sendable {
  public var major: UInt16 = 1
  public var minor: UInt16 = 0
  public var featureCompat: UInt32 = 0
  public var featureIncompat: UInt32
  public var featureRoCompat: UInt32
  public var logBlockSize: UInt8 = 12
  public var logBlocksPerSegment: UInt8
  public var nrLogs: UInt8 = UInt8(RoseLayout.nrLogs)
  public var maxHeads: UInt8 = UInt8(RoseLayout.maxHeads)
  public var blockCount: UInt64
  public var cpBlkaddr: UInt32 = RoseLayout.checkpointBlock
  public var cpSlotBlocks: UInt16 = 1
  public var cpSlots: UInt16 = UInt16(RoseLayout.checkpointSlots)
  public var mainBlkaddr: UInt32 = RoseLayout.mainStart
  public var segmentCount: UInt32
  public var rsvSegments: UInt32
  public var opBlocks: UInt32
  public var uuid: [UInt8]
  public var label: [UInt8]
  public var hashSeed: [UInt8]
  public var inodeSize: UInt16 = UInt16(RoseLayout.inodeSize)
  public var inlineMax: UInt16 = UInt16(RoseLayout.inlineCapacity)
  public var tailMax: UInt32
  public var mkfsTime: Int64

  public var blocksPerSegment: UInt32 { 1 << UInt32(logBlocksPerSegment) }
  public var mainBlocks: UInt32 { segmentCount << UInt32(logBlocksPerSegment) }

  public static let crcOffset = 4

  /// The 256 encoded bytes with the checksum filled in.
  public func encode(checksum: RoseChecksum) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: RoseLayout.superblockSize)
    out.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      w.put(Magic.superblock)
      w.put(UInt32(0))
      w.put(major)
      w.put(minor)
      w.put(featureCompat)
      w.put(featureIncompat)
      w.put(featureRoCompat)
      w.put(logBlockSize)
      w.put(logBlocksPerSegment)
      w.put(nrLogs)
      w.put(maxHeads)
      w.put(UInt32(RoseLayout.superblockSize))
      w.put(blockCount)
      w.put(cpBlkaddr)
      w.put(cpSlotBlocks)
      w.put(cpSlots)
      w.put(mainBlkaddr)
      w.put(segmentCount)
      w.put(rsvSegments)
      w.put(opBlocks)
      w.put(bytes: uuid, paddedTo: 16)
      w.put(bytes: label, paddedTo: 32)
      w.put(bytes: hashSeed, paddedTo: 16)
      w.put(inodeSize)
      w.put(inlineMax)
      w.put(tailMax)
      w.put(mkfsTime)
      let crc = checksum.checksum(UnsafeRawBufferPointer(buf), zeroingFieldAt: Self.crcOffset)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: Self.crcOffset, as: UInt32.self)
    }
    return out
  }

  /// Decodes and verifies a superblock: magic, checksum (seeded with its own UUID), version, features,
  /// and the geometry's invariants.
  public static func decode(_ bytes: [UInt8]) throws -> Superblock {
    let r = ByteReader(bytes)
    guard bytes.count >= RoseLayout.superblockSize, r.u32(0) == Magic.superblock else {
      throw RoseFSError.corrupt("no RoseFS superblock (magic \"ROSE\" not found at byte 1024)")
    }
    let uuid = r.slice(0x40, 16)
    let ck = RoseChecksum(uuid: uuid)
    let sbBytes = Array(bytes[0..<RoseLayout.superblockSize])
    let crc = sbBytes.withUnsafeBytes { ck.checksum($0, zeroingFieldAt: crcOffset) }
    guard crc == r.u32(4) else {
      throw RoseFSError.corrupt(
        "superblock checksum mismatch (stored \(hex32(r.u32(4))), computed \(hex32(crc)))")
    }
    let sb = Superblock(
      major: r.u16(8), minor: r.u16(0xA), featureCompat: r.u32(0xC), featureIncompat: r.u32(0x10),
      featureRoCompat: r.u32(0x14), logBlockSize: r.u8(0x18), logBlocksPerSegment: r.u8(0x19),
      nrLogs: r.u8(0x1A), maxHeads: r.u8(0x1B), blockCount: r.u64(0x20), cpBlkaddr: r.u32(0x28),
      cpSlotBlocks: r.u16(0x2C), cpSlots: r.u16(0x2E), mainBlkaddr: r.u32(0x30),
      segmentCount: r.u32(0x34), rsvSegments: r.u32(0x38), opBlocks: r.u32(0x3C), uuid: uuid,
      label: r.slice(0x50, 32), hashSeed: r.slice(0x70, 16), inodeSize: r.u16(0x80),
      inlineMax: r.u16(0x82), tailMax: r.u32(0x84), mkfsTime: r.i64(0x88))
    guard sb.major == 1 else {
      throw RoseFSError.corrupt("unsupported RoseFS major version \(sb.major)")
    }
    guard sb.featureIncompat & ~Feature.incompatKnown == 0 else {
      throw RoseFSError.corrupt("unknown incompatible features \(hex32(sb.featureIncompat))")
    }
    guard r.u32(0x1C) == UInt32(RoseLayout.superblockSize), sb.logBlockSize == 12,
      (6...9).contains(sb.logBlocksPerSegment), sb.inodeSize == 512,
      sb.inlineMax == UInt16(RoseLayout.inlineCapacity), sb.cpBlkaddr == 2, sb.cpSlots == 2,
      sb.cpSlotBlocks == 1, sb.mainBlkaddr == RoseLayout.mainStart,
      UInt64(sb.mainBlkaddr) + UInt64(sb.mainBlocks) <= sb.blockCount,
      sb.tailMax <= 4032, sb.maxHeads == 4, sb.nrLogs == 3
    else { throw RoseFSError.corrupt("superblock geometry out of range") }
    return sb
  }

  public var labelString: String {
    String(decoding: label.prefix { $0 != 0 }, as: UTF8.self)
  }
}

extension Superblock {
  public init(
    featureIncompat: UInt32, featureRoCompat: UInt32, logBlocksPerSegment: UInt8,
    blockCount: UInt64,
    segmentCount: UInt32, rsvSegments: UInt32, opBlocks: UInt32, uuid: [UInt8], label: [UInt8],
    hashSeed: [UInt8], tailMax: UInt32, mkfsTime: Int64
  ) {
    self.featureIncompat = featureIncompat
    self.featureRoCompat = featureRoCompat
    self.logBlocksPerSegment = logBlocksPerSegment
    self.blockCount = blockCount
    self.segmentCount = segmentCount
    self.rsvSegments = rsvSegments
    self.opBlocks = opBlocks
    self.uuid = uuid
    self.label = label
    self.hashSeed = hashSeed
    self.tailMax = tailMax
    self.mkfsTime = mkfsTime
  }
}

func hex32(_ v: UInt32) -> String { "0x" + String(v, radix: 16).leftPadded(to: 8) }

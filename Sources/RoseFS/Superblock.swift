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
///     0x070 u8[16] hash_seed          0x080 u16 inode_size (32)       0x082 u16 inline_max (4000)
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
  public var inlineMax: UInt16 = UInt16(RoseLayout.maxInline)
  public var tailMax: UInt32
  public var mkfsTime: Int64
  /// `sb_size` as stored (256 in every valid superblock; the encoder always writes 256).
  public var storedSize: UInt32 = UInt32(Superblock.size)

  public var blocksPerSegment: UInt32 { 1 << UInt32(logBlocksPerSegment) }
  public var mainBlocks: UInt32 { segmentCount << UInt32(logBlocksPerSegment) }

  public static let crcOffset = Offset.crc

  /// The 256 encoded bytes with the checksum filled in.
  public func encode(checksum: RoseChecksum) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Self.size)
    out.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      typealias O = Offset
      w.put(Magic.superblock, at: O.magic)
      w.put(major, at: O.major)
      w.put(minor, at: O.minor)
      w.put(featureCompat, at: O.featureCompat)
      w.put(featureIncompat, at: O.featureIncompat)
      w.put(featureRoCompat, at: O.featureRoCompat)
      w.put(logBlockSize, at: O.logBlockSize)
      w.put(logBlocksPerSegment, at: O.logBlocksPerSeg)
      w.put(nrLogs, at: O.nrLogs)
      w.put(maxHeads, at: O.maxHeads)
      w.put(UInt32(Self.size), at: O.sbSize)
      w.put(blockCount, at: O.blockCount)
      w.put(cpBlkaddr, at: O.cpBlkaddr)
      w.put(cpSlotBlocks, at: O.cpSlotBlocks)
      w.put(cpSlots, at: O.cpNslots)
      w.put(mainBlkaddr, at: O.mainBlkaddr)
      w.put(segmentCount, at: O.segmentCount)
      w.put(rsvSegments, at: O.rsvSegments)
      w.put(opBlocks, at: O.opBlocks)
      w.put(bytes: uuid, paddedTo: 16, at: O.uuid)
      w.put(bytes: label, paddedTo: 32, at: O.label)
      w.put(bytes: hashSeed, paddedTo: 16, at: O.hashSeed)
      w.put(inodeSize, at: O.inodeSize)
      w.put(inlineMax, at: O.inlineMax)
      w.put(tailMax, at: O.tailMax)
      w.put(mkfsTime, at: O.mkfsTime)
      let crc = checksum.checksum(UnsafeRawBufferPointer(buf), zeroingFieldAt: O.crc)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: O.crc, as: UInt32.self)
    }
    return out
  }

  /// Decodes the fields without checking anything (fsck looks at a damaged copy field by field).
  public static func decodeFields(_ bytes: [UInt8]) -> Superblock {
    let r = ByteReader(bytes)
    typealias O = Offset
    return Superblock(
      major: r.u16(O.major), minor: r.u16(O.minor), featureCompat: r.u32(O.featureCompat),
      featureIncompat: r.u32(O.featureIncompat), featureRoCompat: r.u32(O.featureRoCompat),
      logBlockSize: r.u8(O.logBlockSize), logBlocksPerSegment: r.u8(O.logBlocksPerSeg),
      nrLogs: r.u8(O.nrLogs), maxHeads: r.u8(O.maxHeads), blockCount: r.u64(O.blockCount),
      cpBlkaddr: r.u32(O.cpBlkaddr), cpSlotBlocks: r.u16(O.cpSlotBlocks),
      cpSlots: r.u16(O.cpNslots), mainBlkaddr: r.u32(O.mainBlkaddr),
      segmentCount: r.u32(O.segmentCount), rsvSegments: r.u32(O.rsvSegments),
      opBlocks: r.u32(O.opBlocks), uuid: r.slice(O.uuid, 16), label: r.slice(O.label, 32),
      hashSeed: r.slice(O.hashSeed, 16), inodeSize: r.u16(O.inodeSize),
      inlineMax: r.u16(O.inlineMax), tailMax: r.u32(O.tailMax), mkfsTime: r.i64(O.mkfsTime),
      storedSize: r.u32(O.sbSize))
  }

  /// Decodes and verifies a superblock: magic, checksum (seeded with its own UUID), version, features,
  /// and the geometry's invariants.
  public static func decode(_ bytes: [UInt8]) throws -> Superblock {
    let r = ByteReader(bytes)
    guard bytes.count >= Self.size, r.u32(Offset.magic) == Magic.superblock else {
      throw RoseFSError.corrupt("no RoseFS superblock (magic \"ROSE\" not found at byte 1024)")
    }
    let sb = decodeFields(bytes)
    let ck = RoseChecksum(uuid: sb.uuid)
    let sbBytes = Array(bytes[0..<Self.size])
    let crc = sbBytes.withUnsafeBytes { ck.checksum($0, zeroingFieldAt: Offset.crc) }
    guard crc == r.u32(Offset.crc) else {
      throw RoseFSError.corrupt(
        "superblock checksum mismatch (stored \(hex32(r.u32(Offset.crc))), computed \(hex32(crc)))")
    }
    guard sb.major == 1 else {
      throw RoseFSError.corrupt("unsupported RoseFS major version \(sb.major)")
    }
    guard sb.featureIncompat & ~Feature.incompatKnown == 0 else {
      throw RoseFSError.corrupt("unknown incompatible features \(hex32(sb.featureIncompat))")
    }
    guard sb.storedSize == UInt32(Self.size), sb.logBlockSize == 12,
      (6...9).contains(sb.logBlocksPerSegment), sb.inodeSize == UInt16(RoseLayout.inodeSize),
      sb.inlineMax == UInt16(RoseLayout.maxInline), sb.cpBlkaddr == 2, sb.cpSlots == 2,
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

extension Superblock: OnDiskLayout {
  public static let size = RoseLayout.superblockSize

  /// Field offsets (FORMAT.md section 3).
  public enum Offset {
    public static let magic = 0x000, crc = 0x004, major = 0x008, minor = 0x00A
    public static let featureCompat = 0x00C, featureIncompat = 0x010, featureRoCompat = 0x014
    public static let logBlockSize = 0x018, logBlocksPerSeg = 0x019, nrLogs = 0x01A
    public static let maxHeads = 0x01B, sbSize = 0x01C, blockCount = 0x020, cpBlkaddr = 0x028
    public static let cpSlotBlocks = 0x02C, cpNslots = 0x02E, mainBlkaddr = 0x030
    public static let segmentCount = 0x034, rsvSegments = 0x038, opBlocks = 0x03C, uuid = 0x040
    public static let label = 0x050, hashSeed = 0x070, inodeSize = 0x080, inlineMax = 0x082
    public static let tailMax = 0x084, mkfsTime = 0x088, reserved = 0x090
  }

  public static let fields: [FieldSpec] = {
    typealias O = Offset
    return [
      FieldSpec("magic", O.magic, 4), FieldSpec("crc", O.crc, 4), FieldSpec("major", O.major, 2),
      FieldSpec("minor", O.minor, 2), FieldSpec("feature_compat", O.featureCompat, 4),
      FieldSpec("feature_incompat", O.featureIncompat, 4),
      FieldSpec("feature_ro_compat", O.featureRoCompat, 4),
      FieldSpec("log_block_size", O.logBlockSize, 1),
      FieldSpec("log_blocks_per_seg", O.logBlocksPerSeg, 1), FieldSpec("nr_logs", O.nrLogs, 1),
      FieldSpec("max_heads", O.maxHeads, 1), FieldSpec("sb_size", O.sbSize, 4),
      FieldSpec("block_count", O.blockCount, 8), FieldSpec("cp_blkaddr", O.cpBlkaddr, 4),
      FieldSpec("cp_slot_blocks", O.cpSlotBlocks, 2), FieldSpec("cp_nslots", O.cpNslots, 2),
      FieldSpec("main_blkaddr", O.mainBlkaddr, 4), FieldSpec("segment_count", O.segmentCount, 4),
      FieldSpec("rsv_segments", O.rsvSegments, 4), FieldSpec("op_blocks", O.opBlocks, 4),
      FieldSpec("uuid", O.uuid, 16), FieldSpec("label", O.label, 32),
      FieldSpec("hash_seed", O.hashSeed, 16), FieldSpec("inode_size", O.inodeSize, 2),
      FieldSpec("inline_max", O.inlineMax, 2), FieldSpec("tail_max", O.tailMax, 4),
      FieldSpec("mkfs_time", O.mkfsTime, 8), FieldSpec("reserved", O.reserved, 112),
    ]
  }()
}

func hex32(_ v: UInt32) -> String { "0x" + String(v, radix: 16).leftPadded(to: 8) }

/// The fixed-size records inside blocks and inode slots (FORMAT.md sections 6 to 10), each declared
/// once: offsets, size, encoder and decoder, used by the packer, the reader, fsck and the tests.

/// An SSA entry (FORMAT.md 6.4, 12 bytes): who owns a main-area block, and a data block's checksum.
public struct SSAEntry: Equatable, Sendable {
  public var owner: UInt32
  /// `SSAKind` in bits 28..31 of `info`.
  public var kind: UInt8
  /// Bits 0..27 of `info`: logical block (DATA) or index within its level (META).
  public var index: UInt32
  public var crc: UInt32

  public init(owner: UInt32, kind: UInt8, index: UInt32, crc: UInt32 = 0) {
    self.owner = owner
    self.kind = kind
    self.index = index
    self.crc = crc
  }

  public static let indexMask: UInt32 = 0x0FFF_FFFF
  public var info: UInt32 { UInt32(kind) << 28 | (index & Self.indexMask) }

  /// The owner of a META block: `type | head << 8 | level << 16` (the SSA's own blocks: head 0).
  public static func metaOwner(type: UInt8, head: Int, level: UInt8) -> UInt32 {
    UInt32(type) | UInt32(UInt8(truncatingIfNeeded: head)) << 8 | UInt32(level) << 16
  }

  public func encode(into buf: UnsafeMutableRawBufferPointer, at o: Int) {
    buf.storeBytes(of: owner.littleEndian, toByteOffset: o + Offset.owner, as: UInt32.self)
    buf.storeBytes(of: info.littleEndian, toByteOffset: o + Offset.info, as: UInt32.self)
    buf.storeBytes(of: crc.littleEndian, toByteOffset: o + Offset.crc, as: UInt32.self)
  }

  public static func decode(_ r: ByteReader, _ o: Int) -> SSAEntry {
    let info = r.u32(o + Offset.info)
    return SSAEntry(
      owner: r.u32(o + Offset.owner), kind: UInt8(info >> 28), index: info & indexMask,
      crc: r.u32(o + Offset.crc))
  }

  /// Where the entry of main-area block `k` (counted from `main_blkaddr`) is: SSA content block and
  /// byte offset in it.
  public static func location(ofMainBlock k: UInt64) -> (block: UInt64, offset: Int) {
    let per = UInt64(RoseLayout.ssaEntriesPerBlock)
    return (k / per, RoseLayout.headerSize + Int(k % per) * size)
  }
}

extension SSAEntry: OnDiskLayout {
  public static let size = 12
  public enum Offset {
    public static let owner = 0x0, info = 0x4, crc = 0x8
  }
  public static let fields = [
    FieldSpec("owner", Offset.owner, 4), FieldSpec("info", Offset.info, 4),
    FieldSpec("crc", Offset.crc, 4),
  ]
}

/// A directory leaf record (FORMAT.md 8.2, 16 bytes); the name is elsewhere in the block.
public struct DirLeafRecord: Equatable, Sendable {
  public var key: UInt64
  public var ino: UInt32
  public var nameOffset: UInt16
  public var nameLength: UInt8
  public var type: UInt8
  public static func decode(_ r: ByteReader, _ o: Int) -> DirLeafRecord {
    DirLeafRecord(
      key: r.u64(o + Offset.key), ino: r.u32(o + Offset.ino),
      nameOffset: r.u16(o + Offset.nameOff), nameLength: r.u8(o + Offset.nameLen),
      type: r.u8(o + Offset.type))
  }
  public func encode(into w: inout ByteWriter, at o: Int) {
    w.put(key, at: o + Offset.key)
    w.put(ino, at: o + Offset.ino)
    w.put(nameOffset, at: o + Offset.nameOff)
    w.put(nameLength, at: o + Offset.nameLen)
    w.put(type, at: o + Offset.type)
  }
  public static func at(_ i: Int) -> Int { RoseLayout.headerSize + i * size }
}

extension DirLeafRecord: OnDiskLayout {
  public static let size = 16
  public enum Offset {
    public static let key = 0x0, ino = 0x8, nameOff = 0xC, nameLen = 0xE, type = 0xF
  }
  public static let fields = [
    FieldSpec("key", Offset.key, 8), FieldSpec("ino", Offset.ino, 4),
    FieldSpec("name_off", Offset.nameOff, 2), FieldSpec("name_len", Offset.nameLen, 1),
    FieldSpec("type", Offset.type, 1),
  ]
}

/// An interior record of a B+ tree (FORMAT.md 8.2 and 9.2): the smallest key below a child, and the
/// child's nid. Directory trees use 8-byte keys (12-byte records), extent trees 4-byte logical block
/// numbers (8-byte records).
public enum TreeKind: Sendable {
  case directory
  case extents

  public var magic: UInt32 { self == .directory ? Magic.dirNode : Magic.extentNode }
  public var keyWidth: Int { self == .directory ? 8 : 4 }
  /// Bytes of an interior record.
  public var interiorRecordSize: Int { keyWidth + 4 }
  public var leafRecordSize: Int { self == .directory ? DirLeafRecord.size : ExtentRecord.size }
  public var maxInteriorRecords: Int {
    (RoseLayout.blockSize - RoseLayout.headerSize) / interiorRecordSize
  }
  /// Directory leaves hold at least one byte of name per record.
  public var maxLeafRecords: Int {
    (RoseLayout.blockSize - RoseLayout.headerSize) / (self == .directory ? 17 : ExtentRecord.size)
  }

  public func interiorKey(_ r: ByteReader, _ i: Int) -> UInt64 {
    let o = RoseLayout.headerSize + i * interiorRecordSize
    return self == .directory ? r.u64(o) : UInt64(r.u32(o))
  }
  public func interiorChild(_ r: ByteReader, _ i: Int) -> UInt32 {
    r.u32(RoseLayout.headerSize + i * interiorRecordSize + keyWidth)
  }
  public func appendInterior(_ body: inout [UInt8], key: UInt64, child: UInt32) {
    if self == .directory {
      appendLE(&body, key)
    } else {
      appendLE(&body, UInt32(truncatingIfNeeded: key))
    }
    appendLE(&body, child)
  }

  public init?(magic: UInt32) {
    switch magic {
    case Magic.dirNode: self = .directory
    case Magic.extentNode: self = .extents
    default: return nil
    }
  }
}

/// An extent record (FORMAT.md 9.1, 12 bytes): `lblk`, `pblk`, `len`, as `Extent` holds them.
public enum ExtentRecord: OnDiskLayout {
  public static let size = 12
  public enum Offset {
    public static let lblk = 0x0, pblk = 0x4, len = 0x8
  }
  public static let fields = [
    FieldSpec("lblk", Offset.lblk, 4), FieldSpec("pblk", Offset.pblk, 4),
    FieldSpec("len", Offset.len, 4),
  ]
  public static func decode(_ r: ByteReader, _ o: Int) -> Extent {
    Extent(
      logical: r.u32(o + Offset.lblk), physical: r.u32(o + Offset.pblk),
      count: r.u32(o + Offset.len))
  }
  public static func append(_ e: Extent, to out: inout [UInt8]) {
    appendLE(&out, e.logical)
    appendLE(&out, e.physical)
    appendLE(&out, e.count)
  }
  /// `count` records starting at byte `base` of `bytes`.
  public static func decode(_ bytes: [UInt8], at base: Int, count: Int) -> [Extent] {
    let r = ByteReader(bytes)
    return (0..<count).map { decode(r, base + $0 * size) }
  }
}

/// An inline directory entry's fixed part (FORMAT.md 8.1, 8 bytes), followed by `name_len` name bytes.
public struct InlineDirent: Equatable, Sendable {
  public var ino: UInt32
  public var type: UInt8
  public var nameLength: UInt8
  public var seq: UInt16
  public static func decode(_ r: ByteReader, _ o: Int) -> InlineDirent {
    InlineDirent(
      ino: r.u32(o + Offset.ino), type: r.u8(o + Offset.type), nameLength: r.u8(o + Offset.nameLen),
      seq: r.u16(o + Offset.seq))
  }
  public func append(to out: inout [UInt8]) {
    appendLE(&out, ino)
    out.append(type)
    out.append(nameLength)
    appendLE(&out, seq)
  }
}

extension InlineDirent: OnDiskLayout {
  public static let size = 8
  public enum Offset {
    public static let ino = 0x0, type = 0x4, nameLen = 0x5, seq = 0x6
  }
  public static let fields = [
    FieldSpec("ino", Offset.ino, 4), FieldSpec("type", Offset.type, 1),
    FieldSpec("name_len", Offset.nameLen, 1), FieldSpec("seq", Offset.seq, 2),
  ]
}

/// A map-index or NAT content block body: 1016 `u32` addresses after the header (FORMAT.md 6.1, 6.2).
public enum AddressArray {
  public static func at(_ i: Int) -> Int { RoseLayout.headerSize + 4 * i }
  public static func read(_ r: ByteReader, _ i: Int) -> UInt32 { r.u32(at(i)) }
}

/// A directory entry's key (FORMAT.md section 8): `hash << 32 | seq`, also the readdir cookie.
public enum DirectoryKey {
  public static let seqMask: UInt64 = 0xFFFF_FFFF
  public static func make(hash: UInt32, seq: UInt32) -> UInt64 { UInt64(hash) << 32 | UInt64(seq) }
  public static func hash(_ key: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: key >> 32) }
  public static func seq(_ key: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: key & seqMask) }
}

/// SSA entry kinds (FORMAT.md 6.4).
public enum SSAKind {
  public static let free: UInt8 = 0
  public static let data: UInt8 = 1
  public static let node: UInt8 = 2
  public static let tail: UInt8 = 3
  public static let meta: UInt8 = 4
}

/// Meta-file types (SSA META owner and map-index subtype).
public enum MetaType {
  public static let nat: UInt8 = 1
  public static let vbm: UInt8 = 2
  public static let ssa: UInt8 = 3
}

/// One entry of a roll-forward record (FORMAT.md 13.7, 24 bytes): a change made since the previous
/// record (or the checkpoint) that a driver replays at mount.
///
///     0x00 u8 type (1 NAT, 2 LIVE, 3 DEAD, 4 SSA)   0x01 u8 head   0x02 u16 zero
///     0x04 u32 key (NAT: nid; else a block address)  0x08 u32 value (NAT: blkaddr; LIVE, SSA: SSA owner)
///     0x0C u32 info (LIVE, SSA: SSA info)  0x10 u32 ssa_crc (LIVE, SSA)  0x14 u32 block_crc (LIVE)
public struct RollForwardEntry: Equatable, Sendable {
  /// `nat(head)[key] = value`.
  public static let nat: UInt8 = 1
  /// Block `key` became live in `head`; its SSA entry is (value, info, ssa_crc) and its 4096 bytes
  /// have checksum `block_crc`.
  public static let live: UInt8 = 2
  /// Block `key` is no longer live in `head`.
  public static let dead: UInt8 = 3
  /// The SSA entry of block `key` is (value, info, ssa_crc); its liveness did not change.
  public static let ssa: UInt8 = 4

  public var type: UInt8
  public var head: UInt8
  public var key: UInt32
  public var value: UInt32 = 0
  public var info: UInt32 = 0
  public var ssaCRC: UInt32 = 0
  public var blockCRC: UInt32 = 0
  /// The two bytes after `head`, zero in a valid entry (kept so that fsck can say so).
  public var reserved: UInt16 = 0

  public init(
    type: UInt8, head: UInt8, key: UInt32, value: UInt32 = 0, info: UInt32 = 0,
    ssaCRC: UInt32 = 0, blockCRC: UInt32 = 0
  ) {
    self.type = type
    self.head = head
    self.key = key
    self.value = value
    self.info = info
    self.ssaCRC = ssaCRC
    self.blockCRC = blockCRC
  }

  func encode(into w: inout ByteWriter, at o: Int) {
    w.put(type, at: o + Offset.type)
    w.put(head, at: o + Offset.head)
    w.put(key, at: o + Offset.key)
    w.put(value, at: o + Offset.value)
    w.put(info, at: o + Offset.info)
    w.put(ssaCRC, at: o + Offset.ssaCRC)
    w.put(blockCRC, at: o + Offset.blockCRC)
  }

  static func decode(_ r: ByteReader, _ o: Int) -> RollForwardEntry {
    var e = RollForwardEntry(
      type: r.u8(o + Offset.type), head: r.u8(o + Offset.head), key: r.u32(o + Offset.key),
      value: r.u32(o + Offset.value), info: r.u32(o + Offset.info),
      ssaCRC: r.u32(o + Offset.ssaCRC), blockCRC: r.u32(o + Offset.blockCRC))
    e.reserved = r.u16(o + Offset.reserved)
    return e
  }
}

extension RollForwardEntry: OnDiskLayout {
  public static let size = 24
  public enum Offset {
    public static let type = 0x00, head = 0x01, reserved = 0x02, key = 0x04, value = 0x08
    public static let info = 0x0C, ssaCRC = 0x10, blockCRC = 0x14
  }
  public static let fields = [
    FieldSpec("type", Offset.type, 1), FieldSpec("head", Offset.head, 1),
    FieldSpec("reserved", Offset.reserved, 2), FieldSpec("key", Offset.key, 4),
    FieldSpec("value", Offset.value, 4), FieldSpec("info", Offset.info, 4),
    FieldSpec("ssa_crc", Offset.ssaCRC, 4), FieldSpec("block_crc", Offset.blockCRC, 4),
  ]
}

/// A roll-forward record block (FORMAT.md 13.7): what an `fsync` wrote instead of a checkpoint.
/// The block header carries magic "RRFW", the `cp_ver` of the checkpoint the chain follows, `owner`
/// = the block's sequence number in the chain (0 at `rf_next`), `count` = entries; then:
///
///     0x20 u32 next           block reserved for the following record
///     0x24 u32 next_free_nid  0x28 u32[4] inode_count (per head; zero past n_heads)
///     0x38 u32 flags (1 LAST: the last block of its group)   0x3C u32 zero
///     0x40 RollForwardEntry[168]  first `count` used, rest zero
public struct RollForwardRecord: Equatable, Sendable {
  public static let flagLast: UInt32 = 1
  public static let capacity = (RoseLayout.blockSize - Offset.entries) / RollForwardEntry.size

  public var cpVer: UInt64
  public var sequence: UInt32
  public var next: UInt32
  public var nextFreeNid: UInt32
  public var inodeCount: [UInt32]
  public var flags: UInt32
  public var entries: [RollForwardEntry]

  public init(
    cpVer: UInt64, sequence: UInt32, next: UInt32, nextFreeNid: UInt32, inodeCount: [UInt32],
    flags: UInt32, entries: [RollForwardEntry]
  ) {
    self.cpVer = cpVer
    self.sequence = sequence
    self.next = next
    self.nextFreeNid = nextFreeNid
    self.inodeCount = inodeCount
    self.flags = flags
    self.entries = entries
  }

  public var isLast: Bool { flags & Self.flagLast != 0 }

  /// The block, sealed for address `addr` (at most `capacity` entries are stored).
  public func encode(addr: UInt32, checksum: RoseChecksum) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    let list = entries.prefix(Self.capacity)
    out.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      BlockHeader(
        magic: Magic.rollForward, cpVer: cpVer, blkaddr: addr, owner: sequence,
        count: UInt16(list.count)
      ).encode(into: &w)
      w.put(next, at: Offset.next)
      w.put(nextFreeNid, at: Offset.nextFreeNid)
      for (i, c) in inodeCount.prefix(RoseLayout.maxHeads).enumerated() {
        w.put(c, at: Offset.inodeCount + 4 * i)
      }
      w.put(flags, at: Offset.flags)
      for (i, e) in list.enumerated() {
        e.encode(into: &w, at: Offset.entries + i * RollForwardEntry.size)
      }
      let crc = checksum.checksum(
        UnsafeRawBufferPointer(buf), zeroingFieldAt: BlockHeader.crcOffset)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: BlockHeader.crcOffset, as: UInt32.self)
    }
    return out
  }

  /// Decodes the block read at `addr`; nil unless its magic, checksum and `blkaddr` are right and
  /// `count` fits (the end of a chain: a block never written as a record, or a torn one).
  public static func decode(_ bytes: [UInt8], addr: UInt32, checksum: RoseChecksum)
    -> RollForwardRecord?
  {
    guard bytes.count == RoseLayout.blockSize else { return nil }
    let r = ByteReader(bytes)
    let h = BlockHeader.decode(r)
    guard h.magic == Magic.rollForward, h.blkaddr == addr, Int(h.count) <= capacity else {
      return nil
    }
    let crc = bytes.withUnsafeBytes { checksum.checksum($0, zeroingFieldAt: BlockHeader.crcOffset) }
    guard crc == h.crc else { return nil }
    return RollForwardRecord(
      cpVer: h.cpVer, sequence: h.owner, next: r.u32(Offset.next),
      nextFreeNid: r.u32(Offset.nextFreeNid),
      inodeCount: (0..<RoseLayout.maxHeads).map { r.u32(Offset.inodeCount + 4 * $0) },
      flags: r.u32(Offset.flags),
      entries: (0..<Int(h.count)).map {
        RollForwardEntry.decode(r, Offset.entries + $0 * RollForwardEntry.size)
      })
  }
}

extension RollForwardRecord: OnDiskLayout {
  public static let size = RoseLayout.blockSize
  public enum Offset {
    public static let header = 0x00, next = 0x20, nextFreeNid = 0x24, inodeCount = 0x28
    public static let flags = 0x38, reserved = 0x3C, entries = 0x40
  }
  public static let fields = [
    FieldSpec("header", Offset.header, BlockHeader.size), FieldSpec("next", Offset.next, 4),
    FieldSpec("next_free_nid", Offset.nextFreeNid, 4),
    FieldSpec("inode_count", Offset.inodeCount, 4 * RoseLayout.maxHeads),
    FieldSpec("flags", Offset.flags, 4), FieldSpec("reserved", Offset.reserved, 4),
    FieldSpec("entries", Offset.entries, 168 * RollForwardEntry.size),
  ]
}

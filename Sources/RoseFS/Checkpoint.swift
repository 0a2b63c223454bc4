/// Where a meta-file's blocks are (FORMAT.md, "Meta-files"): 16 bytes.
///
///     0x0 u32 root     depth 0: the only content block (0 if none); depth d > 0: a map-index block
///     0x4 u32 nblocks  content blocks of the meta-file
///     0x8 u8  depth    levels of map-index blocks above the content blocks (0..3)
///     0x9 u8[7] zero
public struct MetaRoot: Hashable, Sendable {
  public var root: UInt32 = 0
  public var nblocks: UInt32 = 0
  public var depth: UInt8 = 0
  public init(root: UInt32 = 0, nblocks: UInt32 = 0, depth: UInt8 = 0) {
    self.root = root
    self.nblocks = nblocks
    self.depth = depth
  }
  func encode(into w: inout ByteWriter) { encode(into: &w, at: w.pos) }
  func encode(into w: inout ByteWriter, at base: Int) {
    w.put(root, at: base + Offset.root)
    w.put(nblocks, at: base + Offset.nblocks)
    w.put(depth, at: base + Offset.depth)
    w.pos = base + Self.size
  }
  static func decode(_ r: ByteReader, _ o: Int) -> MetaRoot {
    MetaRoot(
      root: r.u32(o + Offset.root), nblocks: r.u32(o + Offset.nblocks),
      depth: r.u8(o + Offset.depth))
  }
}

extension MetaRoot: OnDiskLayout {
  public static let size = 16
  public enum Offset {
    public static let root = 0x0, nblocks = 0x4, depth = 0x8, reserved = 0x9
  }
  public static let fields = [
    FieldSpec("root", Offset.root, 4), FieldSpec("nblocks", Offset.nblocks, 4),
    FieldSpec("depth", Offset.depth, 1), FieldSpec("reserved", Offset.reserved, 7),
  ]
}

/// A log's append point (8 bytes): segment number in the main area, next free block in it, log type.
public struct LogHead: Equatable, Sendable {
  public static let node: UInt8 = 1
  public static let data: UInt8 = 2
  public static let tail: UInt8 = 3
  public var segment: UInt32
  public var blockOffset: UInt16
  public var type: UInt8
  /// The byte after `type`, zero in a valid checkpoint (kept so that fsck can say so).
  public var reserved: UInt8 = 0

  func encode(into w: inout ByteWriter, at base: Int) {
    w.put(segment, at: base + Offset.segno)
    w.put(blockOffset, at: base + Offset.blkoff)
    w.put(type, at: base + Offset.type)
  }
  static func decode(_ r: ByteReader, _ o: Int) -> LogHead {
    LogHead(
      segment: r.u32(o + Offset.segno), blockOffset: r.u16(o + Offset.blkoff),
      type: r.u8(o + Offset.type), reserved: r.u8(o + Offset.reserved))
  }
}

extension LogHead: OnDiskLayout {
  public static let size = 8
  public enum Offset {
    public static let segno = 0x0, blkoff = 0x4, type = 0x6, reserved = 0x7
  }
  public static let fields = [
    FieldSpec("segno", Offset.segno, 4), FieldSpec("blkoff", Offset.blkoff, 2),
    FieldSpec("type", Offset.type, 1), FieldSpec("reserved", Offset.reserved, 1),
  ]
}

/// One subvolume head (128 bytes): a writable root with its own NAT and validity bitmap.
///
///     0x00 u32 flags      1 ACTIVE, 2 READONLY, 4 VBM_SAME_AS (bits 8..15: the head whose VBM is used)
///     0x04 u32 root_ino   0x08 u64 created_cp_ver   0x10 u64 valid_blocks   0x18 u32 inode_count
///     0x1C u32 parent_head (0xFFFFFFFF: none)        0x20 u8[16] name (NUL padded)
///     0x30 MetaRoot nat   0x40 MetaRoot vbm          0x50..0x80 zero
public struct Head: Equatable, Sendable {
  public static let active: UInt32 = 1
  public static let readOnly: UInt32 = 2
  public static let vbmSameAs: UInt32 = 4
  /// Bits 8..15 of `flags`: the head whose VBM a VBM_SAME_AS head uses.
  public static let vbmSourceMask: UInt32 = 0xFF00
  /// `parent_head` of a head that is nobody's snapshot.
  public static let noParent: UInt32 = 0xFFFF_FFFF
  public var flags: UInt32
  public var rootIno: UInt32
  public var createdCpVer: UInt64
  public var validBlocks: UInt64
  public var inodeCount: UInt32
  public var parentHead: UInt32
  public var name: [UInt8]
  public var nat: MetaRoot
  public var vbm: MetaRoot

  func encode(into w: inout ByteWriter, at base: Int) {
    w.put(flags, at: base + Offset.flags)
    w.put(rootIno, at: base + Offset.rootIno)
    w.put(createdCpVer, at: base + Offset.createdCpVer)
    w.put(validBlocks, at: base + Offset.validBlocks)
    w.put(inodeCount, at: base + Offset.inodeCount)
    w.put(parentHead, at: base + Offset.parentHead)
    w.put(bytes: name, paddedTo: 16, at: base + Offset.name)
    nat.encode(into: &w, at: base + Offset.nat)
    vbm.encode(into: &w, at: base + Offset.vbm)
  }
  static func decode(_ r: ByteReader, _ o: Int) -> Head {
    Head(
      flags: r.u32(o + Offset.flags), rootIno: r.u32(o + Offset.rootIno),
      createdCpVer: r.u64(o + Offset.createdCpVer), validBlocks: r.u64(o + Offset.validBlocks),
      inodeCount: r.u32(o + Offset.inodeCount), parentHead: r.u32(o + Offset.parentHead),
      name: r.slice(o + Offset.name, 16), nat: MetaRoot.decode(r, o + Offset.nat),
      vbm: MetaRoot.decode(r, o + Offset.vbm))
  }

  public var isActive: Bool { flags & Head.active != 0 }
  /// The head whose validity bitmap this head uses, or nil if it has its own.
  public var vbmSource: Int? { flags & Head.vbmSameAs != 0 ? Int((flags >> 8) & 0xFF) : nil }
  public var nameString: String { String(decoding: name.prefix { $0 != 0 }, as: UTF8.self) }
}

extension Head: OnDiskLayout {
  public static let size = 128
  /// Field offsets (FORMAT.md section 4, "Head").
  public enum Offset {
    public static let flags = 0x00, rootIno = 0x04, createdCpVer = 0x08, validBlocks = 0x10
    public static let inodeCount = 0x18, parentHead = 0x1C, name = 0x20, nat = 0x30, vbm = 0x40
    public static let reserved = 0x50
  }
  public static let fields = [
    FieldSpec("flags", Offset.flags, 4), FieldSpec("root_ino", Offset.rootIno, 4),
    FieldSpec("created_cp_ver", Offset.createdCpVer, 8),
    FieldSpec("valid_blocks", Offset.validBlocks, 8),
    FieldSpec("inode_count", Offset.inodeCount, 4),
    FieldSpec("parent_head", Offset.parentHead, 4), FieldSpec("name", Offset.name, 16),
    FieldSpec("nat", Offset.nat, MetaRoot.size), FieldSpec("vbm", Offset.vbm, MetaRoot.size),
    FieldSpec("reserved", Offset.reserved, 48),
  ]
}

/// One NAT journal entry (12 bytes): `nid`'s address in head `head`, overriding that head's NAT.
public enum NatJournalEntry: OnDiskLayout {
  public static let size = 12
  public enum Offset {
    public static let nid = 0x0, blkaddr = 0x4, head = 0x8, reserved = 0x9
  }
  public static let fields = [
    FieldSpec("nid", Offset.nid, 4), FieldSpec("blkaddr", Offset.blkaddr, 4),
    FieldSpec("head", Offset.head, 1), FieldSpec("reserved", Offset.reserved, 3),
  ]
}

/// A checkpoint slot: one 4096-byte block at block 2 or 3. The valid checkpoint is the slot with a
/// good checksum and the higher cp_ver.
///
///     0x000 u32 magic "RSCP"   0x004 u32 crc (whole block, field zero)   0x008 u64 cp_ver
///     0x010 u64 user_block_count   0x018 u64 valid_block_count   0x020 u32 free_segments
///     0x024 u32 flags (1 UMOUNT, 2 FRESH)   0x028 u32 next_free_nid   0x02C u32 nat_journal_count
///     0x030 LogHead[3] (u32 segno, u16 blkoff, u8 type, u8 zero)      0x048 u32 rf_next   0x04C u32 zero
///     0x050 MetaRoot ssa   0x060 u8 n_heads   0x061 u8 default_head   0x062..0x080 zero
///     0x080 Head[4] (128 B each)   0x280 NAT journal: {u32 nid, u32 blkaddr, u8 head, u8[3] zero} x 282
public struct Checkpoint: Equatable, Sendable {
  public static let flagUmount: UInt32 = 1
  public static let flagFresh: UInt32 = 2
  public static let natJournalOffset = Offset.natJournal
  /// 282 entries of 12 bytes end at 0xFB8; 0xFB8..0x1000 is reserved (zero) for later fields.
  public static let natJournalCapacity = 282
  public static let natJournalEntrySize = NatJournalEntry.size
  public static let reservedTail = Offset.reservedTail

  public var cpVer: UInt64
  public var userBlockCount: UInt64
  public var validBlockCount: UInt64
  public var freeSegments: UInt32
  public var flags: UInt32
  public var nextFreeNid: UInt32
  public var logs: [LogHead]
  /// The block a driver reserved for the first roll-forward record after this checkpoint
  /// (FORMAT.md 13.7); 0: no chain (the packer, a clean unmount).
  public var rfNext: UInt32 = 0
  public var ssa: MetaRoot
  public var defaultHead: UInt8
  public var heads: [Head]
  public var natJournal: [(nid: UInt32, blkaddr: UInt32, head: UInt8)] = []
  /// `n_heads` and `nat_journal_count` as stored; `decode` keeps at most 4 heads and 282 entries,
  /// so that fsck can report a count out of range. The encoder writes `heads.count` and
  /// `natJournal.count`.
  public var storedHeadCount: UInt8 = 0
  public var storedJournalCount: UInt32 = 0

  public static func == (a: Checkpoint, b: Checkpoint) -> Bool {
    a.cpVer == b.cpVer && a.heads == b.heads && a.ssa == b.ssa && a.logs == b.logs
      && a.nextFreeNid == b.nextFreeNid && a.flags == b.flags && a.rfNext == b.rfNext
  }

  public func encode(checksum: RoseChecksum) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Self.size)
    out.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      typealias O = Offset
      w.put(Magic.checkpoint, at: O.magic)
      w.put(cpVer, at: O.cpVer)
      w.put(userBlockCount, at: O.userBlockCount)
      w.put(validBlockCount, at: O.validBlockCount)
      w.put(freeSegments, at: O.freeSegments)
      w.put(flags, at: O.flags)
      w.put(nextFreeNid, at: O.nextFreeNid)
      w.put(rfNext, at: O.rfNext)
      let journal = natJournal.prefix(Self.natJournalCapacity)
      w.put(UInt32(journal.count), at: O.natJournalCount)
      for i in 0..<RoseLayout.nrLogs {
        let l = i < logs.count ? logs[i] : LogHead(segment: 0, blockOffset: 0, type: 0)
        l.encode(into: &w, at: O.logs + i * LogHead.size)
      }
      ssa.encode(into: &w, at: O.ssa)
      w.put(UInt8(heads.count), at: O.nHeads)
      w.put(defaultHead, at: O.defaultHead)
      for (i, h) in heads.prefix(RoseLayout.maxHeads).enumerated() {
        h.encode(into: &w, at: O.heads + i * Head.size)
      }
      for (i, e) in journal.enumerated() {
        let o = O.natJournal + i * NatJournalEntry.size
        w.put(e.nid, at: o + NatJournalEntry.Offset.nid)
        w.put(e.blkaddr, at: o + NatJournalEntry.Offset.blkaddr)
        w.put(e.head, at: o + NatJournalEntry.Offset.head)
      }
      let crc = checksum.checksum(UnsafeRawBufferPointer(buf), zeroingFieldAt: O.crc)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: O.crc, as: UInt32.self)
    }
    return out
  }

  /// Decodes a slot; nil if its magic or checksum is wrong (a torn or never-written slot).
  public static func decode(_ bytes: [UInt8], checksum: RoseChecksum) -> Checkpoint? {
    let r = ByteReader(bytes)
    typealias O = Offset
    guard bytes.count == Self.size, r.u32(O.magic) == Magic.checkpoint else { return nil }
    let crc = bytes.withUnsafeBytes { checksum.checksum($0, zeroingFieldAt: O.crc) }
    guard crc == r.u32(O.crc) else { return nil }
    let logs = (0..<RoseLayout.nrLogs).map { LogHead.decode(r, O.logs + $0 * LogHead.size) }
    let storedHeads = r.u8(O.nHeads)
    let heads = (0..<min(Int(storedHeads), RoseLayout.maxHeads)).map {
      Head.decode(r, O.heads + $0 * Head.size)
    }
    var cp = Checkpoint(
      cpVer: r.u64(O.cpVer), userBlockCount: r.u64(O.userBlockCount),
      validBlockCount: r.u64(O.validBlockCount), freeSegments: r.u32(O.freeSegments),
      flags: r.u32(O.flags), nextFreeNid: r.u32(O.nextFreeNid), logs: logs,
      ssa: MetaRoot.decode(r, O.ssa), defaultHead: r.u8(O.defaultHead), heads: heads)
    cp.storedHeadCount = storedHeads
    cp.rfNext = r.u32(O.rfNext)
    cp.storedJournalCount = r.u32(O.natJournalCount)
    for i in 0..<min(Int(cp.storedJournalCount), natJournalCapacity) {
      let o = O.natJournal + i * NatJournalEntry.size
      cp.natJournal.append(
        (
          r.u32(o + NatJournalEntry.Offset.nid), r.u32(o + NatJournalEntry.Offset.blkaddr),
          r.u8(o + NatJournalEntry.Offset.head)
        ))
    }
    return cp
  }
}

extension Checkpoint: OnDiskLayout {
  public static let size = RoseLayout.blockSize
  /// Field offsets (FORMAT.md section 4).
  public enum Offset {
    public static let magic = 0x000, crc = 0x004, cpVer = 0x008, userBlockCount = 0x010
    public static let validBlockCount = 0x018, freeSegments = 0x020, flags = 0x024
    public static let nextFreeNid = 0x028, natJournalCount = 0x02C, logs = 0x030
    public static let rfNext = 0x048, reserved04C = 0x04C, ssa = 0x050, nHeads = 0x060,
      defaultHead = 0x061
    public static let reserved062 = 0x062, heads = 0x080, natJournal = 0x280
    public static let reservedTail = natJournal + 282 * NatJournalEntry.size
  }
  public static let fields: [FieldSpec] = {
    typealias O = Offset
    return [
      FieldSpec("magic", O.magic, 4), FieldSpec("crc", O.crc, 4), FieldSpec("cp_ver", O.cpVer, 8),
      FieldSpec("user_block_count", O.userBlockCount, 8),
      FieldSpec("valid_block_count", O.validBlockCount, 8),
      FieldSpec("free_segments", O.freeSegments, 4), FieldSpec("flags", O.flags, 4),
      FieldSpec("next_free_nid", O.nextFreeNid, 4),
      FieldSpec("nat_journal_count", O.natJournalCount, 4),
      FieldSpec("logs", O.logs, RoseLayout.nrLogs * LogHead.size),
      FieldSpec("rf_next", O.rfNext, 4), FieldSpec("reserved", O.reserved04C, 4),
      FieldSpec("ssa", O.ssa, MetaRoot.size),
      FieldSpec("n_heads", O.nHeads, 1), FieldSpec("default_head", O.defaultHead, 1),
      FieldSpec("reserved", O.reserved062, 30),
      FieldSpec("heads", O.heads, RoseLayout.maxHeads * Head.size),
      FieldSpec("nat_journal", O.natJournal, natJournalCapacity * NatJournalEntry.size),
      FieldSpec("reserved", O.reservedTail, RoseLayout.blockSize - O.reservedTail),
    ]
  }()
}

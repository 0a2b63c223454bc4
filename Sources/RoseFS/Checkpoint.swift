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
  func encode(into w: inout ByteWriter) {
    w.put(root)
    w.put(nblocks)
    w.put(depth)
    w.put(UInt8(0))
    w.put(UInt16(0))
    w.put(UInt32(0))
  }
  static func decode(_ r: ByteReader, _ o: Int) -> MetaRoot {
    MetaRoot(root: r.u32(o), nblocks: r.u32(o + 4), depth: r.u8(o + 8))
  }
}

/// A log's append point (8 bytes): segment number in the main area, next free block in it, log type.
public struct LogHead: Equatable, Sendable {
  public static let node: UInt8 = 1
  public static let data: UInt8 = 2
  public static let tail: UInt8 = 3
  public var segment: UInt32
  public var blockOffset: UInt16
  public var type: UInt8
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
  public var flags: UInt32
  public var rootIno: UInt32
  public var createdCpVer: UInt64
  public var validBlocks: UInt64
  public var inodeCount: UInt32
  public var parentHead: UInt32
  public var name: [UInt8]
  public var nat: MetaRoot
  public var vbm: MetaRoot

  public var isActive: Bool { flags & Head.active != 0 }
  /// The head whose validity bitmap this head uses, or nil if it has its own.
  public var vbmSource: Int? { flags & Head.vbmSameAs != 0 ? Int((flags >> 8) & 0xFF) : nil }
  public var nameString: String { String(decoding: name.prefix { $0 != 0 }, as: UTF8.self) }
}

/// A checkpoint slot: one 4096-byte block at block 2 or 3. The valid checkpoint is the slot with a
/// good checksum and the higher cp_ver.
///
///     0x000 u32 magic "RSCP"   0x004 u32 crc (whole block, field zero)   0x008 u64 cp_ver
///     0x010 u64 user_block_count   0x018 u64 valid_block_count   0x020 u32 free_segments
///     0x024 u32 flags (1 UMOUNT, 2 FRESH)   0x028 u32 next_free_nid   0x02C u32 nat_journal_count
///     0x030 LogHead[3] (u32 segno, u16 blkoff, u8 type, u8 zero)      0x048 u8[8] zero
///     0x050 MetaRoot ssa   0x060 u8 n_heads   0x061 u8 default_head   0x062..0x080 zero
///     0x080 Head[4] (128 B each)   0x280 NAT journal: {u32 nid, u32 blkaddr, u8 head, u8[3] zero} x 282
public struct Checkpoint: Equatable, Sendable {
  public static let flagUmount: UInt32 = 1
  public static let flagFresh: UInt32 = 2
  public static let natJournalOffset = 0x280
  public static let natJournalCapacity = (RoseLayout.blockSize - natJournalOffset) / 12

  public var cpVer: UInt64
  public var userBlockCount: UInt64
  public var validBlockCount: UInt64
  public var freeSegments: UInt32
  public var flags: UInt32
  public var nextFreeNid: UInt32
  public var logs: [LogHead]
  public var ssa: MetaRoot
  public var defaultHead: UInt8
  public var heads: [Head]
  public var natJournal: [(nid: UInt32, blkaddr: UInt32, head: UInt8)] = []

  public static func == (a: Checkpoint, b: Checkpoint) -> Bool {
    a.cpVer == b.cpVer && a.heads == b.heads && a.ssa == b.ssa && a.logs == b.logs
      && a.nextFreeNid == b.nextFreeNid && a.flags == b.flags
  }

  public func encode(checksum: RoseChecksum) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    out.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      w.put(Magic.checkpoint)
      w.put(UInt32(0))
      w.put(cpVer)
      w.put(userBlockCount)
      w.put(validBlockCount)
      w.put(freeSegments)
      w.put(flags)
      w.put(nextFreeNid)
      w.put(UInt32(natJournal.count))
      for i in 0..<3 {
        let l = i < logs.count ? logs[i] : LogHead(segment: 0, blockOffset: 0, type: 0)
        w.put(l.segment)
        w.put(l.blockOffset)
        w.put(l.type)
        w.put(UInt8(0))
      }
      w.pos = 0x50
      ssa.encode(into: &w)
      w.put(UInt8(heads.count))
      w.put(defaultHead)
      for (i, h) in heads.enumerated() {
        w.pos = 0x80 + i * 128
        w.put(h.flags)
        w.put(h.rootIno)
        w.put(h.createdCpVer)
        w.put(h.validBlocks)
        w.put(h.inodeCount)
        w.put(h.parentHead)
        w.put(bytes: h.name, paddedTo: 16)
        h.nat.encode(into: &w)
        h.vbm.encode(into: &w)
      }
      w.pos = Self.natJournalOffset
      for e in natJournal.prefix(Self.natJournalCapacity) {
        w.put(e.nid)
        w.put(e.blkaddr)
        w.put(e.head)
        w.put(UInt8(0))
        w.put(UInt16(0))
      }
      let crc = checksum.checksum(UnsafeRawBufferPointer(buf), zeroingFieldAt: 4)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
    }
    return out
  }

  /// Decodes a slot; nil if its magic or checksum is wrong (a torn or never-written slot).
  public static func decode(_ bytes: [UInt8], checksum: RoseChecksum) -> Checkpoint? {
    let r = ByteReader(bytes)
    guard bytes.count == RoseLayout.blockSize, r.u32(0) == Magic.checkpoint else { return nil }
    let crc = bytes.withUnsafeBytes { checksum.checksum($0, zeroingFieldAt: 4) }
    guard crc == r.u32(4) else { return nil }
    var logs: [LogHead] = []
    for i in 0..<3 {
      let o = 0x30 + i * 8
      logs.append(LogHead(segment: r.u32(o), blockOffset: r.u16(o + 4), type: r.u8(o + 6)))
    }
    let n = Int(min(r.u8(0x60), UInt8(RoseLayout.maxHeads)))
    var heads: [Head] = []
    for i in 0..<n {
      let o = 0x80 + i * 128
      heads.append(
        Head(
          flags: r.u32(o), rootIno: r.u32(o + 4), createdCpVer: r.u64(o + 8),
          validBlocks: r.u64(o + 0x10), inodeCount: r.u32(o + 0x18), parentHead: r.u32(o + 0x1C),
          name: r.slice(o + 0x20, 16), nat: MetaRoot.decode(r, o + 0x30),
          vbm: MetaRoot.decode(r, o + 0x40)))
    }
    var cp = Checkpoint(
      cpVer: r.u64(8), userBlockCount: r.u64(0x10), validBlockCount: r.u64(0x18),
      freeSegments: r.u32(0x20), flags: r.u32(0x24), nextFreeNid: r.u32(0x28), logs: logs,
      ssa: MetaRoot.decode(r, 0x50), defaultHead: r.u8(0x61), heads: heads)
    let jn = min(Int(r.u32(0x2C)), natJournalCapacity)
    for i in 0..<jn {
      let o = natJournalOffset + i * 12
      cp.natJournal.append((r.u32(o), r.u32(o + 4), r.u8(o + 8)))
    }
    return cp
  }
}

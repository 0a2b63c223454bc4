/// The 32-byte header at the start of every metadata block except inode pages (FORMAT.md, "Block header").
///
///     0x00 u32 magic     kind of block
///     0x04 u32 crc       checksum of the whole 4096-byte block with this field zero
///     0x08 u64 cpVer     checkpoint version the block was written under
///     0x10 u32 blkaddr   the block's own address (catches misdirected writes)
///     0x14 u32 owner     node: its nid; meta-file block: its index in its level
///     0x18 u16 count     records in the block
///     0x1A u8  level     B+ tree / map level, 0 = leaf
///     0x1B u8  subtype   meta-file type for map-index blocks, else 0
///     0x1C u32 aux       tree nodes: the ino that owns the tree; meta blocks: the head index
public struct BlockHeader: Equatable, Sendable {
  public var magic: UInt32
  public var crc: UInt32 = 0
  public var cpVer: UInt64
  public var blkaddr: UInt32
  public var owner: UInt32
  public var count: UInt16
  public var level: UInt8
  public var subtype: UInt8
  public var aux: UInt32

  public init(
    magic: UInt32, cpVer: UInt64, blkaddr: UInt32, owner: UInt32, count: UInt16, level: UInt8 = 0,
    subtype: UInt8 = 0, aux: UInt32 = 0
  ) {
    self.magic = magic
    self.cpVer = cpVer
    self.blkaddr = blkaddr
    self.owner = owner
    self.count = count
    self.level = level
    self.subtype = subtype
    self.aux = aux
  }

  public func encode(into b: inout ByteWriter) {
    let base = b.pos
    b.put(magic, at: base + Offset.magic)
    b.put(crc, at: base + Offset.crc)
    b.put(cpVer, at: base + Offset.cpVer)
    b.put(blkaddr, at: base + Offset.blkaddr)
    b.put(owner, at: base + Offset.owner)
    b.put(count, at: base + Offset.count)
    b.put(level, at: base + Offset.level)
    b.put(subtype, at: base + Offset.subtype)
    b.put(aux, at: base + Offset.aux)
  }

  public static func decode(_ r: ByteReader) -> BlockHeader {
    var h = BlockHeader(
      magic: r.u32(Offset.magic), cpVer: r.u64(Offset.cpVer), blkaddr: r.u32(Offset.blkaddr),
      owner: r.u32(Offset.owner), count: r.u16(Offset.count), level: r.u8(Offset.level),
      subtype: r.u8(Offset.subtype), aux: r.u32(Offset.aux))
    h.crc = r.u32(Offset.crc)
    return h
  }

  public static func decode(_ bytes: [UInt8]) -> BlockHeader { decode(ByteReader(bytes)) }

  public static let crcOffset = Offset.crc
}

extension BlockHeader: OnDiskLayout {
  public static let size = RoseLayout.headerSize
  /// Field offsets (FORMAT.md section 5).
  public enum Offset {
    public static let magic = 0x00, crc = 0x04, cpVer = 0x08, blkaddr = 0x10, owner = 0x14
    public static let count = 0x18, level = 0x1A, subtype = 0x1B, aux = 0x1C
  }
  public static let fields = [
    FieldSpec("magic", Offset.magic, 4), FieldSpec("crc", Offset.crc, 4),
    FieldSpec("cp_ver", Offset.cpVer, 8), FieldSpec("blkaddr", Offset.blkaddr, 4),
    FieldSpec("owner", Offset.owner, 4), FieldSpec("count", Offset.count, 2),
    FieldSpec("level", Offset.level, 1), FieldSpec("subtype", Offset.subtype, 1),
    FieldSpec("aux", Offset.aux, 4),
  ]
}

/// Block magics, as little-endian u32 of four ASCII bytes.
public enum Magic {
  public static func fourCC(_ s: StaticString) -> UInt32 {
    let p = s.utf8Start
    return UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24
  }
  public static let superblock = fourCC("ROSE")
  public static let checkpoint = fourCC("RSCP")
  public static let nat = fourCC("RNAT")
  public static let vbm = fourCC("RVBM")
  public static let ssa = fourCC("RSSA")
  public static let mapIndex = fourCC("RMAP")
  public static let dirNode = fourCC("RDIR")
  public static let extentNode = fourCC("REXT")
  public static let xattrNode = fourCC("RXAT")
  public static let rollForward = fourCC("RRFW")
}

/// Little-endian writer over a caller-owned buffer (a reused staging block): no allocation per field.
public struct ByteWriter {
  public let buf: UnsafeMutableRawBufferPointer
  public var pos: Int
  public init(_ buf: UnsafeMutableRawBufferPointer, at pos: Int = 0) {
    self.buf = buf
    self.pos = pos
  }
  @inline(__always) public mutating func put<T: FixedWidthInteger>(_ v: T) {
    buf.storeBytes(of: v.littleEndian, toByteOffset: pos, as: T.self)
    pos += MemoryLayout<T>.size
  }
  public mutating func put(bytes: [UInt8]) {
    precondition(
      pos + bytes.count <= buf.count, "ByteWriter overflow: \(pos)+\(bytes.count) > \(buf.count)")
    bytes.withUnsafeBytes { src in
      if src.count > 0 {
        (buf.baseAddress! + pos).copyMemory(from: src.baseAddress!, byteCount: src.count)
      }
    }
    pos += bytes.count
  }
  public mutating func put(bytes: [UInt8], paddedTo n: Int) {
    let start = pos
    put(bytes: Array(bytes.prefix(n)))
    pos = start + n
  }
}

/// Little-endian reads at absolute offsets of a block held in an array.
public struct ByteReader {
  public let bytes: [UInt8]
  public let base: Int
  public init(_ bytes: [UInt8], base: Int = 0) {
    self.bytes = bytes
    self.base = base
  }
  // Each width is assembled from bytes of the raw buffer rather than through a generic
  // `loadUnaligned<T>`: fsck and the readers call these millions of times, and an unspecialized
  // generic (every debug build, where the tests run) costs a metadata lookup per call. Release
  // builds fold the shifts into one load.
  @inline(__always) func at(_ o: Int, _ width: Int) -> Int? {
    let at = base + o
    return at >= 0 && at + width <= bytes.count ? at : nil
  }
  public func u8(_ o: Int) -> UInt8 {
    guard let at = at(o, 1) else { return 0 }
    return bytes[at]
  }
  public func u16(_ o: Int) -> UInt16 {
    guard let at = at(o, 2) else { return 0 }
    return bytes.withUnsafeBytes { p in UInt16(p[at]) | UInt16(p[at + 1]) << 8 }
  }
  public func u32(_ o: Int) -> UInt32 {
    guard let at = at(o, 4) else { return 0 }
    return bytes.withUnsafeBytes { p in
      UInt32(p[at]) | UInt32(p[at + 1]) << 8 | UInt32(p[at + 2]) << 16 | UInt32(p[at + 3]) << 24
    }
  }
  public func u64(_ o: Int) -> UInt64 {
    guard at(o, 8) != nil else { return 0 }
    return UInt64(u32(o)) | UInt64(u32(o + 4)) << 32
  }
  public func i64(_ o: Int) -> Int64 { Int64(bitPattern: u64(o)) }
  public func slice(_ o: Int, _ n: Int) -> [UInt8] {
    let at = base + o
    guard at >= 0, n >= 0, at + n <= bytes.count else { return [] }
    return Array(bytes[at..<at + n])
  }
}

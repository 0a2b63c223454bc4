/// One inode, every field (FORMAT.md section 7), at the offsets of `SlotOffset`: the one encoder and
/// decoder of inodes, used by the packer, the reader, fsck and the engine. An inode takes `nslots`
/// consecutive 32-byte slots of its page (3 to 128); a 96-byte core, then `i_u` to the end of the
/// last slot.
public struct InodeRecord: Equatable, Sendable {
  public var ino: UInt32
  public var mode: UInt16
  public var flags: UInt16
  public var uid: UInt32
  public var gid: UInt32
  public var nlink: UInt32
  public var size: UInt64
  public var atime: Timestamp
  public var mtime: Timestamp
  public var ctime: Timestamp
  public var parent: UInt32
  public var xattrNid: UInt32
  /// TAIL: the tail block. Character and block devices keep `rdev_major` here (`rdevMajor`).
  public var tailBlk: UInt32
  /// DIRTREE, EXTTREE: the root nid. Character and block devices keep `rdev_minor` here.
  public var treeRoot: UInt32
  /// 4 KiB blocks of the file's own data extents (stat's `st_blocks` is 8 times this: `blocks`).
  public var dataBlocks: UInt32
  public var inlineLen: UInt16
  public var xattrLen: UInt16
  public var tailOff: UInt16
  /// Slots the inode takes (3...128, never past the end of its page).
  public var nslots: UInt8
  public var treeDepth: UInt8
  public var crc: UInt32 = 0
  /// The `i_u` area: `nslots * 32 - 0x60` bytes.
  public var inlineArea: [UInt8]

  public init(
    ino: UInt32, mode: UInt16, flags: UInt16 = 0, uid: UInt32 = 0, gid: UInt32 = 0,
    nlink: UInt32 = 1, size: UInt64 = 0, atime: Timestamp, mtime: Timestamp, ctime: Timestamp,
    parent: UInt32 = 0, xattrNid: UInt32 = 0, tailBlk: UInt32 = 0, treeRoot: UInt32 = 0,
    dataBlocks: UInt32 = 0, inlineLen: UInt16 = 0, xattrLen: UInt16 = 0, tailOff: UInt16 = 0,
    nslots: UInt8 = UInt8(RoseLayout.minInodeSlots), treeDepth: UInt8 = 0, crc: UInt32 = 0,
    inlineArea: [UInt8]? = nil
  ) {
    self.ino = ino
    self.mode = mode
    self.flags = flags
    self.uid = uid
    self.gid = gid
    self.nlink = nlink
    self.size = size
    self.atime = atime
    self.mtime = mtime
    self.ctime = ctime
    self.parent = parent
    self.xattrNid = xattrNid
    self.tailBlk = tailBlk
    self.treeRoot = treeRoot
    self.dataBlocks = dataBlocks
    self.inlineLen = inlineLen
    self.xattrLen = xattrLen
    self.tailOff = tailOff
    self.nslots = nslots
    self.treeDepth = treeDepth
    self.crc = crc
    self.inlineArea =
      inlineArea ?? [UInt8](repeating: 0, count: InodeSlots.capacity(nslots: Int(nslots)))
  }

  /// Bytes of `i_u` for this inode's `nslots`.
  public var inlineCapacity: Int { InodeSlots.capacity(nslots: Int(nslots)) }
  /// Bytes the inode takes in its page.
  public var byteLength: Int { Int(nslots) * RoseLayout.inodeSize }

  public var kind: FileKind? { FileKind(modeBits: UInt32(mode)) }
  public var permissions: UInt16 { mode & 0o7777 }
  public var nid: UInt32 { ino / UInt32(RoseLayout.inodesPerPage) }
  public var slot: Int { Int(ino % UInt32(RoseLayout.inodesPerPage)) }
  public var isDevice: Bool { kind == .characterDevice || kind == .blockDevice }

  public func has(_ flag: UInt16) -> Bool { flags & flag != 0 }

  /// stat's `st_blocks`: 512-byte units of the file's own data blocks.
  public var blocks: UInt64 { UInt64(dataBlocks) * 8 }
  /// Devices: the major number, stored in `tail_blk` (0 for every other type).
  public var rdevMajor: UInt32 {
    get { isDevice ? tailBlk : 0 }
    set { tailBlk = newValue }
  }
  /// Devices: the minor number, stored in `tree_root` (0 for every other type).
  public var rdevMinor: UInt32 {
    get { isDevice ? treeRoot : 0 }
    set { treeRoot = newValue }
  }
  /// TAIL: bytes of the fragment, `size % 4096` (not stored); 0 without TAIL.
  public var tailLen: UInt16 {
    has(InodeFlag.tail) ? UInt16(size % UInt64(RoseLayout.blockSize)) : 0
  }

  /// Decodes the inode `ino` of an inode page (slot `ino % 128` and the `nslots - 1` after it) and
  /// verifies its checksum and `ino` field.
  public static func decode(page: [UInt8], ino: UInt32, checksum: RoseChecksum, pageAddress: UInt32)
    throws
    -> InodeRecord
  {
    let perPage = RoseLayout.inodesPerPage
    let slot = Int(ino % UInt32(perPage))
    let base = slot * RoseLayout.inodeSize
    guard page.count == RoseLayout.blockSize else {
      throw RoseFSError.corrupt("inode page at block \(pageAddress): short read")
    }
    guard slot + RoseLayout.minInodeSlots <= perPage else {
      throw RoseFSError.corrupt(
        "ino \(ino): slot \(slot) of inode page at block \(pageAddress) leaves no room for a \(InodeCore.size)-byte inode"
      )
    }
    let r = ByteReader(page, base: base)
    let stored = r.u32(SlotOffset.crc)
    if stored == 0 && page[base..<base + InodeCore.size].allSatisfy({ $0 == 0 }) {
      throw RoseFSError.corrupt(
        "ino \(ino): slot \(slot) of inode page at block \(pageAddress) is unused")
    }
    let nslots = Int(r.u8(SlotOffset.nslots))
    guard nslots >= RoseLayout.minInodeSlots, slot + nslots <= perPage else {
      throw RoseFSError.corrupt(
        "ino \(ino): nslots \(nslots) at slot \(slot) of inode page at block \(pageAddress) is not \(RoseLayout.minInodeSlots) to \(perPage - slot)"
      )
    }
    let length = nslots * RoseLayout.inodeSize
    let computed = page.withUnsafeBytes {
      checksum.checksum(
        UnsafeRawBufferPointer(rebasing: $0[base..<base + length]),
        zeroingFieldAt: SlotOffset.crc)
    }
    guard computed == stored else {
      throw RoseFSError.corrupt(
        "ino \(ino): inode checksum mismatch in block \(pageAddress) (stored \(hex32(stored)), computed \(hex32(computed)))"
      )
    }
    let own = r.u32(SlotOffset.ino)
    guard own == ino else {
      throw RoseFSError.corrupt("ino \(ino): slot in block \(pageAddress) carries ino \(own)")
    }
    func ts(_ s: Int, _ ns: Int) -> Timestamp {
      Timestamp(seconds: r.i64(s), nanoseconds: r.u32(ns))
    }
    typealias O = SlotOffset
    return InodeRecord(
      ino: own, mode: r.u16(O.mode), flags: r.u16(O.flags), uid: r.u32(O.uid), gid: r.u32(O.gid),
      nlink: r.u32(O.nlink), size: r.u64(O.size), atime: ts(O.atime, O.atimeNs),
      mtime: ts(O.mtime, O.mtimeNs), ctime: ts(O.ctime, O.ctimeNs), parent: r.u32(O.parent),
      xattrNid: r.u32(O.xattrNid), tailBlk: r.u32(O.tailBlk), treeRoot: r.u32(O.treeRoot),
      dataBlocks: r.u32(O.blocks), inlineLen: r.u16(O.inlineLen), xattrLen: r.u16(O.xattrLen),
      tailOff: r.u16(O.tailOff), nslots: UInt8(nslots), treeDepth: r.u8(O.treeDepth), crc: stored,
      inlineArea: r.slice(O.inline, InodeSlots.capacity(nslots: nslots)))
  }

  /// The `nslots * 32` bytes of the inode with `ino` and `crc` filled in (`crc` as stored is
  /// ignored). Every field is written at its `SlotOffset`; `inlineArea` is cut or zero-padded to
  /// `inlineCapacity` bytes.
  public func encode(checksum: RoseChecksum) -> [UInt8] {
    var slot = [UInt8](repeating: 0, count: byteLength)
    encode(into: &slot, checksum: checksum)
    return slot
  }

  /// As `encode(checksum:)`, into a reused buffer (resized to `nslots * 32` bytes).
  public func encode(into slot: inout [UInt8], checksum: RoseChecksum) {
    if slot.count != byteLength { slot = [UInt8](repeating: 0, count: byteLength) }
    slot.withUnsafeMutableBytes { encode(into: $0, checksum: checksum) }
  }

  /// As `encode(checksum:)`, into the first `nslots * 32` bytes of `whole` (the bytes past them are
  /// left as they are): the packer writes each inode straight into its page.
  public func encode(into whole: UnsafeMutableRawBufferPointer, checksum: RoseChecksum) {
    let buf = UnsafeMutableRawBufferPointer(rebasing: whole[0..<byteLength])
    buf.initializeMemory(as: UInt8.self, repeating: 0)
    var w = ByteWriter(buf)
    typealias O = SlotOffset
    w.put(mode, at: O.mode)
    w.put(flags, at: O.flags)
    w.put(uid, at: O.uid)
    w.put(gid, at: O.gid)
    w.put(nlink, at: O.nlink)
    w.put(size, at: O.size)
    for (t, s, ns) in [
      (atime, O.atime, O.atimeNs), (mtime, O.mtime, O.mtimeNs), (ctime, O.ctime, O.ctimeNs),
    ] {
      w.put(t.seconds, at: s)
      w.put(t.nanoseconds, at: ns)
    }
    w.put(ino, at: O.ino)
    w.put(parent, at: O.parent)
    w.put(xattrNid, at: O.xattrNid)
    w.put(tailBlk, at: O.tailBlk)
    w.put(treeRoot, at: O.treeRoot)
    w.put(dataBlocks, at: O.blocks)
    w.put(inlineLen, at: O.inlineLen)
    w.put(xattrLen, at: O.xattrLen)
    w.put(tailOff, at: O.tailOff)
    w.put(nslots, at: O.nslots)
    w.put(treeDepth, at: O.treeDepth)
    w.put(bytes: inlineArea, paddedTo: inlineCapacity, at: O.inline)
    let crc = checksum.checksum(UnsafeRawBufferPointer(buf), zeroingFieldAt: O.crc)
    buf.storeBytes(of: crc.littleEndian, toByteOffset: O.crc, as: UInt32.self)
  }

  /// `i_u[0 ..< inline_len]`, checked against the inline area and the inline xattrs.
  public func inlineBytes() throws -> [UInt8] {
    let n = Int(inlineLen)
    guard n + Int(xattrLen) <= inlineCapacity else {
      throw RoseFSError.corrupt(
        "ino \(ino): inline_len \(inlineLen) + xattr_len \(xattrLen) exceeds \(inlineCapacity)"
      )
    }
    return Array(inlineArea[0..<n])
  }

  /// EXTENTS: the extent records in `i_u` (`inline_len / 12`; nothing stores the count).
  public var inlineExtentCount: Int { Int(inlineLen) / ExtentRecord.size }
}

/// One inode, every field (FORMAT.md section 7), at the offsets of `SlotOffset`: the one encoder and
/// decoder of inodes, used by the packer, the reader, fsck and the engine. An inode takes `nslots`
/// consecutive 256-byte slots of its page; `i_u` runs from 0x90 to the end of the last one.
public struct InodeRecord: Equatable, Sendable {
  public var ino: UInt32
  public var mode: UInt16
  public var flags: UInt16
  public var uid: UInt32
  public var gid: UInt32
  public var nlink: UInt32
  public var size: UInt64
  public var blocks: UInt64
  public var atime: Timestamp
  public var mtime: Timestamp
  public var ctime: Timestamp
  public var crtime: Timestamp
  public var generation: UInt32
  public var parent: UInt32
  public var xattrNid: UInt32
  /// 0x05C, must be zero.
  public var reserved05C: UInt32 = 0
  public var rdevMajor: UInt32
  public var rdevMinor: UInt32
  public var cpVer: UInt64
  public var tailBlk: UInt32
  public var tailOff: UInt16
  public var tailLen: UInt16
  public var inlineLen: UInt16
  public var xattrLen: UInt16
  public var nitems: UInt32
  public var crc: UInt32 = 0
  public var treeRoot: UInt32
  public var treeDepth: UInt8
  /// Slots the inode takes (1...16, never past the end of its page).
  public var nslots: UInt8 = 1
  /// 0x08E..0x090, must be zero.
  public var reserved08E: [UInt8] = [0, 0]
  /// The `i_u` area: `nslots * 256 - 0x90` bytes.
  public var inlineArea: [UInt8]

  /// Bytes of `i_u` for this inode's `nslots`.
  public var inlineCapacity: Int { InodeSlots.capacity(nslots: Int(nslots)) }
  /// Bytes the inode takes in its page.
  public var byteLength: Int { Int(nslots) * RoseLayout.inodeSize }

  public var kind: FileKind? { FileKind(modeBits: UInt32(mode)) }
  public var permissions: UInt16 { mode & 0o7777 }
  public var nid: UInt32 { ino / UInt32(RoseLayout.inodesPerPage) }
  public var slot: Int { Int(ino % UInt32(RoseLayout.inodesPerPage)) }

  public func has(_ flag: UInt16) -> Bool { flags & flag != 0 }

  /// Decodes the inode `ino` of an inode page (slot `ino % 16` and the `nslots - 1` after it) and
  /// verifies its checksum and `ino` field.
  public static func decode(page: [UInt8], ino: UInt32, checksum: RoseChecksum, pageAddress: UInt32)
    throws
    -> InodeRecord
  {
    let slot = Int(ino % UInt32(RoseLayout.inodesPerPage))
    let base = slot * RoseLayout.inodeSize
    guard page.count == RoseLayout.blockSize else {
      throw RoseFSError.corrupt("inode page at block \(pageAddress): short read")
    }
    let r = ByteReader(page, base: base)
    let stored = r.u32(SlotOffset.crc)
    if stored == 0 && page[base..<base + RoseLayout.inodeSize].allSatisfy({ $0 == 0 }) {
      throw RoseFSError.corrupt(
        "ino \(ino): slot \(slot) of inode page at block \(pageAddress) is unused")
    }
    let nslots = Int(r.u8(SlotOffset.nslots))
    guard nslots >= 1, slot + nslots <= RoseLayout.inodesPerPage else {
      throw RoseFSError.corrupt(
        "ino \(ino): nslots \(nslots) at slot \(slot) of inode page at block \(pageAddress) is not 1 to \(RoseLayout.inodesPerPage - slot)"
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
    return InodeRecord(
      ino: own, mode: r.u16(SlotOffset.mode), flags: r.u16(SlotOffset.flags),
      uid: r.u32(SlotOffset.uid),
      gid: r.u32(SlotOffset.gid), nlink: r.u32(SlotOffset.nlink), size: r.u64(SlotOffset.size),
      blocks: r.u64(SlotOffset.blocks), atime: ts(SlotOffset.atime, SlotOffset.atimeNs),
      mtime: ts(SlotOffset.mtime, SlotOffset.mtimeNs),
      ctime: ts(SlotOffset.ctime, SlotOffset.ctimeNs),
      crtime: ts(SlotOffset.crtime, SlotOffset.crtimeNs), generation: r.u32(SlotOffset.generation),
      parent: r.u32(SlotOffset.parent), xattrNid: r.u32(SlotOffset.xattrNid),
      reserved05C: r.u32(SlotOffset.reserved05C),
      rdevMajor: r.u32(SlotOffset.rdevMajor), rdevMinor: r.u32(SlotOffset.rdevMinor),
      cpVer: r.u64(SlotOffset.cpVer), tailBlk: r.u32(SlotOffset.tailBlk),
      tailOff: r.u16(SlotOffset.tailOff),
      tailLen: r.u16(SlotOffset.tailLen), inlineLen: r.u16(SlotOffset.inlineLen),
      xattrLen: r.u16(SlotOffset.xattrLen), nitems: r.u32(SlotOffset.nitems), crc: stored,
      treeRoot: r.u32(SlotOffset.treeRoot), treeDepth: r.u8(SlotOffset.treeDepth),
      nslots: UInt8(nslots), reserved08E: r.slice(SlotOffset.reserved08E, 2),
      inlineArea: r.slice(SlotOffset.inline, InodeSlots.capacity(nslots: nslots)))
  }

  /// The `nslots * 256` bytes of the inode with `ino` and `crc` filled in (`crc` as stored is
  /// ignored). Every field is written at its `SlotOffset`; `inlineArea` is cut or zero-padded to
  /// `inlineCapacity` bytes.
  public func encode(checksum: RoseChecksum) -> [UInt8] {
    var slot = [UInt8](repeating: 0, count: byteLength)
    encode(into: &slot, checksum: checksum)
    return slot
  }

  /// As `encode(checksum:)`, into a reused buffer (resized to `nslots * 256` bytes).
  public func encode(into slot: inout [UInt8], checksum: RoseChecksum) {
    if slot.count != byteLength { slot = [UInt8](repeating: 0, count: byteLength) }
    slot.withUnsafeMutableBytes { buf in
      buf.initializeMemory(as: UInt8.self, repeating: 0)
      var w = ByteWriter(buf)
      typealias O = SlotOffset
      w.put(mode, at: O.mode)
      w.put(flags, at: O.flags)
      w.put(uid, at: O.uid)
      w.put(gid, at: O.gid)
      w.put(nlink, at: O.nlink)
      w.put(size, at: O.size)
      w.put(blocks, at: O.blocks)
      for (t, s, ns) in [
        (atime, O.atime, O.atimeNs), (mtime, O.mtime, O.mtimeNs), (ctime, O.ctime, O.ctimeNs),
        (crtime, O.crtime, O.crtimeNs),
      ] {
        w.put(t.seconds, at: s)
        w.put(t.nanoseconds, at: ns)
      }
      w.put(generation, at: O.generation)
      w.put(parent, at: O.parent)
      w.put(xattrNid, at: O.xattrNid)
      w.put(reserved05C, at: O.reserved05C)
      w.put(rdevMajor, at: O.rdevMajor)
      w.put(rdevMinor, at: O.rdevMinor)
      w.put(cpVer, at: O.cpVer)
      w.put(tailBlk, at: O.tailBlk)
      w.put(tailOff, at: O.tailOff)
      w.put(tailLen, at: O.tailLen)
      w.put(inlineLen, at: O.inlineLen)
      w.put(xattrLen, at: O.xattrLen)
      w.put(nitems, at: O.nitems)
      w.put(ino, at: O.ino)
      w.put(treeRoot, at: O.treeRoot)
      w.put(treeDepth, at: O.treeDepth)
      w.put(nslots, at: O.nslots)
      w.put(bytes: reserved08E, paddedTo: 2, at: O.reserved08E)
      w.put(bytes: inlineArea, paddedTo: inlineCapacity, at: O.inline)
      let crc = checksum.checksum(UnsafeRawBufferPointer(buf), zeroingFieldAt: O.crc)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: O.crc, as: UInt32.self)
    }
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
}

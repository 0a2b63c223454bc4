import CChecksum

/// Encoders for the records inside inode slots and tree nodes (FORMAT.md sections 7 to 10).

/// Inode flags (FORMAT.md section 7).
public enum InodeFlag {
  public static let inlineData: UInt16 = 0x0001
  public static let inlineDentry: UInt16 = 0x0002
  public static let dirTree: UInt16 = 0x0004
  public static let extents: UInt16 = 0x0008
  public static let extentTree: UInt16 = 0x0010
  public static let tail: UInt16 = 0x0020
  public static let xattrNode: UInt16 = 0x0040
  /// The five content forms (one per file; TAIL and XATTR_NODE come on top).
  public static let contentForms: UInt16 = 0x001F
  public static let known: UInt16 = 0x007F
}

/// Inode core field offsets (FORMAT.md section 7), shared by the encoder and the tests that assert
/// them. Character and block devices keep `rdev_major` and `rdev_minor` where other inodes keep
/// `tail_blk` and `tree_root` (a device has neither).
public enum SlotOffset {
  public static let mode = 0x00, flags = 0x02, uid = 0x04, gid = 0x08, nlink = 0x0C
  public static let size = 0x10, atime = 0x18, mtime = 0x20, ctime = 0x28
  public static let atimeNs = 0x30, mtimeNs = 0x34, ctimeNs = 0x38, ino = 0x3C, crc = 0x40
  public static let parent = 0x44, xattrNid = 0x48, tailBlk = 0x4C, treeRoot = 0x50
  public static let rdevMajor = tailBlk, rdevMinor = treeRoot
  public static let blocks = 0x54, inlineLen = 0x58, xattrLen = 0x5A, tailOff = 0x5C
  public static let nslots = 0x5E, treeDepth = 0x5F
  public static let inline = 0x60
}

/// The 96-byte core of an inode (FORMAT.md section 7), fields at the `SlotOffset`s; `i_u` follows it
/// to the end of the inode's `nslots` 32-byte slots.
public enum InodeCore: OnDiskLayout {
  public static let size = RoseLayout.inlineOffset
  public static let fields: [FieldSpec] = {
    typealias S = SlotOffset
    return [
      FieldSpec("mode", S.mode, 2), FieldSpec("flags", S.flags, 2), FieldSpec("uid", S.uid, 4),
      FieldSpec("gid", S.gid, 4), FieldSpec("nlink", S.nlink, 4), FieldSpec("size", S.size, 8),
      FieldSpec("atime", S.atime, 8), FieldSpec("mtime", S.mtime, 8),
      FieldSpec("ctime", S.ctime, 8), FieldSpec("atime_ns, mtime_ns, ctime_ns", S.atimeNs, 12),
      FieldSpec("ino", S.ino, 4), FieldSpec("crc", S.crc, 4), FieldSpec("parent", S.parent, 4),
      FieldSpec("xattr_nid", S.xattrNid, 4), FieldSpec("tail_blk / rdev_major", S.tailBlk, 4),
      FieldSpec("tree_root / rdev_minor", S.treeRoot, 4), FieldSpec("blocks", S.blocks, 4),
      FieldSpec("inline_len", S.inlineLen, 2), FieldSpec("xattr_len", S.xattrLen, 2),
      FieldSpec("tail_off", S.tailOff, 2), FieldSpec("nslots", S.nslots, 1),
      FieldSpec("tree_depth", S.treeDepth, 1),
    ]
  }()
}

/// Directory name hash: plain CRC-32C of the 16 seed bytes followed by the name.
public func nameHash(_ name: [UInt8], seed: [UInt8]) -> UInt32 {
  name.withUnsafeBytes { NameHasher(seed: seed).hash($0) }
}

/// `nameHash` for many names under one seed: the register after the seed is computed once, and a
/// name is hashed from its bytes where they are (no `seed + name` array per name).
struct NameHasher {
  let seedState: UInt32

  init(seed: [UInt8]) {
    seedState = seed.withUnsafeBytes { rose_crc32c_update(0xFFFF_FFFF, $0.baseAddress, $0.count) }
  }

  func hash(_ name: UnsafeRawBufferPointer) -> UInt32 {
    rose_crc32c_update(seedState, name.baseAddress, name.count) ^ 0xFFFF_FFFF
  }
}

/// One directory entry with its key (hash << 32 | seq).
struct EncodedDirent {
  var key: UInt64
  var ino: UInt32
  var type: UInt8
  var name: [UInt8]
  var seq: UInt16 { UInt16(truncatingIfNeeded: key & 0xFFFF_FFFF) }
}

/// Entries in key order with their seq numbers assigned (equal hashes numbered in name byte order).
/// Sorting is of plain words, hash << 32 | position in name order, so equal hashes keep name order
/// without a closure comparing names (the closure sort was 2.7 % of converting 200,000 small files).
func sortedDirents(_ children: [(Name, UInt32, UInt8)], seed: [UInt8]) -> [EncodedDirent] {
  var byName = children
  if !byName.indices.dropFirst().allSatisfy({ !(byName[$0].0 < byName[$0 - 1].0) }) {
    byName.sort { $0.0 < $1.0 }  // directory trees iterate in name order; other callers may not
  }
  let hasher = NameHasher(seed: seed)
  var keys = byName.indices.map { i in
    UInt64(byName[i].0.withBytes { hasher.hash($0) }) << 32 | UInt64(i)
  }
  keys.sort()
  var out: [EncodedDirent] = []
  out.reserveCapacity(keys.count)
  var seq: UInt64 = 0
  var previousHash: UInt64 = 0
  for (n, k) in keys.enumerated() {
    let h = k >> 32
    seq = (n > 0 && previousHash == h) ? seq + 1 : 0
    previousHash = h
    let c = byName[Int(k & 0xFFFF_FFFF)]
    out.append(EncodedDirent(key: h << 32 | seq, ino: c.1, type: c.2, name: c.0.bytes))
  }
  return out
}

/// Xattr records, sorted by name (FORMAT.md section 10). The caller checks each record with
/// `XattrRecord.validate` first (the packer does, in `encodeXattrRecords`); a record the format cannot
/// hold is cut to its field widths here rather than trapping.
func encodeXattrs(_ xattrs: [Xattr]) -> [UInt8] {
  var out: [UInt8] = []
  for x in xattrs.sorted(by: { $0.name.lexicographicallyPrecedes($1.name) }) {
    let name = x.name.prefix(XattrRecord.maxNameBytes)
    let value = x.value.prefix(Int(UInt16.max))
    out.append(UInt8(name.count))
    out.append(0)
    appendLE(&out, UInt16(value.count))
    out += name
    out += value
  }
  return out
}

/// Xattr records of one inode, checked: every name 1..255 bytes, all records together at most 4064
/// bytes (the v1 limit per inode). `path` names the file in the error.
public func encodeXattrRecords(_ xattrs: [Xattr], path: String) throws -> [UInt8] {
  var total = 0
  for x in xattrs {
    try XattrRecord.validate(x, path: path)
    total += XattrRecord.headerSize + x.name.count + x.value.count
  }
  guard total <= RoseLayout.maxXattrBytes else {
    throw RoseFSError.xattrsTooLarge(path: path, bytes: total)
  }
  return encodeXattrs(xattrs)
}

/// One xattr record (FORMAT.md section 10): `u8 name_len, u8 zero, u16 value_len, name, value`.
public enum XattrRecord: OnDiskLayout {
  public static let size = headerSize
  public static let nameLength = 0, zero = 1, valueLength = 2, name = 4
  public static let headerSize = 4
  public static let fields = [
    FieldSpec("name_len", nameLength, 1), FieldSpec("zero", zero, 1),
    FieldSpec("value_len", valueLength, 2),
  ]
  public static let maxNameBytes = 255
  /// The largest value one record can carry in v1 (a one-byte name, alone in an xattr node).
  public static let maxValueBytes = RoseLayout.maxXattrBytes - headerSize - 1

  public static func validate(_ x: Xattr, path: String) throws {
    guard (1...maxNameBytes).contains(x.name.count) else {
      throw RoseFSError.xattrInvalid(
        path: path, name: x.name,
        reason: "its name is \(x.name.count) bytes; RoseFS xattr names are 1 to 255 bytes")
    }
    guard x.value.count <= maxValueBytes else {
      throw RoseFSError.xattrInvalid(
        path: path, name: x.name,
        reason:
          "its value is \(x.value.count) bytes; RoseFS v1 stores at most \(RoseLayout.maxXattrBytes) bytes of xattrs per inode"
      )
    }
  }
}

func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
  withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

/// A tree or xattr node before it is written: its nid and its 4096 bytes with the header filled in
/// except `blkaddr` and `crc`, which are set when the block's address is known.
struct PendingNode {
  var nid: UInt32
  var bytes: [UInt8]
}

/// Bulk-loads a B+ tree bottom-up at 100% fill (FORMAT.md 8.2 and 9.2): leaves from records in key
/// order, then interior levels of (first key, child nid) until one root remains.
struct BTreeBulkLoader {
  let magic: UInt32
  let ownerIno: UInt32
  let cpVer: UInt64
  /// Bytes of an interior record: key width + 4.
  let keyWidth: Int

  /// `leaves`: each leaf's records already laid out (bytes from 0x20 on, names included) and the
  /// first key of the leaf. Returns all nodes (leaves first) and the root nid and depth.
  func build(
    leaves: [(firstKey: UInt64, count: Int, body: [UInt8])], allocateNid: () -> UInt32
  ) -> (nodes: [PendingNode], root: UInt32, depth: UInt8) {
    var nodes: [PendingNode] = []
    var level: [(UInt64, UInt32)] = []
    for leaf in leaves {
      let nid = allocateNid()
      nodes.append(
        PendingNode(nid: nid, bytes: block(nid: nid, level: 0, count: leaf.count, body: leaf.body)))
      level.append((leaf.firstKey, nid))
    }
    var depth: UInt8 = 0
    let perInterior = (RoseLayout.blockSize - RoseLayout.headerSize) / (keyWidth + 4)
    while level.count > 1 {
      depth += 1
      var next: [(UInt64, UInt32)] = []
      var i = 0
      while i < level.count {
        let group = level[i..<min(i + perInterior, level.count)]
        var body: [UInt8] = []
        let kind: TreeKind = keyWidth == 8 ? .directory : .extents
        for (k, child) in group { kind.appendInterior(&body, key: k, child: child) }
        let nid = allocateNid()
        nodes.append(
          PendingNode(
            nid: nid, bytes: block(nid: nid, level: depth, count: group.count, body: body)))
        next.append((group.first!.0, nid))
        i += perInterior
      }
      level = next
    }
    return (nodes, level.first?.1 ?? 0, depth)
  }

  func block(nid: UInt32, level: UInt8, count: Int, body: [UInt8]) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    b.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      BlockHeader(
        magic: magic, cpVer: cpVer, blkaddr: 0, owner: nid, count: UInt16(count), level: level,
        aux: ownerIno
      ).encode(into: &w)
    }
    b.replaceSubrange(RoseLayout.headerSize..<RoseLayout.headerSize + body.count, with: body)
    return b
  }
}

/// Directory leaves: 16-byte records from 0x20, names packed downward from the block end.
func directoryLeaves(_ entries: [EncodedDirent]) -> [(firstKey: UInt64, count: Int, body: [UInt8])]
{
  var leaves: [(UInt64, Int, [UInt8])] = []
  let space = RoseLayout.blockSize - RoseLayout.headerSize
  var i = 0
  while i < entries.count {
    var j = i
    var used = 0
    while j < entries.count, used + DirLeafRecord.size + entries[j].name.count <= space {
      used += DirLeafRecord.size + entries[j].name.count
      j += 1
    }
    var body = [UInt8](repeating: 0, count: space)
    var nameLow = RoseLayout.blockSize
    for (n, e) in entries[i..<j].enumerated() {
      nameLow -= e.name.count
      let at = n * DirLeafRecord.size  // `body` starts after the header
      body.withUnsafeMutableBytes { buf in
        var w = ByteWriter(buf)
        DirLeafRecord(
          key: e.key, ino: e.ino, nameOffset: UInt16(nameLow), nameLength: UInt8(e.name.count),
          type: e.type
        ).encode(into: &w, at: at)
      }
      let o = nameLow - RoseLayout.headerSize
      body.replaceSubrange(o..<o + e.name.count, with: e.name)
    }
    leaves.append((entries[i].key, j - i, body))
    i = j
  }
  return leaves
}

/// Extent leaves: 12-byte records, 338 per leaf.
func extentLeaves(_ extents: [Extent]) -> [(firstKey: UInt64, count: Int, body: [UInt8])] {
  let per = TreeKind.extents.maxLeafRecords
  var out: [(UInt64, Int, [UInt8])] = []
  var i = 0
  while i < extents.count {
    let group = extents[i..<min(i + per, extents.count)]
    var body: [UInt8] = []
    for e in group { ExtentRecord.append(e, to: &body) }
    out.append((UInt64(group.first!.logical), group.count, body))
    i += per
  }
  return out
}

func encodeExtents(_ extents: [Extent]) -> [UInt8] {
  var body: [UInt8] = []
  for e in extents { ExtentRecord.append(e, to: &body) }
  return body
}

func encodeInlineDirents(_ entries: [EncodedDirent]) -> [UInt8] {
  var out: [UInt8] = []
  for e in entries {
    InlineDirent(ino: e.ino, type: e.type, nameLength: UInt8(e.name.count), seq: e.seq).append(
      to: &out)
    out += e.name
  }
  return out
}

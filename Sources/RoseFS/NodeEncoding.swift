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
}

/// Slot field offsets (FORMAT.md section 7), shared by the encoder and the tests that assert them.
public enum SlotOffset {
  public static let mode = 0x000, flags = 0x002, uid = 0x004, gid = 0x008, nlink = 0x00C
  public static let size = 0x010, blocks = 0x018, atime = 0x020, mtime = 0x028, ctime = 0x030
  public static let crtime = 0x038, atimeNs = 0x040, mtimeNs = 0x044, ctimeNs = 0x048
  public static let crtimeNs = 0x04C, generation = 0x050, parent = 0x054, xattrNid = 0x058
  public static let rdevMajor = 0x060, rdevMinor = 0x064, cpVer = 0x068, tailBlk = 0x070
  public static let tailOff = 0x074, tailLen = 0x076, inlineLen = 0x078, xattrLen = 0x07A
  public static let nitems = 0x07C, ino = 0x080, crc = 0x084, treeRoot = 0x088, treeDepth = 0x08C
  public static let inline = 0x090
}

/// Directory name hash: plain CRC-32C of the 16 seed bytes followed by the name.
public func nameHash(_ name: [UInt8], seed: [UInt8]) -> UInt32 {
  crc32c(seed + name)
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
func sortedDirents(_ children: [(Name, UInt32, UInt8)], seed: [UInt8]) -> [EncodedDirent] {
  var hashed = children.map { (nameHash($0.0.bytes, seed: seed), $0) }
  hashed.sort { a, b in
    a.0 != b.0 ? a.0 < b.0 : a.1.0.bytes.lexicographicallyPrecedes(b.1.0.bytes)
  }
  var out: [EncodedDirent] = []
  out.reserveCapacity(hashed.count)
  var seq: UInt64 = 0
  for (i, (h, c)) in hashed.enumerated() {
    seq = (i > 0 && hashed[i - 1].0 == h) ? seq + 1 : 0
    out.append(EncodedDirent(key: UInt64(h) << 32 | seq, ino: c.1, type: c.2, name: c.0.bytes))
  }
  return out
}

/// Xattr records, sorted by name (FORMAT.md section 10).
func encodeXattrs(_ xattrs: [Xattr]) -> [UInt8] {
  var out: [UInt8] = []
  for x in xattrs.sorted(by: { $0.name.lexicographicallyPrecedes($1.name) }) {
    out.append(UInt8(x.name.count))
    out.append(0)
    out.append(UInt8(x.value.count & 0xFF))
    out.append(UInt8(x.value.count >> 8))
    out += x.name
    out += x.value
  }
  return out
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
        for (k, child) in group {
          if keyWidth == 8 {
            appendLE(&body, k)
          } else {
            appendLE(&body, UInt32(truncatingIfNeeded: k))
          }
          appendLE(&body, child)
        }
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
    while j < entries.count, used + 16 + entries[j].name.count <= space {
      used += 16 + entries[j].name.count
      j += 1
    }
    var body = [UInt8](repeating: 0, count: space)
    var nameLow = RoseLayout.blockSize
    for (n, e) in entries[i..<j].enumerated() {
      nameLow -= e.name.count
      let at = n * 16
      body.withUnsafeMutableBytes { buf in
        var w = ByteWriter(buf, at: at)
        w.put(e.key)
        w.put(e.ino)
        w.put(UInt16(nameLow))
        w.put(UInt8(e.name.count))
        w.put(e.type)
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
  let per = (RoseLayout.blockSize - RoseLayout.headerSize) / 12
  var out: [(UInt64, Int, [UInt8])] = []
  var i = 0
  while i < extents.count {
    let group = extents[i..<min(i + per, extents.count)]
    var body: [UInt8] = []
    for e in group {
      appendLE(&body, e.logical)
      appendLE(&body, e.physical)
      appendLE(&body, e.count)
    }
    out.append((UInt64(group.first!.logical), group.count, body))
    i += per
  }
  return out
}

func encodeExtents(_ extents: [Extent]) -> [UInt8] {
  var body: [UInt8] = []
  for e in extents {
    appendLE(&body, e.logical)
    appendLE(&body, e.physical)
    appendLE(&body, e.count)
  }
  return body
}

func encodeInlineDirents(_ entries: [EncodedDirent]) -> [UInt8] {
  var out: [UInt8] = []
  for e in entries {
    appendLE(&out, e.ino)
    out.append(e.type)
    out.append(UInt8(e.name.count))
    appendLE(&out, e.seq)
    out += e.name
  }
  return out
}

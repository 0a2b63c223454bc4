import RoseFS

/// What a block the RoseFS engine writes is, read from the bytes written (FORMAT.md 3 to 9): the
/// fixed blocks by address, header blocks by magic, inode pages by their slots, anything else is file
/// data. The heat benchmark labels every engine write with it, so the table can say that the hot
/// block is a checkpoint slot or a NAT block.
public enum RoseFSWriteKind {
  public static func classify(address: UInt32, bytes: [UInt8]) -> String {
    if address < 2 { return "superblock" }
    guard bytes.count == RoseLayout.blockSize else { return "file data" }
    func u32(_ o: Int) -> UInt32 {
      UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16
        | UInt32(bytes[o + 3]) << 24
    }
    switch u32(0) {
    case 0x5043_5352: return "checkpoint"
    case 0x5441_4E52: return "NAT"
    case 0x4D42_5652: return "VBM"
    case 0x4153_5352: return "SSA"
    case 0x5041_4D52: return "meta-file map index"
    case 0x5249_4452: return "directory tree node"
    case 0x5458_4552: return "extent tree node"
    case 0x5441_5852: return "xattr node"
    case 0x5746_5252: return "roll-forward record"
    default: break
    }
    if address < RoseLayout.mainStart { return "checkpoint area" }
    // An inode page: every inode holds its own inode number (nid * 128 + slot) in its 96-byte core
    // (`SlotOffset.ino`) and its slot count (`SlotOffset.nslots`, at least 3); the slots it covers
    // after the core hold its inline bytes.
    var nid: UInt32? = nil
    var used = 0
    let perPage = UInt32(RoseLayout.inodesPerPage)
    var s = 0
    while s + RoseLayout.minInodeSlots <= RoseLayout.inodesPerPage {
      let ino = u32(s * RoseLayout.inodeSize + SlotOffset.ino)
      if ino == 0 {
        s += 1
        continue
      }
      guard ino % perPage == UInt32(s), nid == nil || nid == ino / perPage else {
        return "file data"
      }
      nid = ino / perPage
      used += 1
      s += max(
        RoseLayout.minInodeSlots, Int(bytes[s * RoseLayout.inodeSize + SlotOffset.nslots]))
    }
    return used > 0 ? "inode page" : "file data"
  }
}

/// Fixed numbers of RoseFS v1 (FORMAT.md, "Constants"). Everything else is in the superblock.
public enum RoseLayout {
  public static let blockSize = 4096
  public static let blockShift: UInt64 = 12
  public static let superblockOffset = 1024
  public static let superblockSize = 256
  public static let checkpointBlock: UInt32 = 2
  public static let checkpointSlots = 2
  /// First block of the main area: 64 KiB into the volume, so the log starts erase-unit aligned.
  public static let mainStart: UInt32 = 16
  /// One inode slot: a 32-byte unit of an inode page. An inode takes `minInodeSlots` to
  /// `maxInodeSlots` consecutive slots of its page (`nslots`); its number is the page's nid * 128 plus
  /// its first slot. (The name predates multi-slot inodes; superblock `inode_size` says the same.)
  public static let inodeSize = 32
  /// Slots of an inode page: 4096 / 32.
  public static let inodesPerPage = 128
  /// Bytes of the inode core: every inode's fixed fields; `i_u` starts here.
  public static let inlineOffset = 0x60
  /// The fewest slots one inode takes: its 96-byte core (with an empty `i_u`).
  public static let minInodeSlots = 3
  /// The most slots one inode takes: a whole inode page.
  public static let maxInodeSlots = 128
  /// Bytes of `i_u` in a 128-slot inode: the largest inline form (superblock `inline_max`).
  public static let maxInline = maxInodeSlots * inodeSize - inlineOffset  // 4000
  /// Tails of at most this many bytes share tail blocks; larger tails get a block of their own.
  public static let defaultTailMax = 4032
  public static let headerSize = 32
  /// u32 entries after the 32-byte header of a NAT or map-index block.
  public static let addressesPerBlock = (blockSize - headerSize) / 4  // 1016
  /// VBM bits after the header.
  public static let bitsPerVBMBlock = (blockSize - headerSize) * 8  // 32512
  public static let ssaEntrySize = 12
  public static let ssaEntriesPerBlock = (blockSize - headerSize) / ssaEntrySize  // 338
  public static let maxHeads = 4
  public static let nrLogs = 3
  public static let maxFileSize: UInt64 = 1 << 40
  public static let minVolumeBytes: UInt64 = 16 << 20
  public static let maxXattrBytes = blockSize - headerSize
  /// A tail block that the engine starts may name inode pages `owner ... owner + index` with
  /// `index` at most this (FORMAT.md 13.2); the packer's blocks stay far below it.
  public static let maxTailPageSpan: UInt32 = 64
}

/// Multi-slot inodes (FORMAT.md section 7): an inode of `nslots` 32-byte slots has
/// `nslots * 32 - 0x60` bytes of `i_u`.
public enum InodeSlots {
  public static func capacity(nslots: Int) -> Int {
    nslots * RoseLayout.inodeSize - RoseLayout.inlineOffset
  }
  /// The fewest slots whose `i_u` holds `bytes` (at least 3; may exceed 128 when it cannot fit).
  public static func slots(forInline bytes: Int) -> Int {
    max(
      RoseLayout.minInodeSlots,
      (RoseLayout.inlineOffset + bytes + RoseLayout.inodeSize - 1) / RoseLayout.inodeSize)
  }
  /// The largest regular file or symlink the packer keeps INLINE_DATA (FORMAT.md 7, "How the packer
  /// chooses the forms"). Measured, not derived: a tail costs exactly its bytes while inline bytes
  /// round up to 32 and inodes placed in ino order leave the end of a page unused when the next one
  /// does not fit, so every inline byte costs at least what a tail byte does. Files of at most 64
  /// bytes (symlinks, mostly) stay inline anyway: at most 2 slots more than the bare core, a read
  /// without a tail block, and a page gap they leave is at most 4 slots.
  public static let packerInlineMax: UInt64 = 64
  /// The packer's rule for regular files and symlinks: INLINE_DATA when `size <= packerInlineMax`,
  /// else blocks plus a tail.
  public static func fileIsInline(size: UInt64) -> Bool {
    size <= packerInlineMax
  }
  /// The packer's rule for xattrs: inline when the inode with them fits its page. An xattr node
  /// costs a 4 KiB block; the slots they add cost their bytes rounded up to 32.
  public static func xattrsInline(slotsWithoutXattrs: Int, slotsWithXattrs: Int) -> Bool {
    slotsWithXattrs <= RoseLayout.maxInodeSlots
  }
}

/// GPT partition type GUIDs of RoseFS volumes (FORMAT.md section 2, "Finding a volume on a disk").
/// A recipe that names a Discoverable Partitions type keeps it; otherwise a RoseFS partition gets one
/// of these, so that a reader (or udev) recognises it without opening it.
public enum RosePartitionType {
  /// "RoseFS root (A/B system volume)".
  public static let root = "6BB2C3CA-50CB-4CA0-8E03-C35A3034266E"
  /// "RoseFS data (any other RoseFS volume)".
  public static let data = "2108659E-1A6C-4B2A-BAB1-99C73A2C0B6E"
  /// Byte offsets, from the start of a partition or image, where a reader looks for the magic "ROSE":
  /// superblock copy 0, then copy 1.
  public static let magicOffsets: [UInt64] = [
    UInt64(RoseLayout.superblockOffset),
    UInt64(RoseLayout.blockSize + RoseLayout.superblockOffset),
  ]
}

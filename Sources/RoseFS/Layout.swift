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
  /// One inode slot; an inode takes 1 to 16 consecutive slots of its page (`nslots`).
  public static let inodeSize = 256
  public static let inodesPerPage = 16
  public static let inlineOffset = 0x90
  /// The most slots one inode takes: a whole inode page.
  public static let maxInodeSlots = 16
  /// Bytes of `i_u` in a one-slot inode.
  public static let oneSlotInline = inodeSize - inlineOffset  // 112
  /// Bytes of `i_u` in a 16-slot inode: the largest inline form (superblock `inline_max`).
  public static let maxInline = maxInodeSlots * inodeSize - inlineOffset  // 3952
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

/// Multi-slot inodes (FORMAT.md section 7): an inode of `nslots` slots has `nslots * 256 - 0x90`
/// bytes of `i_u`.
public enum InodeSlots {
  public static func capacity(nslots: Int) -> Int {
    nslots * RoseLayout.inodeSize - RoseLayout.inlineOffset
  }
  /// The fewest slots whose `i_u` holds `bytes` (at least 1; may exceed 16 when it cannot fit).
  public static func slots(forInline bytes: Int) -> Int {
    max(1, (RoseLayout.inlineOffset + bytes + RoseLayout.inodeSize - 1) / RoseLayout.inodeSize)
  }
  /// The packer's rule for regular files and symlinks (FORMAT.md 7, "How the packer chooses the
  /// forms"): INLINE_DATA when the file fits one slot, or when its slots cost no more than one slot
  /// and a tail fragment of the same bytes.
  public static func fileIsInline(size: UInt64) -> Bool {
    if size <= UInt64(RoseLayout.oneSlotInline) { return true }
    guard size <= UInt64(RoseLayout.maxInline) else { return false }
    // Strictly cheaper: at equal cost the tail form wins, because tails pack a block exactly while
    // inodes of 5 slots leave a slot of every page unused (1 KiB files: 1,280 bytes each as a tail,
    // 1,365 inline).
    return UInt64(slots(forInline: Int(size)) * RoseLayout.inodeSize)
      < UInt64(RoseLayout.inodeSize) + size
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

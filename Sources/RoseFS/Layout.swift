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
  public static let inodeSize = 512
  public static let inodesPerPage = 8
  /// Bytes of the inode slot's `i_u` union: inline data, dentries, extents and xattrs.
  public static let inlineCapacity = 368
  public static let inlineOffset = 0x90
  /// Tails of at most this many bytes share tail blocks; larger tails get a block of their own.
  public static let defaultTailMax = 4032
  public static let headerSize = 32
  /// u32 entries after the 32-byte header of a NAT or map-index block.
  public static let addressesPerBlock = (blockSize - headerSize) / 4  // 1016
  /// VBM bits after the header.
  public static let bitsPerVBMBlock = (blockSize - headerSize) * 8  // 32512
  public static let ssaEntrySize = 12
  public static let ssaEntriesPerBlock = (blockSize - headerSize) / ssaEntrySize  // 338
  public static let tailEntrySize = 8
  public static let maxHeads = 4
  public static let nrLogs = 3
  public static let maxFileSize: UInt64 = 1 << 40
  public static let minVolumeBytes: UInt64 = 16 << 20
  public static let maxXattrBytes = blockSize - headerSize
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

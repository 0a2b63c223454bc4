/// What a pack produced: the geometry and where the blocks went, for `convert`'s summary and the disk
/// layer's allocation map.
public struct BuildReport: Sendable, Codable {
  public var volumeBytes: UInt64
  public var blockCount: UInt64
  public var blocksPerSegment: UInt32
  public var segmentCount: UInt32
  public var reserveSegments: UInt32
  /// Blocks from 0 to the end of the last written block (the used, contiguous prefix of the volume).
  public var writtenBlocks: UInt64
  public var dataBlocks: UInt64
  public var releasedBlocks: UInt64
  public var tailBlocks: UInt64
  public var inodePages: UInt64
  public var treeNodes: UInt64
  public var metaBlocks: UInt64
  public var liveBlocks: UInt64
  public var privateBlocksPerHead: [UInt64]
  public var inodeCount: UInt64
  public var uuid: String
  /// Volume block ranges holding something (start, count); everything else is a hole.
  public var usedRanges: [[UInt64]]
}

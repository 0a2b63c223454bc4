/// Where the bytes of an image go: geometry, features, heads, and what every live block is.
/// Produced by walking every head exactly as fsck does (without reading file data).
public struct SpaceReport: Codable, Sendable, Equatable {
  public struct HeadSpace: Codable, Sendable, Equatable {
    public var name: String
    public var rootIno: UInt32
    public var inodeCount: UInt32
    /// Main-area blocks live in this head (the checkpoint's `valid_blocks`).
    public var validBlocks: UInt64
    /// The head whose validity bitmap this one uses (VBM_SAME_AS), if any.
    public var vbmSameAs: Int?
    /// Bytes live in this head and in no other head.
    public var privateBytes: UInt64
  }

  public var blockSize: Int
  public var blockCount: UInt64
  public var volumeBytes: UInt64
  public var blocksPerSegment: UInt32
  public var segmentCount: UInt32
  public var mainBlocks: UInt64
  public var reserveSegments: UInt32
  public var overprovisionBlocks: UInt32
  public var featureIncompat: UInt32
  public var featureRoCompat: UInt32
  public var features: [String]
  public var label: String
  public var uuid: String
  public var heads: [HeadSpace]
  public var defaultHead: Int

  /// Bytes by what the live blocks hold (each block counted once, however many heads share it).
  public var fileDataBytes: UInt64 = 0
  public var tailBlockBytes: UInt64 = 0
  public var inodePageBytes: UInt64 = 0
  public var directoryNodeBytes: UInt64 = 0
  public var extentNodeBytes: UInt64 = 0
  public var xattrNodeBytes: UInt64 = 0
  public var natBytes: UInt64 = 0
  public var vbmBytes: UInt64 = 0
  public var ssaBytes: UInt64 = 0
  public var mapIndexBytes: UInt64 = 0
  /// Blocks 0..15: superblocks, checkpoint slots, reserved.
  public var fixedAreaBytes: UInt64
  /// Main-area bytes not live in any head (the reserve included).
  public var freeBytes: UInt64 = 0
  /// The cleaner's reserve plus overprovisioning: free space user writes never get.
  public var reserveBytes: UInt64
  /// Free bytes user writes may still take: `user_block_count` minus the live blocks.
  public var availableBytes: UInt64 = 0
  /// Bytes live in every head, and live in more than one head.
  public var sharedByAllHeadsBytes: UInt64 = 0
  public var sharedBytes: UInt64 = 0
  /// Bytes of the image in use: the fixed area plus every live main-area block.
  public var usedBytes: UInt64 = 0
  /// What a driver left behind: the checkpoint in use, its NAT journal and the segment accounting.
  public var runtime: RuntimeState?

  /// The read-write state of the volume (FORMAT.md sections 4 and 13).
  public struct RuntimeState: Codable, Sendable, Equatable {
    public struct JournalEntry: Codable, Sendable, Equatable {
      public var head: String
      public var nid: UInt32
      public var blockAddress: UInt32
    }
    public var checkpointVersion: UInt64
    /// Block of the valid checkpoint slot (2 or 3).
    public var checkpointBlock: UInt32
    /// UMOUNT: the last writer unmounted cleanly; FRESH: written by a packer.
    public var clean: Bool
    public var fresh: Bool
    public var natJournal: [JournalEntry]
    /// `free_segments` as the checkpoint records it.
    public var freeSegments: UInt32
    /// Segments with no block live in any head and no log head in them, counted from the bitmaps.
    public var emptySegments: UInt32
    /// Empty segments the checkpoint does not count as free yet (freed since it was written).
    public var prefreeSegments: UInt32
    /// Segments user writes never take (`rsv_segments`).
    public var reservedSegments: UInt32
    /// Segments the NODE, DATA and TAIL log heads write into.
    public var logSegments: [UInt32]
    /// Main-area blocks live in each head (`valid_blocks`), in head order.
    public var liveBlocksPerHead: [UInt64]
    /// Main-area blocks live in more than one head.
    public var sharedBlocks: UInt64
    /// The roll-forward chain after the checkpoint (FORMAT.md 13.7): `rf_next`, complete groups and
    /// their record blocks, and valid record blocks of a trailing incomplete group.
    public var rollForwardNext: UInt32 = 0
    public var rollForwardGroups = 0
    public var rollForwardBlocks = 0
    public var rollForwardPartialBlocks = 0
  }
}

extension ImageReader {
  /// Accounts for every live block of every head. Throws when the image is too damaged to walk.
  public func spaceReport() throws -> SpaceReport {
    let run = FsckRun(image: image, verifyData: false)
    run.run()
    guard run.nHeads > 0, run.uses.count == run.nHeads else {
      throw RoseFSError.corrupt(run.problems.first ?? "the image cannot be walked")
    }
    let sb = superblock
    let cp = checkpoint
    let bs = UInt64(RoseLayout.blockSize)
    var features: [String] = []
    let names: [(UInt32, String)] = [
      (Feature.incompatInline, "inline"), (Feature.incompatTailPack, "tailpack"),
      (Feature.incompatDirTree, "dirtree"), (Feature.incompatExtentTree, "exttree"),
      (Feature.incompatXattrNode, "xattrnode"),
    ]
    for (bit, name) in names where sb.featureIncompat & bit != 0 { features.append(name) }
    if sb.featureRoCompat & Feature.roCompatDataChecksum != 0 { features.append("data_csum") }
    var liveIn: [UInt32: Int] = [:]
    var kindOf: [UInt32: BlockUse] = [:]
    for h in 0..<run.nHeads {
      for (a, u) in run.uses[h] {
        liveIn[a, default: 0] += 1
        if kindOf[a] == nil { kindOf[a] = u }
      }
    }
    var heads: [SpaceReport.HeadSpace] = []
    for (h, head) in cp.heads.enumerated() {
      var priv: UInt64 = 0
      if h < run.uses.count {
        for a in run.uses[h].keys where liveIn[a] == 1 { priv += bs }
      }
      heads.append(
        SpaceReport.HeadSpace(
          name: head.nameString, rootIno: head.rootIno, inodeCount: head.inodeCount,
          validBlocks: head.validBlocks, vbmSameAs: head.vbmSource, privateBytes: priv))
    }
    // Every count below comes from the image: a checksum proves only that the bytes were written
    // as they are, not that they make sense, so each product is checked.
    func bytes(_ blocks: UInt64, _ what: String) throws -> UInt64 {
      let (v, overflow) = blocks.multipliedReportingOverflow(by: bs)
      guard !overflow else {
        throw RoseFSError.corrupt("\(what) of \(blocks) blocks does not fit in 64-bit bytes")
      }
      return v
    }
    let reserve = try bytes(
      UInt64(sb.rsvSegments) * UInt64(sb.blocksPerSegment) + UInt64(sb.opBlocks),
      "superblock reserve")
    var r = SpaceReport(
      blockSize: RoseLayout.blockSize, blockCount: sb.blockCount,
      volumeBytes: try bytes(sb.blockCount, "superblock block_count"),
      blocksPerSegment: sb.blocksPerSegment, segmentCount: sb.segmentCount,
      mainBlocks: UInt64(sb.mainBlocks), reserveSegments: sb.rsvSegments,
      overprovisionBlocks: sb.opBlocks, featureIncompat: sb.featureIncompat,
      featureRoCompat: sb.featureRoCompat, features: features, label: sb.labelString,
      uuid: uuidString(sb.uuid), heads: heads, defaultHead: Int(cp.defaultHead),
      fixedAreaBytes: UInt64(sb.mainBlkaddr) * bs, reserveBytes: reserve)
    for (a, u) in kindOf {
      switch u {
      case .data: r.fileDataBytes += bs
      case .tail: r.tailBlockBytes += bs
      case .inodePage: r.inodePageBytes += bs
      case .dirNode: r.directoryNodeBytes += bs
      case .extentNode: r.extentNodeBytes += bs
      case .xattrNode: r.xattrNodeBytes += bs
      case .meta(let type, _, let level, _):
        if level > 0 {
          r.mapIndexBytes += bs
        } else if type == MetaType.nat {
          r.natBytes += bs
        } else if type == MetaType.vbm {
          r.vbmBytes += bs
        } else {
          r.ssaBytes += bs
        }
      }
      let n = liveIn[a] ?? 0
      if n == run.nHeads { r.sharedByAllHeadsBytes += bs }
      if n > 1 { r.sharedBytes += bs }
    }
    let live = UInt64(kindOf.count)
    var busySegments = Set<UInt32>()
    for a in kindOf.keys where a >= sb.mainBlkaddr {
      busySegments.insert((a - sb.mainBlkaddr) / sb.blocksPerSegment)
    }
    let logSegments = cp.logs.map(\.segment)
    busySegments.formUnion(logSegments)
    let empty =
      sb.segmentCount > UInt32(busySegments.count)
      ? sb.segmentCount - UInt32(busySegments.count) : 0
    r.runtime = SpaceReport.RuntimeState(
      checkpointVersion: cp.cpVer, checkpointBlock: sb.cpBlkaddr + UInt32(checkpointSlot),
      clean: cp.flags & Checkpoint.flagUmount != 0, fresh: cp.flags & Checkpoint.flagFresh != 0,
      natJournal: cp.natJournal.map {
        SpaceReport.RuntimeState.JournalEntry(
          head: Int($0.head) < cp.heads.count ? cp.heads[Int($0.head)].nameString : "#\($0.head)",
          nid: $0.nid, blockAddress: $0.blkaddr)
      },
      freeSegments: cp.freeSegments, emptySegments: empty,
      prefreeSegments: empty > cp.freeSegments ? empty - cp.freeSegments : 0,
      reservedSegments: sb.rsvSegments, logSegments: logSegments,
      liveBlocksPerHead: cp.heads.map(\.validBlocks), sharedBlocks: r.sharedBytes / bs)
    if cp.rfNext != 0,
      let chain = try? RollForwardChain.read(
        checkpoint: cp, mainStart: sb.mainBlkaddr, mainBlocks: Int(sb.mainBlocks),
        checksum: checksum,
        readBlock: { (a: UInt32) throws -> [UInt8] in try image.readBlock(a) })
    {
      r.runtime?.rollForwardNext = cp.rfNext
      r.runtime?.rollForwardGroups = chain.groups.count
      r.runtime?.rollForwardBlocks = chain.groups.reduce(0) { $0 + $1.count }
      r.runtime?.rollForwardPartialBlocks = chain.partialGroupBlocks
    }
    r.freeBytes = UInt64(sb.mainBlocks) > live ? (UInt64(sb.mainBlocks) - live) * bs : 0
    r.availableBytes =
      cp.userBlockCount > live
      ? try bytes(cp.userBlockCount - live, "checkpoint user_block_count") : 0
    r.usedBytes = r.fixedAreaBytes + live * bs
    return r
  }
}

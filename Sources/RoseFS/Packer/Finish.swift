/// The metadata phase of `ImageBuilder`, after the file data: each step a named phase in its own file.
extension ImageBuilder {
  /// Writes everything after the file data. `subvolumes[0]` is head "a"; a later subvolume that shares
  /// `Inode` objects with an earlier one shares their blocks on disk (FORMAT.md section 11).
  public func finish(subvolumes: [Subvolume], defaultSubvolume: Int = 0) throws -> BuildReport {
    try Self.validate(subvolumes, defaultSubvolume: defaultSubvolume)
    try assignInodeNumbers(subvolumes)
    let views = try subvolumes.map {
      try HeadView(root: $0.root, inoLimit: nextIno, trackObjects: subvolumes.count > 1)
    }
    // In the final inode numbers: may move fragments to new tail blocks, still in the data phase.
    try boundTailPageRanges(views)
    try tails.flushAll()
    stream.recordsChecksums = false
    let dataEnd = stream.nextBlock
    sealedDataEnd = dataEnd
    try settleIdentity(subvolumes: subvolumes, views: views, dataEnd: dataEnd)
    let hashSeed = deriveSeed("hash")
    let plan = try planNodes(views: views, hashSeed: hashSeed)
    var nat = NATTable(heads: views.count, nextFreeNid: plan.nextFreeNid)
    let pages = try writeInodePages(views: views, plan: plan, nat: &nat)
    let treeRuns = try writeTreeNodes(views: views, plan: plan, nat: &nat)
    let geometry = try chooseGeometry(
      usedBeforeMeta: stream.nextBlock, natLeafCount: nat.leafCount, heads: views.count,
      ownNATHeads: nat.ownHeads.count)
    let natFiles = try writeNATFiles(nat)
    let live = LiveSets(builder: self, views: views, nat: nat, natFiles: natFiles)
    let runs = pages.runs + treeRuns + natFiles.runs
    let summary =
      try views.count == 1
      ? writeBitmapsAndSummary(
        live: live, geometry: geometry, dataEnd: dataEnd, runs: runs,
        objects: views[0].inodes.values)
      : writeBitmapsAndSummary(
        live: live, geometry: geometry, dataEnd: dataEnd, runs: runs, objects: plan.objects)
    let fixed = try writeFixedArea(
      subvolumes: subvolumes, defaultSubvolume: defaultSubvolume, views: views, nat: nat,
      natFiles: natFiles, summary: summary, geometry: geometry, hashSeed: hashSeed)
    return makeReport(
      geometry: geometry, summary: summary, fixed: fixed, views: views, inodePages: pages.count,
      treeNodes: plan.nodes.count, metaBlocks: natFiles.runs.count + summary.planned)
  }

  static func validate(_ subvolumes: [Subvolume], defaultSubvolume: Int) throws {
    guard !subvolumes.isEmpty, subvolumes.count <= RoseLayout.maxHeads else {
      throw RoseFSError.invalidOption(
        "a RoseFS volume has 1 to 4 subvolumes, not \(subvolumes.count)")
    }
    guard defaultSubvolume >= 0 && defaultSubvolume < subvolumes.count else {
      throw RoseFSError.invalidOption("default subvolume \(defaultSubvolume) does not exist")
    }
    for (i, s) in subvolumes.enumerated() {
      guard !s.name.isEmpty, s.name.utf8.count <= 16, s.root.kind == .directory else {
        throw RoseFSError.invalidOption(
          "subvolume name '\(s.name)' must be 1 to 16 bytes with a directory root")
      }
      if subvolumes[..<i].contains(where: { $0.name == s.name }) {
        throw RoseFSError.invalidOption("subvolume '\(s.name)' given twice")
      }
    }
  }
}

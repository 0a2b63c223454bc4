import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

// Segment cleaning (FORMAT.md 13.5): victims become free segments, every head's content is
// unchanged, fsck is clean, each SSA kind is relocated, blocks shared by two heads stay shared.

/// What a test wrote: path to content, and path to xattrs.
struct CleaningFixture {
  var files: [String: [UInt8]] = [:]
  var xattrs: [String: [[UInt8]: [UInt8]]] = [:]

  /// Files of every storage form: inline, tail fragment, partial block in a data block, many
  /// blocks, an extent tree (40 separate extents), an xattr node, and a directory tree.
  static func populate(_ e: RoseEngine, prefix: String, seed: UInt64) throws -> CleaningFixture {
    var f = CleaningFixture()
    let dir = try e.mkdir(
      parent: e.rootIno, name: Array(prefix.utf8), mode: 0o755, uid: 0, gid: 0
    ).ino
    func put(_ name: String, _ bytes: [UInt8]) throws -> UInt32 {
      let ino = try e.createFile(dir, name)
      try e.writeAll(ino, bytes)
      f.files["\(prefix)/\(name)"] = bytes
      return ino
    }
    _ = try put("inline", testBytes(200, seed: seed))
    _ = try put("tail", testBytes(4096 + 900, seed: seed + 1))
    _ = try put("partial-block", testBytes(4096 + 4050, seed: seed + 2))
    _ = try put("blocks", testBytes(70_000, seed: seed + 3))
    // Every other block written: 40 extents do not fit the slot, so they go to an extent tree.
    let sparse = try e.createFile(dir, "sparse")
    var sparseBytes = [UInt8](repeating: 0, count: 79 * 4096 + 100)
    for i in stride(from: 0, to: 80, by: 2) {
      let b = testBytes(i == 78 ? 4096 + 100 : 4096, seed: seed + 10 + UInt64(i))
      try e.writeAll(sparse, b, at: UInt64(i) * 4096)
      sparseBytes.replaceSubrange(i * 4096..<i * 4096 + b.count, with: b)
    }
    f.files["\(prefix)/sparse"] = sparseBytes
    let x = try put("xattr", testBytes(3000, seed: seed + 4))
    let value = testBytes(1500, seed: seed + 5)
    try e.setxattr(x, name: Array("user.big".utf8), value: value, mode: .createOrReplace)
    f.xattrs["\(prefix)/xattr"] = [Array("user.big".utf8): value]
    // A directory of 80 long names: stored as a tree.
    let big = try e.mkdir(parent: dir, name: Array("many".utf8), mode: 0o755, uid: 0, gid: 0).ino
    for i in 0..<80 {
      let name = "entry-with-a-long-name-\(i)"
      let ino = try e.createFile(big, name)
      let bytes = testBytes(i % 3 == 0 ? 1500 : 40, seed: seed + 100 + UInt64(i))
      try e.writeAll(ino, bytes)
      f.files["\(prefix)/many/\(name)"] = bytes
    }
    return f
  }

  /// Every file's content and xattrs through `e`; the first difference.
  func mismatch(_ e: RoseEngine) throws -> String? {
    for (path, bytes) in files.sorted(by: { $0.key < $1.key }) {
      let ino = try e.resolve(path)
      if try e.read(ino, offset: 0, count: bytes.count + 10) != bytes {
        return "\(path): content differs"
      }
    }
    for (path, want) in xattrs {
      let ino = try e.resolve(path)
      var have: [[UInt8]: [UInt8]] = [:]
      for n in try e.listxattr(ino) { have[n] = try e.getxattr(ino, name: n) }
      if have != want { return "\(path): xattrs differ" }
    }
    return nil
  }
}

/// A head's whole export as a reader written for packed images sees it: path to mode, owner,
/// times, content (or entries) and xattrs.
func exportHead(_ r: ImageReader, _ name: String) throws -> [String: [UInt8]] {
  let h = try r.headIndex(named: name)
  var out: [String: [UInt8]] = [:]
  func walk(_ ino: UInt32, _ path: String) throws {
    for e in try r.entries(ofDirectory: ino, head: h) {
      let p = path + "/" + String(decoding: e.name, as: UTF8.self)
      let rec = try r.readInodeRecord(e.ino, head: h)
      var bytes = Array(
        "\(rec.mode) \(rec.uid) \(rec.gid) \(rec.nlink) \(rec.size) \(rec.mtime)".utf8)
      for x in try r.xattrs(of: rec, head: h) { bytes += x.name + [0] + x.value + [0] }
      if rec.kind == .directory {
        try walk(e.ino, p)
      } else {
        bytes += try r.readAll(ino: e.ino, head: h)
      }
      out[p] = bytes
    }
  }
  try walk(r.checkpoint.heads[h].rootIno, "")
  return out
}

func exportHead(blocks: [UInt32: [UInt8]], device: RecordingBlockDevice, _ name: String) throws
  -> [String: [UInt8]]
{
  let path = NSTemporaryDirectory() + "rosefs-clean-\(UUID().uuidString).img"
  defer { unlink(path) }
  try device.writeImage(blocks, to: path)
  return try exportHead(try ImageReader(image: try ImageFile(openPath: path)), name)
}

@Suite struct EngineCleaningTests {
  /// Mixed sizes, every other file deleted: every segment about half live. Cleaning frees whole
  /// segments, the victims hold no live block, the files are unchanged and fsck is clean.
  @Test func fragmentedVolumeCleansToFreeSegments() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    var rng = SplitMix(state: 11)
    var files: [(name: String, bytes: [UInt8])] = []
    let sizes = [700, 3000, 9000, 20_000, 45_000]
    for i in 0..<160 {
      let bytes = testBytes(sizes[Int(rng.below(UInt64(sizes.count)))], seed: UInt64(i))
      let ino = try e.createFile(e.rootIno, "f\(i)")
      try e.writeAll(ino, bytes)
      files.append(("f\(i)", bytes))
      if i % 20 == 19 { try e.sync() }
    }
    try e.sync()
    var kept: [(name: String, bytes: [UInt8])] = []
    for (i, f) in files.enumerated() {
      if i % 2 == 0 {
        try e.unlink(parent: e.rootIno, name: Array(f.name.utf8))
      } else {
        kept.append(f)
      }
    }
    try e.sync()
    let freeBefore = e.freeSegmentCount
    let victims = e.chooseVictims(8, policy: .greedy, maxLive: e.bps - 1)
    #expect(victims.count == 8, "victims: \(victims)")
    let liveBefore = victims.map { e.liveBlocks(inSegment: $0) }
    let freed = try e.clean(victims: victims)
    #expect(freed.sorted() == victims.sorted(), "freed \(freed) of \(victims)")
    for v in victims {
      #expect(e.liveBlocks(inSegment: v) == 0, "segment \(v) still holds live blocks")
    }
    let freeAfter = e.freeSegmentCount
    // Each victim is free; the live blocks moved into holes of other segments or one new segment.
    let moved = liveBefore.reduce(0, +)
    #expect(
      freeAfter >= freeBefore + victims.count - (moved + e.bps - 1) / e.bps - 1,
      "free segments \(freeBefore) -> \(freeAfter), \(moved) blocks moved")
    #expect(freeAfter > freeBefore, "free segments \(freeBefore) -> \(freeAfter)")
    #expect(e.cleaningStats.segmentsCleaned == victims.count)
    #expect(e.cleaningStats.blocksMoved >= moved)
    for f in kept {
      let ino = try e.resolve(f.name)
      #expect(try e.read(ino, offset: 0, count: f.bytes.count + 1) == f.bytes, "\(f.name)")
    }
    // The public entry point: greedy victims until none gains.
    var more = 0
    while try e.clean(segments: 4) > 0 && more < 50 { more += 1 }
    try e.unmount()
    try expectFsckClean(dev)
    let again = try RoseEngine.open(device: dev, subvolume: nil, readOnly: true)
    for f in kept {
      let ino = try again.resolve(f.name)
      #expect(try again.read(ino, offset: 0, count: f.bytes.count + 1) == f.bytes, "\(f.name)")
    }
    print(
      "cleaning: free segments \(freeBefore) -> \(freeAfter) after 8 victims (\(moved) live blocks); stats \(e.cleaningStats)"
    )
  }

  /// Every segment with a live block cleaned, one head: each SSA kind is relocated (the counters
  /// prove it), the content is unchanged, fsck is clean.
  @Test func everyKindIsRelocated() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    let fixture = try CleaningFixture.populate(e, prefix: "x", seed: 1)
    try e.sync()
    let all = (0..<e.segmentCount).filter { e.liveBlocks(inSegment: $0) > 0 }
    // Victims may be open log segments (the logs move off them first). A second pass moves what
    // the first wrote (the inode pages and meta-file blocks of its checkpoint) once more.
    _ = try e.clean(victims: all)
    _ = try e.clean(victims: (0..<e.segmentCount).filter { e.liveBlocks(inSegment: $0) > 0 })
    let s = e.cleaningStats
    #expect(s.dataBlocks > 0 && s.dataBlocksInExtentTrees > 0, "\(s)")
    #expect(
      s.inodePages > 0 && s.directoryNodes > 0 && s.extentNodes > 0 && s.xattrNodes > 0, "\(s)")
    #expect(s.tailBlocks > 0 && s.tailFragments > 0 && s.metaBlocks > 0, "\(s)")
    #expect(s.segmentsCleaned >= all.count - 3, "\(s)")
    #expect(try fixture.mismatch(e) == nil)
    try e.unmount()
    try expectFsckClean(dev)
    let again = try RoseEngine.open(device: dev, subvolume: nil, readOnly: true)
    #expect(try fixture.mismatch(again) == nil)
    print("cleaning every kind: \(s)")
  }

  /// A snapshotted to B, then written through B; cleaning every segment that holds a block live in
  /// both moves each shared block once and repoints both heads; A's export is byte-identical, no
  /// block A reached before the pass is written by it, fsck is clean.
  @Test func sharedBlocksAreRelocatedOnceForBothHeads() throws {
    let img = try emptyVolume(size: 16 << 20, heads: ["a", "b"])
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let ea = try RoseEngine.open(device: dev, subvolume: "a", readOnly: false)
    let fixture = try CleaningFixture.populate(ea, prefix: "x", seed: 5)
    try ea.snapshotHead(from: "a", to: "b")
    try ea.unmount()
    let eb = try RoseEngine.open(device: dev, subvolume: "b", readOnly: false)
    // B diverges: some files rewritten, one removed, one new.
    var bFixture = fixture
    let changed = testBytes(12_000, seed: 99)
    try eb.writeAll(try eb.resolve("x/blocks"), changed)
    bFixture.files["x/blocks"] = changed + Array(fixture.files["x/blocks"]![12_000...])
    try eb.unlink(parent: try eb.resolve("x"), name: Array("inline".utf8))
    bFixture.files["x/inline"] = nil
    let fresh = try eb.createFile(try eb.resolve("x"), "b-only")
    try eb.writeAll(fresh, testBytes(5000, seed: 7))
    bFixture.files["x/b-only"] = testBytes(5000, seed: 7)
    try eb.sync()
    let aBefore = try exportHead(blocks: dev.blocks, device: dev, "a")
    let a = eb.headNames.firstIndex(of: "a") ?? 0
    let b = eb.headNames.firstIndex(of: "b") ?? 1
    var aReached = Set<UInt32>()
    // Shared blocks by SSA kind: data blocks and nodes are moved once and both heads repointed;
    // an inode that needs repointing (data, tail) is rewritten in each head, with its nodes.
    func sharedCounts() -> (all: Int, data: Int, treeNodes: Int) {
      var n = (all: 0, data: 0, treeNodes: 0)
      for k in 0..<eb.mainBlocks where eb.vbm[a].get(k) && eb.vbm[b].get(k) {
        n.all += 1
        let addr = eb.mainStart + UInt32(k)
        let kind = UInt8(eb.ssaEntry(addr).info >> 28)
        if kind == SSAKind.data { n.data += 1 }
        if kind == SSAKind.node, let blk = try? dev.readBlock(addr),
          [Magic.dirNode, Magic.extentNode, Magic.xattrNode].contains(ByteReader(blk).u32(0))
        {
          n.treeNodes += 1
        }
      }
      return n
    }
    for k in 0..<eb.mainBlocks where eb.vbm[a].get(k) || eb.committed.get(k) {
      aReached.insert(eb.mainStart + UInt32(k))
    }
    let shared = sharedCounts()
    let victims = (0..<eb.segmentCount).filter { s in
      (0..<eb.bps).contains { eb.vbm[a].get(s * eb.bps + $0) && eb.vbm[b].get(s * eb.bps + $0) }
    }
    #expect(!victims.isEmpty && shared.data > 20, "victims \(victims), shared \(shared)")
    let writesBefore = dev.writeCounts
    let freed = try eb.clean(victims: victims)
    let writesAfter = dev.writeCounts
    #expect(freed.sorted() == victims.sorted(), "freed \(freed) of \(victims)")
    let overwritten = aReached.filter { writesAfter[$0] != writesBefore[$0] }
    #expect(
      overwritten.isEmpty, "blocks A reached were written: \(overwritten.sorted().prefix(10))")
    let s = eb.cleaningStats
    // Every shared data block was in a victim: moved once, repointed in both heads.
    #expect(s.dataBlocks >= shared.data && s.headRepoints >= s.dataBlocks + shared.data, "\(s)")
    let sharedAfter = sharedCounts()
    #expect(sharedAfter.data == shared.data, "shared data blocks \(shared) -> \(sharedAfter)")
    // The directory tree of x/many (no data to repoint, so its inode is not rewritten) stays shared.
    #expect(shared.treeNodes > 0 && sharedAfter.treeNodes > 0, "\(shared) -> \(sharedAfter)")
    #expect(try bFixture.mismatch(eb) == nil)
    try eb.unmount()
    try expectFsckClean(dev)
    #expect(try exportHead(blocks: dev.blocks, device: dev, "a") == aBefore, "head a changed")
    let ra = try RoseEngine.open(device: dev, subvolume: "a", readOnly: true)
    #expect(try fixture.mismatch(ra) == nil)
    let rb = try RoseEngine.open(device: dev, subvolume: "b", readOnly: true)
    #expect(try bFixture.mismatch(rb) == nil)
    print(
      "cleaning shared A/B: \(victims.count) victims, \(shared) -> \(sharedAfter) shared blocks; \(s)"
    )
  }

  /// The same from the other side: A open, B (the snapshot that diverged) cleaned as a foreign
  /// head: its inodes are rewritten in its own inode pages; every kind in both heads.
  @Test func foreignHeadInodesAreRewrittenCopyOnWrite() throws {
    let img = try emptyVolume(size: 16 << 20, heads: ["a", "b"])
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let e = try RoseEngine.open(device: dev, subvolume: "a", readOnly: false)
    let fixture = try CleaningFixture.populate(e, prefix: "x", seed: 3)
    try e.snapshotHead(from: "a", to: "b")
    try e.unmount()
    let eb = try RoseEngine.open(device: dev, subvolume: "b", readOnly: false)
    let bOnly = try CleaningFixture.populate(eb, prefix: "y", seed: 300)
    try eb.unmount()
    let ea = try RoseEngine.open(device: dev, subvolume: "a", readOnly: false)
    let aOnly = try CleaningFixture.populate(ea, prefix: "z", seed: 600)
    try ea.sync()
    let bBefore = try exportHead(blocks: dev.blocks, device: dev, "b")
    _ = try ea.clean(victims: (0..<ea.segmentCount).filter { ea.liveBlocks(inSegment: $0) > 0 })
    _ = try ea.clean(victims: (0..<ea.segmentCount).filter { ea.liveBlocks(inSegment: $0) > 0 })
    let s = ea.cleaningStats
    #expect(s.dataBlocksInExtentTrees > 0 && s.xattrNodes > 0 && s.tailFragments > 0, "\(s)")
    #expect(try fixture.mismatch(ea) == nil)
    #expect(try aOnly.mismatch(ea) == nil)
    try ea.unmount()
    try expectFsckClean(dev)
    #expect(try exportHead(blocks: dev.blocks, device: dev, "b") == bBefore, "head b changed")
    let rb = try RoseEngine.open(device: dev, subvolume: "b", readOnly: true)
    #expect(try fixture.mismatch(rb) == nil)
    #expect(try bOnly.mismatch(rb) == nil)
  }

  /// A data block that no longer matches its SSA checksum is not moved (its copy would hide the
  /// damage): the pass fails with one error naming the block, and the volume on disk is unchanged.
  @Test func damagedDataBlockIsNotMoved() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    let ino = try e.createFile(e.rootIno, "f")
    try e.writeAll(ino, testBytes(3 * 4096, seed: 1))
    try e.sync()
    guard let addr = try e.inode(ino).blocks[1] else {
      Issue.record("no block at lblk 1")
      return
    }
    try dev.writeBlock(addr, [UInt8](repeating: 0xA5, count: RoseLayout.blockSize))
    let segment = Int(addr - e.mainStart) / e.bps
    do throws(EngineError) {
      _ = try e.clean(victims: [segment])
      Issue.record("cleaning moved a damaged block")
    } catch {
      #expect(error.errno == 117, "\(error)")
      #expect("\(error)".contains("\(addr)"), "\(error)")
    }
  }

  /// A pass that fails part-way (a damaged block late in the victim), with head b open and head a's
  /// inodes already repointed: a's repointed inodes are still written, so once the block is
  /// repaired the volume unmounts fsck-clean with both heads' content intact.
  @Test func failedPassKeepsOtherHeadsConsistent() throws {
    let img = try emptyVolume(size: 16 << 20, heads: ["a", "b"])
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let ea = try RoseEngine.open(device: dev, subvolume: "a", readOnly: false)
    let fixture = try CleaningFixture.populate(ea, prefix: "x", seed: 21)
    try ea.snapshotHead(from: "a", to: "b")
    try ea.unmount()
    let eb = try RoseEngine.open(device: dev, subvolume: "b", readOnly: false)
    let bOnly = try CleaningFixture.populate(eb, prefix: "y", seed: 22)
    try eb.sync()
    let aBefore = try exportHead(blocks: dev.blocks, device: dev, "a")
    // The segment with the most data blocks live in a; its last such block is damaged.
    var best = (segment: -1, blocks: [UInt32]())
    for seg in 0..<eb.segmentCount {
      let data = (0..<eb.bps).map { eb.mainStart + UInt32(seg * eb.bps + $0) }.filter {
        eb.vbm[0].get(Int($0 - eb.mainStart))
          && UInt8(eb.ssaEntry($0).info >> 28) == SSAKind.data
      }
      if data.count > best.blocks.count { best = (seg, data) }
    }
    guard best.blocks.count >= 4, let damaged = best.blocks.last else {
      Issue.record("no segment with data blocks of a: \(best)")
      return
    }
    let original = try dev.readBlock(damaged)
    try dev.writeBlock(damaged, [UInt8](repeating: 0x5A, count: RoseLayout.blockSize))
    do throws(EngineError) {
      _ = try eb.clean(victims: [best.segment])
      Issue.record("cleaning moved a damaged block")
    } catch {
      #expect(error.errno == 117, "\(error)")
    }
    #expect(eb.cleaningStats.dataBlocks >= 3, "\(eb.cleaningStats)")
    try dev.writeBlock(damaged, original)
    try eb.unmount()
    try expectFsckClean(dev)
    #expect(try exportHead(blocks: dev.blocks, device: dev, "a") == aBefore, "head a changed")
    let rb = try RoseEngine.open(device: dev, subvolume: "b", readOnly: true)
    #expect(try fixture.mismatch(rb) == nil)
    #expect(try bOnly.mismatch(rb) == nil)
  }

  /// Foreground cleaning (FORMAT.md 13.3): once free segments are at most 2 * rsv_segments, writes
  /// clean half-live victims by themselves; content stays and fsck is clean.
  @Test func foregroundCleaningStartsWhenFreeSegmentsRunLow() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    let low = 2 * Int(e.sb.rsvSegments)
    var files: [(name: String, bytes: [UInt8])] = []
    var i = 0
    while e.freeSegmentCount > low + 4 {
      let bytes = testBytes(24_576, seed: UInt64(i))
      try e.writeAll(try e.createFile(e.rootIno, "f\(i)"), bytes)
      files.append(("f\(i)", bytes))
      i += 1
    }
    try e.sync()
    var kept: [(name: String, bytes: [UInt8])] = []
    for (j, f) in files.enumerated() {
      if j % 2 == 0 {
        try e.unlink(parent: e.rootIno, name: Array(f.name.utf8))
      } else {
        kept.append(f)
      }
    }
    try e.sync()
    #expect(e.cleaningStats.passes == 0)
    // Holes are filled first; free segments drop to the threshold and cleaning starts.
    for j in 0..<files.count / 2 {
      let bytes = testBytes(24_576, seed: 10_000 + UInt64(j))
      try e.writeAll(try e.createFile(e.rootIno, "g\(j)"), bytes)
      kept.append(("g\(j)", bytes))
    }
    #expect(e.cleaningStats.passes > 0 && e.cleaningStats.segmentsCleaned > 0, "\(e.cleaningStats)")
    for f in kept {
      #expect(try e.read(try e.resolve(f.name), offset: 0, count: f.bytes.count + 1) == f.bytes)
    }
    try e.unmount()
    try expectFsckClean(dev)
    print("foreground cleaning: \(e.cleaningStats)")
  }

  /// Cost-benefit picks differently from greedy but cleans just as correctly.
  @Test func costBenefitPolicyCleans() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    e.cleaningPolicy = .costBenefit
    let fixture = try CleaningFixture.populate(e, prefix: "x", seed: 8)
    for i in 0..<60 {
      let ino = try e.createFile(e.rootIno, "g\(i)")
      try e.writeAll(ino, testBytes(30_000, seed: UInt64(i)))
      if i % 3 != 0 { try e.unlink(parent: e.rootIno, name: Array("g\(i)".utf8)) }
      if i % 10 == 9 { try e.sync() }
    }
    try e.sync()
    let cleaned = try e.clean(segments: 4)
    #expect(cleaned == 4, "\(e.cleaningStats)")
    #expect(try fixture.mismatch(e) == nil)
    try e.unmount()
    try expectFsckClean(dev)
  }

  /// The model test with a victim cleaned every second operation: the engine still matches the
  /// host after every step, and fsck is clean at every remount and at the end.
  @Test func modelWithAggressiveCleaning() throws {
    let env = ProcessInfo.processInfo.environment
    let seeds =
      Int(env["ROSEPACK_CLEAN_MODEL_SEEDS"] ?? "") ?? (env["ROSEPACK_LONG_TESTS"] == "1" ? 500 : 24)
    var failures: [String] = []
    var moved = 0
    for seed in UInt64(5000)..<UInt64(5000 + seeds) {
      let run = ModelRun(ops: generateOps(seed: seed, count: 40), volumeSize: 16 << 20)
      run.cleanEvery = 2
      if let failure = try run.run() {
        failures.append("seed \(seed): \(failure)\n  \(run.log.joined(separator: "; "))")
        if failures.count >= 2 { break }
      }
      moved += run.cleanedBlocks
    }
    #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    #expect(moved > seeds * 20, "the cleaner moved \(moved) blocks over \(seeds) seeds")
    print("model with cleaning: \(seeds) seeds, \(moved) blocks moved by the cleaner")
  }

  /// Crash consistency across cleaning passes: every prefix of the recorded writes is fsck-clean and
  /// holds every file fsync'd before the cut.
  @Test func everyPrefixIsConsistentAcrossCleaning() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    var durable: [(name: String, data: [UInt8], at: Int)] = []
    var rng = SplitMix(state: 3)
    for round in 0..<3 {
      var names: [String] = []
      for i in 0..<8 {
        let name = "r\(round)-\(i)"
        let data = testBytes(
          Int([300, 2500, 9000, 40_000][Int(rng.below(4))]), seed: UInt64(round * 10 + i))
        let ino = try e.createFile(e.rootIno, name)
        try e.writeAll(ino, data)
        names.append(name)
        if i % 2 == 1 {
          try e.fsync(ino, dataOnly: false)
          durable.append((name, data, dev.events.count))
        }
      }
      // Unsynced deletions of the files never fsync'd, then a cleaning pass.
      for (i, n) in names.enumerated() where i % 2 == 0 {
        try e.unlink(parent: e.rootIno, name: Array(n.utf8))
      }
      // The two segments with the fewest live blocks, open log segments included.
      let used = (0..<e.segmentCount).filter { e.liveBlocks(inSegment: $0) > 0 }
      _ = try e.clean(
        victims: Array(
          used.sorted { e.liveBlocks(inSegment: $0) < e.liveBlocks(inSegment: $1) }.prefix(2)))
    }
    try e.unmount()
    #expect(e.cleaningStats.passes == 3 && e.cleaningStats.blocksMoved > 0, "\(e.cleaningStats)")
    let events = dev.events
    var checked = 0
    for n in 0...events.count {
      try expectConsistent(
        dev.image(afterEvents: n), of: dev, holding: durable.filter { $0.at <= n },
        "prefix \(n) of \(events.count)")
      checked += 1
    }
    print("crash test with cleaning: \(events.count) events, \(checked) images checked")
  }
}

/// The volume on `dev` passes fsck (the problems, if any, in the failure message).
func expectFsckClean(
  _ dev: RecordingBlockDevice, sourceLocation: SourceLocation = #_sourceLocation
) throws {
  let problems = try fsckProblems(blocks: dev.blocks, device: dev)
  #expect(
    problems.isEmpty, "\(problems.prefix(10).joined(separator: "\n"))",
    sourceLocation: sourceLocation)
}

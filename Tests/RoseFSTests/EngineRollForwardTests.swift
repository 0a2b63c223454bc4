import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// fsync by roll-forward (FORMAT.md 13.7): an fsync appends a record group to the chain from the
/// checkpoint's `rf_next` instead of writing a checkpoint; open replays complete groups.
@Suite struct EngineRollForwardTests {
  /// Blocks written between two snapshots of the device's write counts.
  static func written(_ before: [UInt32: UInt64], _ after: [UInt32: UInt64]) -> Set<UInt32> {
    Set(after.keys.filter { after[$0] != before[$0] })
  }

  /// The in-memory volume after the first `n` events, as a device of its own.
  static func view(_ dev: RecordingBlockDevice, _ blocks: [UInt32: [UInt8]]) -> RecordingBlockDevice
  {
    RecordingBlockDevice(blockCount: dev.blockCount, blocks: blocks)
  }

  @Test func fsyncIsARecordAndSurvivesACrash() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    let first = try e.createFile(e.rootIno, "first")
    try e.writeAll(first, testBytes(5000, seed: 1))
    // The first fsync of a mount is a checkpoint: it starts this instance's chain.
    try e.fsync(first, dataOnly: false)
    let cpAfterFirst = e.cp.cpVer
    #expect(e.cp.rfNext != 0)
    let data = testBytes(20_000, seed: 2)
    let f = try e.createFile(e.rootIno, "kept")
    try e.writeAll(f, data)
    let before = dev.writeCounts
    try e.fsync(f, dataOnly: false)
    let w = Self.written(before, dev.writeCounts)
    #expect(e.cp.cpVer == cpAfterFirst, "the second fsync wrote a checkpoint")
    #expect(!w.contains(2) && !w.contains(3), "a checkpoint slot was written by a record fsync")
    #expect(w.contains(e.cp.rfNext), "the record is not at rf_next")
    // No meta-file block (NAT, VBM, SSA, map index) is written by the record fsync.
    for a in w {
      let magic = BlockHeader.decode(try dev.readBlock(a)).magic
      #expect(![Magic.nat, Magic.vbm, Magic.ssa, Magic.mapIndex].contains(magic), "block \(a)")
    }
    // Not fsync'd: must not survive.
    let lost = try e.createFile(e.rootIno, "lost")
    try e.writeAll(lost, testBytes(3000, seed: 3))
    let crashed = dev.image(afterEvents: dev.events.count)

    // The crashed image: the checkpoint state is clean; the chain is runtime state.
    let path = NSTemporaryDirectory() + "rosefs-rf-\(UUID().uuidString).img"
    defer { unlink(path) }
    try dev.writeImage(crashed, to: path)
    #expect(try fsckProblems(path: path).isEmpty)
    let rt = try #require(
      try ImageReader(image: try ImageFile(openPath: path)).spaceReport().runtime)
    #expect(rt.rollForwardNext == e.cp.rfNext && rt.rollForwardGroups == 1)
    #expect(rt.rollForwardBlocks == 1 && rt.rollForwardPartialBlocks == 0)

    // Read-only open: replayed in memory, nothing written.
    let ro = Self.view(dev, crashed)
    let r = try RoseEngine.open(device: ro, subvolume: nil, readOnly: true)
    #expect(r.rollForwardReplay.groups == 1)
    #expect(try r.read(try r.resolve("kept"), offset: 0, count: data.count + 1) == data)
    #expect(ro.writeCounts.isEmpty)

    // Writable open: replayed, then a checkpoint at once; clean, the file exactly there.
    let rw = Self.view(dev, crashed)
    let e2 = try RoseEngine.open(device: rw, subvolume: nil, readOnly: false)
    #expect(e2.rollForwardReplay.groups == 1)
    #expect(e2.cp.cpVer == cpAfterFirst + 1)
    #expect(try e2.read(try e2.resolve("kept"), offset: 0, count: data.count + 1) == data)
    #expect(throws: EngineError.self) { try e2.resolve("lost") }
    #expect(try fsckProblems(blocks: rw.blocks, device: rw).isEmpty)
    try e2.unmount()
    #expect(try fsckProblems(blocks: rw.blocks, device: rw).isEmpty)
    // Without the replay the file would be missing: the checkpoint alone does not have it.
    let plain = try ImageReader(image: try ImageFile(openPath: path))
    let rootDir = try plain.readInodeRecord(plain.checkpoint.heads[0].rootIno, head: 0)
    #expect(try plain.lookup(name: Array("kept".utf8), inDirectory: rootDir, head: 0) == nil)
  }

  /// Many fsyncs with overwrites, truncation and deletes between them; every prefix of the device
  /// log, and reordered or torn writes inside each flush epoch, is fsck-clean, opens, and holds every
  /// file fsync'd before the cut exactly; a writable reopen at flush boundaries checkpoints to a
  /// clean image.
  @Test func crashPrefixesOverManyFsyncs() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    var rng = SplitMix(state: 11)
    struct Durable {
      var name: String
      var data: [UInt8]
      var at: Int
      var until = Int.max
    }
    var durable: [Durable] = []
    for i in 0..<24 {
      let name = "f\(i)"
      let data = testBytes(
        Int(rng.below(4) == 0 ? rng.below(50_000) : rng.below(5000)), seed: UInt64(i))
      let ino = try e.createFile(e.rootIno, name)
      try e.writeAll(ino, data)
      let scratch = try e.createFile(e.rootIno, "s\(i)")
      try e.writeAll(scratch, testBytes(Int(rng.below(12_000)), seed: 500 + UInt64(i)))
      if i % 2 == 1 {
        try e.writeAll(scratch, testBytes(3000, seed: 900 + UInt64(i)), at: rng.below(8000))
        _ = try e.setattr(scratch, AttributeChanges(size: rng.below(6000)))
      }
      if i % 5 == 4, let victim = durable.indices.first(where: { durable[$0].until == .max }) {
        durable[victim].until = dev.events.count
        try e.unlink(parent: e.rootIno, name: Array(durable[victim].name.utf8))
      }
      try e.fsync(ino, dataOnly: i % 3 == 0)
      durable.append(Durable(name: name, data: data, at: dev.events.count))
    }
    let recordBlocks = e.rf.blocks
    #expect(recordBlocks >= 10, "only \(recordBlocks) record blocks: the fsyncs were checkpoints")
    let events = dev.events
    var checked = 0
    /// Files fsync'd by event `n` and not unlinked before event `m` must be there.
    func check(
      _ blocks: [UInt32: [UInt8]], durableUpTo n: Int, keptUpTo m: Int? = nil, reopen: Bool,
      _ what: String
    ) throws {
      let m = m ?? n
      checked += 1
      let kept = durable.filter { $0.at <= n && m < $0.until }.map { ($0.name, $0.data, $0.at) }
      let (r, view) = try expectConsistent(blocks, of: dev, holding: kept, writable: reopen, what)
      if reopen {
        try r.unmount()
        let after = try fsckProblems(blocks: view.blocks, device: view)
        #expect(after.isEmpty, "\(what) after reopen: \(after.prefix(5).joined(separator: "; "))")
      }
    }
    for n in 0...events.count {
      let atFlush = n > 0 && events[n - 1] == .flush
      try check(
        dev.image(afterEvents: n), durableUpTo: n, reopen: atFlush && n % 3 == 0,
        "prefix \(n) of \(events.count)")
    }
    for (prevFlush, i, epoch) in flushEpochs(events) where !epoch.isEmpty {
      let base = dev.image(afterEvents: prevFlush)
      for trial in 0..<2 {
        var blocks = base
        for w in epoch where rng.below(2) == 0 { blocks[w.0] = w.1 }
        try check(
          blocks, durableUpTo: prevFlush, keptUpTo: i, reopen: trial == 0,
          "epoch \(prevFlush)..<\(i) subset \(trial)")
      }
      // Everything of the epoch but one block, torn: the group must not be applied half.
      let t = epoch[Int(rng.below(UInt64(epoch.count)))]
      var blocks = base
      for w in epoch { blocks[w.0] = w.1 }
      var torn = base[t.0] ?? [UInt8](repeating: 0, count: RoseLayout.blockSize)
      torn.replaceSubrange(0..<2048, with: t.1[0..<2048])
      blocks[t.0] = torn
      try check(
        blocks, durableUpTo: prevFlush, keptUpTo: i, reopen: true,
        "epoch \(prevFlush)..<\(i) torn block \(t.0)")
    }
    print(
      "roll-forward crash test: \(events.count) events, \(checked) images checked, \(durable.count) fsyncs, \(recordBlocks) record blocks"
    )
  }

  /// A record of an older checkpoint (or with a wrong sequence number) at the reserved address is
  /// never applied; the same record with the right cp_ver is (so the test can fail).
  @Test func staleRecordIsNeverApplied() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    let f = try e.createFile(e.rootIno, "file")
    try e.writeAll(f, testBytes(100, seed: 5))
    try e.sync()
    let cp = e.cp
    let at = cp.rfNext
    #expect(at != 0)
    // If applied, this record frees the root's inode page: the root would be gone.
    let rootPage = e.rootIno / UInt32(RoseLayout.inodesPerPage)
    func record(cpVer: UInt64, sequence: UInt32) -> [UInt8] {
      RollForwardRecord(
        cpVer: cpVer, sequence: sequence, next: 0, nextFreeNid: cp.nextFreeNid,
        inodeCount: cp.heads.map(\.inodeCount), flags: RollForwardRecord.flagLast,
        entries: [RollForwardEntry(type: RollForwardEntry.nat, head: 0, key: rootPage, value: 0)]
      ).encode(addr: at, checksum: e.checksum)
    }
    let base = dev.blocks
    for (ver, seq, applies) in [
      (cp.cpVer - 1, UInt32(0), false), (cp.cpVer + 1, 0, false), (cp.cpVer, 1, false),
      (cp.cpVer, 0, true),
    ] {
      var blocks = base
      blocks[at] = record(cpVer: ver, sequence: seq)
      let view = Self.view(dev, blocks)
      let r = try RoseEngine.open(device: view, subvolume: nil, readOnly: true)
      #expect(r.rollForwardReplay.groups == (applies ? 1 : 0), "cp_ver \(ver) sequence \(seq)")
      #expect(r.natLookup(0, rootPage) == (applies ? 0 : e.natLookup(0, rootPage)))
      if !applies {
        let rw = Self.view(dev, blocks)
        let w = try RoseEngine.open(device: rw, subvolume: nil, readOnly: false)
        #expect(try w.read(try w.resolve("file"), offset: 0, count: 200) == testBytes(100, seed: 5))
        try w.unmount()
        #expect(try fsckProblems(blocks: rw.blocks, device: rw).isEmpty)
      }
    }
  }

  /// fsck calls a pending chain runtime state, but a record in it with a bad entry a problem.
  @Test func fsckChecksTheRecordsItReaches() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    try e.sync()
    let f = try e.createFile(e.rootIno, "f")
    try e.writeAll(f, testBytes(9000, seed: 9))
    let at = e.cp.rfNext
    try e.fsync(f, dataOnly: false)
    var blocks = dev.blocks
    #expect(try fsckProblems(blocks: blocks, device: dev).isEmpty)
    var rec = try #require(
      RollForwardRecord.decode(blocks[at] ?? [], addr: at, checksum: e.checksum))
    rec.entries[0].head = 3
    blocks[at] = rec.encode(addr: at, checksum: e.checksum)
    let problems = try fsckProblems(blocks: blocks, device: dev)
    #expect(
      problems.contains {
        $0.contains("roll-forward record at block \(at)") && $0.contains("head 3")
      })
    // The engine does not apply it either.
    let r = try RoseEngine.open(device: Self.view(dev, blocks), subvolume: nil, readOnly: true)
    #expect(r.rollForwardReplay.groups == 0)
  }

  /// One fsync whose changes need several record blocks, then more fsyncs: a chain of several
  /// groups; a group missing one of its blocks is ignored and the groups before it still apply.
  @Test func chainOfSeveralGroups() throws {
    let img = try emptyVolume(size: 32 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    try e.sync()
    var files: [(String, [UInt8])] = []
    for i in 0..<260 {
      let data = testBytes(4096 + 100 * (i % 7), seed: UInt64(i))
      let ino = try e.createFile(e.rootIno, "big\(i)")
      try e.writeAll(ino, data)
      files.append(("big\(i)", data))
    }
    let beforeBig = dev.events.count
    try e.fsync(try e.resolve("big0"), dataOnly: false)
    #expect(e.rf.blocks >= 2, "\(e.rf.blocks) record blocks for 260 new files")
    let bigGroupBlocks = e.rf.blocks
    let afterBig = dev.events.count
    for i in 0..<3 {
      let ino = try e.createFile(e.rootIno, "small\(i)")
      try e.writeAll(ino, testBytes(700, seed: 50 + UInt64(i)))
      files.append(("small\(i)", testBytes(700, seed: 50 + UInt64(i))))
      try e.fsync(ino, dataOnly: false)
    }
    let crashed = dev.image(afterEvents: dev.events.count)
    let r = try RoseEngine.open(device: Self.view(dev, crashed), subvolume: nil, readOnly: true)
    #expect(r.rollForwardReplay.groups == 4)
    #expect(r.rollForwardReplay.blocks == bigGroupBlocks + 3)
    for (name, data) in files {
      #expect(try r.read(try r.resolve(name), offset: 0, count: data.count + 1) == data, "\(name)")
    }
    // The big group with its last record block missing: no group applies, nothing is half there.
    let recordWrites = (beforeBig..<afterBig).compactMap { j -> UInt32? in
      if case .write(let a, let b) = dev.events[j], BlockHeader.decode(b).magic == Magic.rollForward
      {
        return a
      }
      return nil
    }
    #expect(recordWrites.count == bigGroupBlocks)
    var cut = dev.image(afterEvents: afterBig)
    if let last = recordWrites.last { cut[last] = dev.image(afterEvents: beforeBig)[last] }
    let view = Self.view(dev, cut)
    let r2 = try RoseEngine.open(device: view, subvolume: nil, readOnly: false)
    #expect(r2.rollForwardReplay.groups == 0 && r2.rollForwardReplay.ignoredPartialGroup)
    #expect(throws: EngineError.self) { try r2.resolve("big0") }
    try r2.unmount()
    #expect(try fsckProblems(blocks: view.blocks, device: view).isEmpty)
  }

  /// Writes and fsyncs through b never write a block a reaches; after a crash and a writable
  /// reopen of b, a is unchanged and the image clean.
  @Test func fsyncThroughBLeavesAIntact() throws {
    let img = try emptyVolume(size: 32 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    let e = try RoseEngine.open(device: dev, subvolume: "a", readOnly: false)
    var aFiles: [String: [UInt8]] = [:]
    for i in 0..<30 {
      let data = testBytes([10, 900, 5000, 40_000][i % 4], seed: UInt64(i))
      try e.writeAll(try e.createFile(e.rootIno, "f\(i)"), data)
      aFiles["f\(i)"] = data
    }
    try e.snapshotHead(from: "a", to: "b")
    try e.unmount()
    let b = try RoseEngine.open(device: dev, subvolume: "b", readOnly: false)
    var protected = Set<UInt32>()
    for k in 0..<b.mainBlocks where b.vbm[0].get(k) {
      let addr = b.mainStart + UInt32(k)
      if b.ssaEntry(addr).info >> 28 != UInt32(SSAKind.meta) { protected.insert(addr) }
    }
    #expect(protected.count > 30)
    let before = dev.writeCounts
    var rng = SplitMix(state: 3)
    for step in 0..<400 {
      let name = "f\(rng.below(30))"
      guard let ino = try? b.resolve(name) else { continue }
      switch rng.below(4) {
      case 0, 1:
        try b.writeAll(
          ino, testBytes(Int(rng.below(6000)), seed: UInt64(step)), at: rng.below(50_000))
      case 2: _ = try b.setattr(ino, AttributeChanges(size: rng.below(30_000)))
      default: try b.unlink(parent: b.rootIno, name: Array(name.utf8))
      }
      if step % 4 == 0 { try b.fsync(b.rootIno, dataOnly: false) }
    }
    let hit = Self.written(before, dev.writeCounts).intersection(protected)
    #expect(hit.isEmpty, "blocks of a written through b: \(hit.sorted().prefix(20))")
    let crashed = dev.image(afterEvents: dev.events.count)
    let view = Self.view(dev, crashed)
    let b2 = try RoseEngine.open(device: view, subvolume: "b", readOnly: false)
    #expect(b2.rollForwardReplay.groups > 0)
    try b2.unmount()
    #expect(try fsckProblems(blocks: view.blocks, device: view).isEmpty)
    let a = try RoseEngine.open(device: view, subvolume: "a", readOnly: true)
    for (name, data) in aFiles {
      #expect(
        try a.read(try a.resolve(name), offset: 0, count: data.count + 1) == data, "a/\(name)")
    }
  }
}

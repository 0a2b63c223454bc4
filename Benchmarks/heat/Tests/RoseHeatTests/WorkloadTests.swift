import Foundation
import RoseMap
import Testing

@testable import RoseHeat

@Suite struct WorkloadTests {
  static let small = WorkloadParameters(seed: 7, operations: 3000, volumeBytes: 16 << 20)

  @Test func sameSeedSameStreamOtherSeedOtherStream() {
    let a = WorkloadGenerator.generate(Self.small).ops
    let b = WorkloadGenerator.generate(Self.small).ops
    var other = Self.small
    other.seed = 8
    let c = WorkloadGenerator.generate(other).ops
    #expect(a.count == 3000)
    #expect(a == b)
    #expect(a != c)
    #expect(Payload.bytes(seed: 7, op: 5, count: 100) == Payload.bytes(seed: 7, op: 5, count: 100))
    #expect(Payload.bytes(seed: 7, op: 5, count: 100) != Payload.bytes(seed: 7, op: 6, count: 100))
  }

  @Test func streamRoundTripsThroughJSONLines() throws {
    let ops = WorkloadGenerator.generate(Self.small).ops
    for o in ops.prefix(500) {
      let line = OpStream.encode(o)
      #expect(try OpStream.decode(line, file: "t", lineNumber: 1) == o)
    }
    #expect(throws: WorkloadError.self) {
      try OpStream.decode(
        "{\"n\":1,\"op\":\"explode\",\"path\":\"/a\",\"live\":0}", file: "s.jsonl", lineNumber: 3)
    }
  }

  /// The mix of the issue, and the fill band once the volume has filled.
  @Test func mixAndFillLevel() throws {
    let (ops, s) = WorkloadGenerator.generate(Self.small)
    for kind in [
      "create", "append", "overwrite", "truncate", "unlink", "rename", "mkdir", "rmdir", "fsync",
    ] {
      #expect((s.operationsByKind[kind] ?? 0) > 0, "no \(kind)")
    }
    let filled = try #require(s.filledAtOp)
    #expect(filled < 2000)
    #expect(s.minFill >= 0.5999 && s.maxFill <= 0.85)
    // Most new small files are under 4 KiB; a few large ones are 64 KiB..2 MiB.
    let sizes = ops.compactMap { o -> Int? in
      if case .create(_, let n) = o.op { return n }
      return nil
    }
    let small = sizes.filter { $0 <= 16384 }
    #expect(Double(small.filter { $0 < 4096 }.count) / Double(small.count) > 0.6)
    #expect(sizes.contains { $0 >= 65536 })
    #expect(sizes.allSatisfy { $0 <= 2 << 20 })
    // fsync every few operations.
    var gap = 0
    var worst = 0
    for o in ops {
      if case .fsync = o.op { gap = 0 } else { gap += 1 }
      worst = max(worst, gap)
    }
    #expect(worst < 40)
  }

  /// The kernel-free path: the stream applied to a host directory (the host's own filesystem) fails
  /// nowhere, and leaves exactly the files and bytes the generator's model says.
  @Test func hostDirectoryRunMatchesTheModel() throws {
    let p = WorkloadParameters(seed: 3, operations: 1500, volumeBytes: 8 << 20)
    let (ops, s) = WorkloadGenerator.generate(p)
    let root = NSTemporaryDirectory() + "rose-heat-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let outcome = StreamRunner.run(ops, seed: p.seed, on: PosixTarget(root: root))
    #expect(outcome.failures.isEmpty, "\(outcome.failures)")
    #expect(outcome.operations == 1500)
    var files = 0
    var bytes = 0
    let walker = FileManager.default.enumerator(atPath: root)
    while let rel = walker?.nextObject() as? String {
      var st = stat()
      guard lstat(root + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
      files += 1
      bytes += Int(st.st_size)
    }
    #expect(files == s.finalFiles)
    #expect(bytes == s.finalLiveBytes)
  }

  @Test func traceLinesBecomeBlockWrites() {
    let trace = """
       rose-heat-1 [000] ..... 10.0: tracing_mark_write: heat op 1
       kworker-2 [001] ..... 10.1: block_rq_complete: 7,0 WS () 8 + 8 be,0,4 [0]
       kworker-2 [001] ..... 10.2: block_rq_complete: 7,0 R () 64 + 8 be,0,4 [0]
       rose-heat-1 [000] ..... 10.3: tracing_mark_write: heat op 2
       kworker-2 [001] ..... 10.4: block_rq_complete: 7,0 WFS () 6 + 4 be,0,4 [0]
       kworker-2 [001] ..... 10.5: block_rq_complete: 7,0 D () 100 + 64 be,0,4 [0]
      """
    var log = HeatLog(filesystem: "t", blockCount: 16, operations: 2, method: "")
    let t = KernelTrace.ingest(Substring(trace), into: &log, kind: log.kind("x"))
    #expect(t.requests == 2 && t.sectors == 12 && t.markers == 2)
    // 8+8 is block 1; 6+4 straddles blocks 0 and 1.
    #expect(log.blocks == [1, 0, 1])
    #expect(log.ops == [1, 2, 2])
    #expect(log.countsPerBlock.prefix(2) == [1, 2])
    #expect(
      KernelTrace.statSectorsWritten(
        "     120        0     4242      100      300        0   103616     2000 0 0 0") == 103616)
  }

  @Test func giniAndHottest() {
    #expect(HeatStatistics.gini([5, 5, 5, 5]) == 0)
    #expect(abs(HeatStatistics.gini([0, 0, 0, 4]) - 0.75) < 1e-9)
    var log = HeatLog(filesystem: "t", blockCount: 8, operations: 3, method: "")
    let a = log.kind("journal")
    let b = log.kind("data")
    for _ in 0..<6 { log.record(op: 1, block: 3, kind: a) }
    log.record(op: 2, block: 5, kind: b)
    log.record(op: 3, block: 6, kind: b)
    log.deviceBytes = 8 * 4096
    let s = HeatStatistics(log, payloadBytes: 4096)
    #expect(s.hostWrites == 8 && s.hottestBlock == 3 && s.hottestCount == 6)
    #expect(s.hottestStructure == "journal")
    #expect(s.writeAmplification == 8)
    #expect(abs(s.hottestOverMean - 6 / (8.0 / 3)) < 1e-9)
  }

  /// Structure maps from the real ext4 tools (mkfs.ext4 on a file needs no root).
  @Test func ext4StructuresFromDumpe2fs() throws {
    let tools = ["/usr/sbin/mkfs.ext4", "/usr/sbin/dumpe2fs", "/usr/sbin/debugfs"]
    guard tools.allSatisfy({ FileManager.default.isExecutableFile(atPath: $0) }) else {
      print("skipped: e2fsprogs is not installed")
      return
    }
    let img = NSTemporaryDirectory() + "rose-heat-ext4-\(getpid()).img"
    defer { unlink(img) }
    FileManager.default.createFile(atPath: img, contents: nil)
    truncate(img, 64 << 20)
    func run(_ tool: String, _ args: [String]) throws -> String {
      let p = Process()
      p.executableURL = URL(fileURLWithPath: tool)
      p.arguments = args
      let pipe = Pipe()
      p.standardOutput = pipe
      p.standardError = FileHandle.nullDevice
      try p.run()
      let d = pipe.fileHandleForReading.readDataToEndOfFile()
      p.waitUntilExit()
      return String(decoding: d, as: UTF8.self)
    }
    _ = try run(tools[0], ["-q", "-F", img])
    let ranges = KernelStructures.ext4(
      dumpe2fs: try run(tools[1], [img]),
      journalBlocks: try run(tools[2], ["-R", "blocks <8>", img]))
    let labels = Set(ranges.map(\.label))
    for l in [
      "superblock", "inode table", "block bitmap", "inode bitmap", "journal", "journal superblock",
    ] {
      #expect(labels.contains(l), "no \(l)")
    }
    // A 64 MiB ext4 journal is 4 MiB: 1024 blocks of 4 KiB.
    #expect(ranges.filter { $0.label == "journal" }.reduce(0) { $0 + $1.count } >= 1024)
    #expect(ranges.allSatisfy { $0.first >= 0 && $0.first + $0.count <= 16384 })
  }

  @Test func btrfsChunksFromDumpTree() {
    let text = """
      \titem 1 key (FIRST_CHUNK_TREE CHUNK_ITEM 1048576) itemoff 16105 itemsize 80
      \t\tlength 4194304 owner 2 stripe_len 65536 type SYSTEM|single
      \t\tnum_stripes 1 sub_stripes 0
      \t\t\tstripe 0 devid 1 offset 1048576
      \t\tlength 8388608 owner 2 stripe_len 65536 type METADATA|DUP
      \t\t\tstripe 0 devid 1 offset 8388608
      \t\t\tstripe 1 devid 1 offset 16777216
      """
    let r = KernelStructures.btrfs(chunkTree: text)
    #expect(
      r.map(\.label) == ["superblock", "SYSTEM chunk", "METADATA chunk", "METADATA chunk (copy 2)"])
    #expect(r[1].first == 256 && r[1].count == 1024)
    #expect(r[3].first == 4096 && r[3].count == 2048)
  }

  @Test func roseFSWritesAreClassifiedByContent() {
    var nat = [UInt8](repeating: 0, count: 4096)
    nat[0...3] = [0x52, 0x4E, 0x41, 0x54]
    #expect(RoseFSWriteKind.classify(address: 500, bytes: nat) == "NAT")
    var page = [UInt8](repeating: 0, count: 4096)
    // nid 1, slots 1 and 4: inos 129 and 132 at 0x3C of their cores (32-byte slots, 128 a page; an inode
    // takes at least 3).
    page[32 + 0x3C] = 129
    page[4 * 32 + 0x3C] = 132
    #expect(RoseFSWriteKind.classify(address: 500, bytes: page) == "inode page")
    page[4 * 32 + 0x3C] = 131
    #expect(RoseFSWriteKind.classify(address: 500, bytes: page) == "file data")
    #expect(RoseFSWriteKind.classify(address: 1, bytes: page) == "superblock")
  }

  @Test func reportTableAndFigures() throws {
    let (_, s) = WorkloadGenerator.generate(Self.small)
    var log = HeatLog(filesystem: "ext4", blockCount: 4096, operations: 3000, method: "test")
    let k = log.kind("journal")
    for op in 0..<3000 { log.record(op: op, block: UInt32(op % 50), kind: k) }
    log.deviceBytes = 3000 * 4096
    log.deviceStatBytes = log.deviceBytes
    let report = HeatReport(workload: s, logs: [log, log])
    #expect(report.markdown.contains("| ext4 | 3,000 |"))
    #expect(report.markdown.contains("(equal)"))
    let (each, all) = HeatReport.figures(logs: [log, log], report: report)
    #expect(each.count == 2 && all.panels.count == 2)
    #expect(all.panels[0].bands.first?.label == "journal")
    let svg = FigureRenderer.svg(all)
    #expect(svg.hasPrefix("<svg") && svg.contains("journal"))
  }
}

import ArgumentParser
import Foundation
import RoseHeat
import RoseMap

// rose-heat: the write-heat benchmark's tools (Benchmarks/heat/README.md). Benchmarks/heat/run.sh calls
// them in order: generate, apply (under each kernel filesystem), ingest-trace, rosefs, report.

struct RoseHeatCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rose-heat",
    abstract: "The 64 MiB write-heat benchmark: workload, runners, report.",
    subcommands: [
      Generate.self, Apply.self, IngestTrace.self, IngestPwrites.self, RoseFSRun.self,
      Report.self,
    ])
}

func writeJSON<T: Encodable>(_ value: T, to path: String?) throws {
  let enc = JSONEncoder()
  enc.outputFormatting = [.prettyPrinted, .sortedKeys]
  let data = try enc.encode(value) + Data("\n".utf8)
  if let path {
    try data.write(to: URL(fileURLWithPath: path))
  } else {
    FileHandle.standardOutput.write(data)
  }
}

func readText(_ path: String) throws -> String {
  guard let d = FileManager.default.contents(atPath: path) else {
    throw ValidationError("\(path): cannot read")
  }
  return String(decoding: d, as: UTF8.self)
}

func parseBytes(_ s: String) throws -> Int {
  let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
  if let u = s.uppercased().last, let m = units[u], let n = Int(s.dropLast()) { return n * m }
  guard let n = Int(s) else { throw ValidationError("'\(s)' is not a size (64M, 65536)") }
  return n
}

struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write the operation stream (JSON lines) and its summary.")
  @Option var seed: UInt64 = 1
  @Option var ops: Int = 30_000
  @Option(help: "Volume size (64M).") var volume: String = "64M"
  @Option(help: "Lower edge of the fill band, once filled (fraction of the volume).")
  var lowFill: Double = 0.60
  @Option(help: "Upper edge of the fill band.") var highFill: Double = 0.85
  @Option(name: .shortAndLong, help: "The stream, one JSON operation per line.") var output: String
  @Option(help: "The summary (JSON): operations by kind, bytes, fill level.") var summary: String?

  func run() throws {
    guard 0 < lowFill, lowFill < highFill, highFill < 1 else {
      throw ValidationError(
        "--low-fill \(lowFill) --high-fill \(highFill): need 0 < low < high < 1")
    }
    let p = WorkloadParameters(
      seed: seed, operations: ops, volumeBytes: try parseBytes(volume), lowFill: lowFill,
      highFill: highFill)
    let (stream, s) = WorkloadGenerator.generate(p)
    var text = ""
    for o in stream { text += OpStream.encode(o) + "\n" }
    try Data(text.utf8).write(to: URL(fileURLWithPath: output))
    try writeJSON(s, to: summary)
  }
}

struct Apply: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the stream on a mounted directory (POSIX calls), writing a trace marker per op.")
  @Argument var stream: String
  @Option(help: "The mounted filesystem's directory.") var root: String
  @Option(help: "tracefs trace_marker to write \"heat op N\" to before each operation.")
  var marker: String?
  @Option(help: "The seed the stream was generated with (payload bytes).") var seed: UInt64 = 1
  @Option(name: .shortAndLong, help: "The outcome (JSON).") var output: String

  func run() throws {
    let ops = try OpStream.read(path: stream)
    var markerFD: Int32 = -1
    if let marker {
      markerFD = open(marker, O_WRONLY | O_CLOEXEC)
      guard markerFD >= 0 else { throw ValidationError("\(marker): cannot open") }
    }
    defer { if markerFD >= 0 { close(markerFD) } }
    let target = PosixTarget(root: root)
    let outcome = StreamRunner.run(
      ops, seed: seed, on: target,
      before: { n in
        guard markerFD >= 0 else { return }
        let s = "heat op \(n)\n"
        _ = s.withCString { write(markerFD, $0, strlen($0)) }
      },
      progress: { n in FileHandle.standardError.write(Data("\r\(n) operations".utf8)) })
    FileHandle.standardError.write(Data("\n".utf8))
    try writeJSON(outcome, to: output)
  }
}

struct IngestTrace: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ingest-trace",
    abstract:
      "Turn a block trace of one kernel run into a heat log, checked against the device's statistics."
  )
  @Option var fs: String
  @Option var trace: String
  @Option(help: "Device size in 4 KiB blocks.") var blocks: Int
  @Option var operations: Int
  @Option(help: "/sys/block/loopN/stat before the run (a file).") var statBefore: String
  @Option(help: "/sys/block/loopN/stat after the run (a file).") var statAfter: String
  @Option var outcome: String
  @Option(help: "dumpe2fs output (ext4).") var dumpe2fs: String?
  @Option(help: "debugfs -R 'blocks <8>' output: the journal's blocks (ext4).") var journal: String?
  @Option(help: "btrfs inspect-internal dump-tree -t chunk output (btrfs).") var btrfsChunks:
    String?
  @Option var note: [String] = []
  @Option(name: .shortAndLong) var output: String

  func run() throws {
    var log = HeatLog(
      filesystem: fs, blockCount: blocks, operations: operations,
      method:
        "kernel block tracepoint block_rq_complete (tracefs, filtered to the loop device), every write request counted once per 4 KiB block it touches; operations marked in the trace with trace_marker."
    )
    let k = log.kind("other")
    let totals = KernelTrace.ingest(Substring(try readText(trace)), into: &log, kind: k)
    log.deviceBytes = totals.sectors * 512
    if let a = KernelTrace.statSectorsWritten(try readText(statBefore)),
      let b = KernelTrace.statSectorsWritten(try readText(statAfter))
    {
      log.deviceStatBytes = (b - a) * 512
      log.deviceStatSource = "/sys/block/loopN/stat field 7 (after - before):"
    }
    if let dumpe2fs {
      log.structures = KernelStructures.ext4(
        dumpe2fs: try readText(dumpe2fs), journalBlocks: try journal.map(readText) ?? "")
    }
    if let btrfsChunks {
      log.structures = KernelStructures.btrfs(chunkTree: try readText(btrfsChunks))
    }
    log.labelByStructures(
      otherLabel: fs == "ext4" ? "data, directories, extent blocks" : "outside any chunk")
    log.outcome = try JSONDecoder().decode(
      RunOutcome.self, from: Data(try readText(outcome).utf8))
    log.notes = note
    try log.save(to: output)
    FileHandle.standardError.write(
      Data(
        "\(fs): \(totals.requests) write requests, \(totals.sectors) sectors (device stat: \(log.deviceStatBytes.map { String($0 / 512) } ?? "?")), \(totals.blockWrites) 4 KiB block writes, \(totals.markers) markers\n"
          .utf8))
  }
}

struct IngestPwrites: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ingest-pwrites",
    abstract:
      "Turn `strace -e trace=pwrite64 -s 0` of a FUSE mount's server into a heat log (writes per 4 KiB block of the image file)."
  )
  @Option var fs: String = "RoseFS (rosepack mount)"
  @Option var strace: String
  @Option(help: "Image size in 4 KiB blocks.") var blocks: Int
  @Option var operations: Int
  @Option var outcome: String
  @Option(name: .shortAndLong) var output: String

  func run() throws {
    var log = HeatLog(
      filesystem: fs, blockCount: blocks, operations: operations,
      method:
        "pwrite64 system calls of the FUSE server to the image file (strace), each counted once per 4 KiB block it covers; no operation numbers (all at op 0)."
    )
    let k = log.kind("image file")
    for line in try readText(strace).split(separator: "\n") {
      // 13080 pwrite64(5, ""..., 4096, 589824)  = 4096
      guard let r = line.range(of: "pwrite64("),
        let close = line.range(of: ")", range: r.upperBound..<line.endIndex)
      else { continue }
      let args = line[r.upperBound..<close.lowerBound].split(separator: ",").map {
        $0.trimmingCharacters(in: .whitespaces)
      }
      guard args.count == 4, let count = Int(args[2]), let offset = Int(args[3]), count > 0 else {
        continue
      }
      for b in (offset / 4096)...((offset + count - 1) / 4096) {
        log.record(op: 0, block: UInt32(b), kind: k)
      }
      log.deviceBytes += count
    }
    log.outcome = try JSONDecoder().decode(RunOutcome.self, from: Data(try readText(outcome).utf8))
    try log.save(to: output)
    FileHandle.standardError.write(Data("\(fs): \(log.blocks.count) 4 KiB block writes\n".utf8))
  }
}

struct Report: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The table (markdown, --json) and the heatmaps (SVG) from the heat logs of one run.")
  @Option var workload: String
  @Argument(help: "Heat logs (JSON), in table order.") var logs: [String]
  @Option(help: "The operation stream: adds writes by operation kind.") var stream: String?
  @Option(name: .shortAndLong, help: "Directory for table.md, report.json and the SVGs.")
  var output: String
  @Flag(help: "Print the report as JSON instead of the markdown table.") var json = false
  @Option var note: [String] = []

  func run() throws {
    let summary = try JSONDecoder().decode(
      WorkloadSummary.self, from: Data(try readText(workload).utf8))
    let heat = try logs.map { try HeatLog.load(path: $0) }
    let kinds = try stream.map { try OpStream.read(path: $0).map(\.op.name) }
    let report = HeatReport(workload: summary, logs: heat, notes: note, opKinds: kinds)
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    try Data(report.markdown.utf8).write(to: URL(fileURLWithPath: output + "/table.md"))
    try writeJSON(report, to: output + "/report.json")
    let (each, all) = HeatReport.figures(logs: heat, report: report)
    for (i, f) in each.enumerated() {
      try Data(FigureRenderer.svg(f).utf8).write(
        to: URL(fileURLWithPath: output + "/heat-\(heat[i].filesystem).svg"))
    }
    try Data(FigureRenderer.svg(all).utf8).write(to: URL(fileURLWithPath: output + "/heat-all.svg"))
    try Data(FigureRenderer.html(all).utf8).write(
      to: URL(fileURLWithPath: output + "/heat-all.html"))
    if json { try writeJSON(report, to: nil) } else { print(report.markdown, terminator: "") }
  }
}

RoseHeatCommand.main()

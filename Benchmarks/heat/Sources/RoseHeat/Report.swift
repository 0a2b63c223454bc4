import Foundation
import RoseMap

/// The benchmark's report: the table (markdown and JSON) and the heatmaps, from the heat logs of one run.
public struct HeatReport: Codable, Sendable {
  public var workload: WorkloadSummary
  public var filesystems: [HeatStatistics]
  public var methods: [String: String]
  /// Per filesystem: where the independent total comes from.
  public var sources: [String: String]
  public var notes: [String]

  public init(
    workload: WorkloadSummary, logs: [HeatLog], notes: [String] = [], opKinds: [String]? = nil
  ) {
    self.workload = workload
    filesystems = logs.map {
      HeatStatistics($0, payloadBytes: workload.payloadBytes, opKinds: opKinds)
    }
    var m: [String: String] = [:]
    var src: [String: String] = [:]
    for l in logs {
      m[l.filesystem] = l.method
      src[l.filesystem] = l.deviceStatSource
    }
    methods = m
    sources = src
    self.notes = notes
  }

  static func group(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() {
      if i > 0 && i % 3 == 0 { out.append(",") }
      out.append(c)
    }
    return String(out.reversed())
  }

  static func fixed(_ v: Double, _ digits: Int) -> String {
    let p = pow(10.0, Double(digits))
    let r = (v * p).rounded() / p
    var s = String(r)
    if let dot = s.firstIndex(of: ".") {
      let decimals = s.distance(from: dot, to: s.endIndex) - 1
      if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else if digits > 0 {
      s += "." + String(repeating: "0", count: digits)
    }
    return s
  }

  public var markdown: String {
    let w = workload
    var s = ""
    s +=
      "Workload: seed \(w.parameters.seed), \(Self.group(w.parameters.operations)) operations on a \(w.parameters.volumeBytes >> 20) MiB volume, \(Self.group(w.payloadBytes)) bytes of file data written; "
    s +=
      "filled to \(Int(w.parameters.lowFill * 100)) % at operation \(w.filledAtOp.map(Self.group) ?? "never"), then \(Self.fixed(w.minFill * 100, 1))-\(Self.fixed(w.maxFill * 100, 1)) % full (mean \(Self.fixed(w.meanFill * 100, 1)) %, files counted in whole 4 KiB blocks).\n\n"
    s +=
      "| filesystem | host writes (4 KiB) | write amplification | hottest block (writes, structure) | hottest / mean | Gini | first ENOSPC (op, live data) | failed ops |\n"
    s += "|---|---:|---:|---|---:|---:|---|---:|\n"
    for f in filesystems {
      let enospc =
        f.firstENOSPC.map { op in
          let live = f.liveBytesAtENOSPC ?? 0
          let pct = Double(live) / Double(w.parameters.volumeBytes) * 100
          return
            "op \(Self.group(op)), \(Self.fixed(Double(live) / 1_048_576, 1)) MiB (\(Self.fixed(pct, 1)) %)"
        } ?? "none"
      s +=
        "| \(f.filesystem) | \(Self.group(f.hostWrites)) | \(Self.fixed(f.writeAmplification, 2)) | block \(f.hottestBlock): \(Self.group(f.hottestCount)), \(f.structureDescription) | \(Self.fixed(f.hottestOverMean, 1)) | \(Self.fixed(f.gini, 3)) | \(enospc) | \(f.failures) |\n"
    }
    s += "\nWrites by structure (4 KiB block writes):\n\n"
    for f in filesystems {
      let parts = f.writesByStructure.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map {
        "\($0.key) \(Self.group($0.value))"
      }
      s += "- \(f.filesystem): " + parts.joined(separator: ", ") + "\n"
    }
    if filesystems.contains(where: { !$0.writesByOperation.isEmpty }) {
      s +=
        "\nWrites by the operation they completed under (all writes; the hottest block's in brackets):\n\n"
      for f in filesystems where !f.writesByOperation.isEmpty {
        let parts = f.writesByOperation.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map {
          "\($0.key) \(Self.group($0.value))"
            + (f.hottestByOperation[$0.key].map { " [\(Self.group($0))]" } ?? "")
        }
        s += "- \(f.filesystem): " + parts.joined(separator: ", ") + "\n"
      }
    }
    s += "\nHow the writes were counted:\n\n"
    for f in filesystems {
      var line = "- \(f.filesystem): \(methods[f.filesystem] ?? "")"
      if let stat = f.deviceStatBytes {
        let source = sources[f.filesystem] ?? "device statistics"
        line +=
          " Check: \(source) \(Self.group(stat / 512)) sectors written, counted here \(Self.group(f.deviceBytes / 512)) sectors (\(stat == f.deviceBytes ? "equal" : "DIFFERENT"))."
      }
      s += line + "\n"
    }
    for n in notes { s += "\n" + n + "\n" }
    return s
  }

  /// Distinct colours for structure labels (bands under the heatmaps).
  static let structurePalette: [RGB] = [
    RGB(0xd6, 0x27, 0x28), RGB(0x1f, 0x77, 0xb4), RGB(0x2c, 0xa0, 0x2c), RGB(0xff, 0x7f, 0x0e),
    RGB(0x94, 0x67, 0xbd), RGB(0x8c, 0x56, 0x4b), RGB(0xe3, 0x77, 0xc2), RGB(0x17, 0xbe, 0xcf),
    RGB(0xbc, 0xbd, 0x22), RGB(0x39, 0x3b, 0x79), RGB(0xff, 0xbb, 0x78), RGB(0x98, 0xdf, 0x8a),
    RGB(0x7f, 0x7f, 0x7f), RGB(0xc5, 0xb0, 0xd5), RGB(0x9e, 0xda, 0xe5), RGB(0xf7, 0xb6, 0xd2),
  ]

  /// The heatmap panel of one filesystem: block (columns of `blocksPerColumn`) against operation
  /// (rows of `opsPerRow`), colour by writes in the cell; under it, per column, the structure most of
  /// the column's writes went to.
  public static func panel(
    _ log: HeatLog, stats: HeatStatistics, columns: Int, rows: Int, scale: HeatScale,
    colorOf: [String: RGB]
  ) -> Panel {
    let blocksPerColumn = max(1, (log.blockCount + columns - 1) / columns)
    let totalOps = log.operations + 2
    let opsPerRow = max(1, (totalOps + rows - 1) / rows)
    let cols = (log.blockCount + blocksPerColumn - 1) / blocksPerColumn
    let rws = (totalOps + opsPerRow - 1) / opsPerRow
    var p = Panel(
      title:
        "\(log.filesystem): \(group(stats.hostWrites)) writes, hottest block \(stats.hottestBlock) x\(group(stats.hottestCount))",
      columns: cols, rows: rws, xLabel: "block (\(blocksPerColumn) per column)",
      yLabel: "operation (\(opsPerRow) per row)",
      xRange: ("0", "\(log.blockCount - 1)"), yRange: ("0", "\(log.operations + 1)"))
    var cell = [UInt64](repeating: 0, count: cols * rws)
    var columnKinds = [[UInt8: Int]](repeating: [:], count: cols)
    for i in log.blocks.indices {
      let c = Int(log.blocks[i]) / blocksPerColumn
      let r = min(rws - 1, max(0, Int(log.ops[i])) / opsPerRow)
      guard c < cols else { continue }
      cell[r * cols + c] += 1
      columnKinds[c][log.kindOf[i], default: 0] += 1
    }
    var texts: [String] = []
    for r in 0..<rws {
      for c in 0..<cols where cell[r * cols + c] > 0 {
        let k = r * cols + c
        p.colors[k] = scale.color(cell[k])
        p.infoIndex[k] = Int32(texts.count)
        texts.append(
          "blocks \(c * blocksPerColumn)-\(min(log.blockCount, (c + 1) * blocksPerColumn) - 1), operations \(r * opsPerRow)-\(min(totalOps, (r + 1) * opsPerRow) - 1): \(cell[k]) writes"
        )
      }
    }
    p.infoTexts = texts
    // Bands: consecutive columns with the same dominant structure become one band.
    var c = 0
    while c < cols {
      guard
        let top = columnKinds[c].max(by: { ($0.value, -Int($0.key)) < ($1.value, -Int($1.key)) })?
          .key
      else {
        c += 1
        continue
      }
      var end = c + 1
      while end < cols,
        columnKinds[end].max(by: { ($0.value, -Int($0.key)) < ($1.value, -Int($1.key)) })?.key
          == top
      {
        end += 1
      }
      let label = Int(top) < log.kinds.count ? log.kinds[Int(top)] : "?"
      p.bands.append(
        Band(first: c, count: end - c, label: label, color: colorOf[label] ?? RGB(0, 0, 0)))
      c = end
    }
    return p
  }

  /// One figure per filesystem and one with all of them side by side on one colour scale.
  public static func figures(
    logs: [HeatLog], report: HeatReport, columns: Int = 128, rows: Int = 150
  )
    -> (each: [Figure], all: Figure)
  {
    // Colours for the structures that label a band somewhere (decided after a first pass).
    var colorOf: [String: RGB] = [:]
    // Shared scale: the largest cell of any filesystem.
    var maximum: UInt64 = 1
    var panels: [Panel] = []
    for pass in 0..<2 {
      panels = []
      let scale = HeatScale(maximum: maximum)
      for (i, l) in logs.enumerated() {
        let p = panel(
          l, stats: report.filesystems[i], columns: columns, rows: rows, scale: scale,
          colorOf: colorOf)
        panels.append(p)
      }
      if pass == 0 {
        var labels: [String] = []
        for p in panels {
          for b in p.bands where !labels.contains(b.label) { labels.append(b.label) }
        }
        for (i, k) in labels.enumerated() {
          colorOf[k] = structurePalette[i % structurePalette.count]
        }
        // Recount the maximum cell from the first pass's bins.
        for l in logs {
          let bpc = max(1, (l.blockCount + columns - 1) / columns)
          let opr = max(1, (l.operations + 2 + rows - 1) / rows)
          var cells: [Int: UInt64] = [:]
          for i in l.blocks.indices {
            cells[(max(0, Int(l.ops[i])) / opr) * 1_000_000 + Int(l.blocks[i]) / bpc, default: 0] +=
              1
          }
          maximum = max(maximum, cells.values.max() ?? 1)
        }
      }
    }
    let scale = HeatScale(maximum: maximum)
    let w = report.workload
    let note =
      "\(group(w.parameters.operations)) operations, seed \(w.parameters.seed), \(w.parameters.volumeBytes >> 20) MiB volume; colour: 4 KiB block writes per cell; bar under each map: the structure most writes of the column went to"
    let legend = Legend(scale: scale, scaleLabel: "writes per cell")
    let each = panels.map {
      Figure(
        title: "Write heat: \($0.title.split(separator: ":").first.map(String.init) ?? "")",
        panels: [$0], legend: legend, notes: [note], cellWidth: 4, cellHeight: 3)
    }
    let all = Figure(
      title: "Write heat, one scale: block number (x) against operation (y, time downwards)",
      panels: panels, legend: legend, notes: [note], cellWidth: 3, cellHeight: 3)
    return (each, all)
  }
}

extension HeatStatistics {
  var structureDescription: String { hottestStructure }
}

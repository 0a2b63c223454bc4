import Foundation
import RoseDisk
import RoseFS
import RoseIngest
import RoseRecipe
import RoseSizes

/// What `rosepack build` reports: a table on stdout, or one JSON document with `--json`.
public struct BuildSummary: Encodable {
  struct Partition: Encodable {
    var index: Int
    var label: String
    var type: String
    var format: String
    var offset: UInt64
    var size: UInt64
    var usedBytes: UInt64
    /// Used bytes / size, percent.
    var fill: Double
    var subvolumes: [String]?
    var defaultSubvolume: String?
    var volumeBytes: UInt64?
    var inodes: UInt64?
    /// RoseFS blocks only one subvolume uses, per subvolume (the rest is shared).
    var privateBytes: [UInt64]?
    var liveBytes: UInt64?
  }

  var image: String
  var version: String
  var outputDirectory: String
  var diskSize: UInt64
  var sectorSize: UInt64
  var diskGUID: String
  /// `gpt`, `mbr` or `hybrid` (PartitionTable=).
  var partitionTable: String
  var partitions: [Partition]
  var outputs: [Manifest.Output]
  var manifest: String?
  var seconds: Double
  var warnings: [String]
  /// libarchive's warnings about the input archives (each once).
  var inputWarnings: [ArchiveWarning]

  init(
    recipe: Recipe, layout: DiskLayout, map: AllocationMap, reports: [Int: BuildReport],
    inputWarnings: [ArchiveWarning], outputs: [Manifest.Output], outputDirectory: String,
    manifestWritten: Bool, seconds: Double
  ) {
    image = recipe.image.name
    version = recipe.image.version
    self.outputDirectory = outputDirectory
    diskSize = layout.diskSize
    sectorSize = layout.sectorSize
    diskGUID = layout.diskGUID.description
    partitionTable = recipe.image.tableKind.rawValue
    self.outputs = outputs
    manifest = manifestWritten ? "manifest.json" : nil
    self.seconds = (seconds * 100).rounded() / 100
    warnings = recipe.warnings.map(\.description)
    self.inputWarnings = inputWarnings
    partitions = zip(recipe.partitions, layout.partitions).enumerated().map { i, pair in
      let (spec, part) = pair
      let used = map.usedBytes(inRange: part.offset, length: part.size)
      var p = Partition(
        index: part.index, label: part.label,
        type: spec.type.name ?? spec.type.guid.uuidString.lowercased(),
        format: spec.format.rawValue, offset: part.offset, size: part.size, usedBytes: used,
        fill: part.size == 0 ? 0 : (Double(used) * 10000 / Double(part.size)).rounded() / 100)
      if let report = reports[i] {
        let names = spec.subvolumes.isEmpty ? ["a"] : spec.subvolumes
        p.subvolumes = names
        p.defaultSubvolume = spec.defaultSubvolume ?? names.first
        p.volumeBytes = report.volumeBytes
        p.inodes = report.inodeCount
        p.privateBytes = report.privateBlocksPerHead.map { $0 * UInt64(RoseLayout.blockSize) }
        p.liveBytes = report.liveBlocks * UInt64(RoseLayout.blockSize)
      }
      return p
    }
  }

  /// The human-readable table.
  public var text: String {
    var lines: [String] = []
    lines.append(
      "\(image) \(version): \(formatSize(diskSize, exact: true)) "
        + (partitionTable == "mbr"
          ? "MBR disk, \(sectorSize)-byte sectors"
          : (partitionTable == "hybrid" ? "hybrid GPT/MBR" : "GPT")
            + " disk, \(sectorSize)-byte sectors, disk GUID \(diskGUID)")
    )
    var rows = [["#", "LABEL", "TYPE", "FORMAT", "OFFSET", "SIZE", "FILL", "CONTENT"]]
    for p in partitions {
      var content = ""
      if let names = p.subvolumes, let live = p.liveBytes, let priv = p.privateBytes {
        let marked = names.map { $0 == p.defaultSubvolume ? $0 + "*" : $0 }.joined(separator: ",")
        content = "subvolumes \(marked), \(p.inodes ?? 0) inodes, \(short(live)) live"
        if names.count > 1 {
          let own = zip(names, priv).map { "\($0) \(short($1))" }.joined(separator: ", ")
          let shared = live - min(live, priv.reduce(0, +))
          content += " (\(short(shared)) shared; only \(own))"
        }
      }
      rows.append([
        String(p.index), p.label, p.type, p.format, short(p.offset), short(p.size),
        String(format: "%.1f%%", p.fill), content,
      ])
    }
    lines += table(rows)
    lines.append("outputs in \(outputDirectory):")
    var outRows: [[String]] = []
    for o in outputs {
      outRows.append([o.file, o.format, short(o.size), String(o.sha256.prefix(16))])
    }
    if let manifest { outRows.append([manifest, "manifest", "", ""]) }
    lines += table(outRows).map { "  " + $0 }
    lines.append(String(format: "built in %.2f s", seconds))
    return lines.joined(separator: "\n")
  }

  func short(_ n: UInt64) -> String {
    let units: [(UInt64, String)] = [
      (1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K"),
    ]
    for (unit, name) in units where n >= unit {
      if n % unit == 0 { return "\(n / unit)\(name)" }
      return String(format: "%.1f", Double(n) / Double(unit)) + name
    }
    return "\(n)B"
  }

  func table(_ rows: [[String]]) -> [String] {
    guard let columns = rows.map(\.count).max() else { return [] }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
      row.enumerated().map { i, cell in
        i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
      }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
  }
}

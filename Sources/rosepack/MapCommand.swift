import ArgumentParser
import Foundation
import RoseBuild
import RoseFS
import RoseMap

struct MapCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "map",
    abstract: "Draw every block of a RoseFS volume coloured by its owner (SVG, HTML or PNG).",
    discussion: """
      Owners: superblock, checkpoint, NAT, VBM, SSA, map index, inode pages, directory, extent and xattr \
      nodes, tail blocks, file data, free. Blocks live in more than one subvolume carry a white stroke. \
      The HTML page names the owner of the block under the pointer (path and inode for file data). \
      With a write-count file (the heat benchmark writes IMAGE.writes.json next to the image) a second \
      panel shows how often each block was written. PNG needs chromium (headless).
      """)
  @OptionGroup var volume: VolumeOptions
  @Option(name: .shortAndLong, help: "Output file: .svg, .html or .png.") var output: String
  @Option(
    help:
      "Writes per block (JSON {\"writes\": [count per 4 KiB block]}); default IMAGE.writes.json if it exists."
  ) var writes: String?
  @Option(help: "Blocks per row of the map.") var columns: Int = 128

  func run() throws {
    let ext = URL(fileURLWithPath: output).pathExtension.lowercased()
    guard ["svg", "html", "png"].contains(ext) else {
      throw CLIError.usage("-o \(output): the output must end in .svg, .html or .png")
    }
    guard (8...4096).contains(columns) else {
      throw CLIError.usage("--columns \(columns): use 8 to 4096 blocks per row")
    }
    let (vol, name) = try volume.open()
    let map = try BlockMap.build(image: vol)
    var counts: [UInt64]? = nil
    let sidecar = writes ?? (volume.image + ".writes.json")
    if writes != nil || FileManager.default.fileExists(atPath: sidecar) {
      counts = try BlockWriteCounts.load(path: sidecar).writes
    }
    let figure = BlockMapFigure.make(map: map, name: name, writes: counts, columns: columns)
    let out = try PendingOutput(path: output)
    let bytes: [UInt8]
    switch ext {
    case "svg": bytes = Array(FigureRenderer.svg(figure).utf8)
    case "html": bytes = Array(FigureRenderer.html(figure).utf8)
    default: bytes = try HeadlessBrowser.screenshot(svg: FigureRenderer.svg(figure), figure: figure)
    }
    let handle = FileHandle(fileDescriptor: out.fd, closeOnDealloc: false)
    do { try handle.write(contentsOf: bytes) } catch {
      throw CLIError.failed("\(output): write failed: \(error)")
    }
    try out.commit()
    for p in map.problems.prefix(3) {
      FileHandle.standardError.write(Data("rosepack: warning: \(name): \(p)\n".utf8))
    }
  }
}

/// Write counts per 4 KiB block of a volume, as the heat benchmark records them.
struct BlockWriteCounts: Codable {
  var blockSize: Int?
  var writes: [UInt64]

  static func load(path: String) throws -> BlockWriteCounts {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw CLIError.failed("\(path): cannot read the write counts")
    }
    do {
      let c = try JSONDecoder().decode(BlockWriteCounts.self, from: data)
      if let bs = c.blockSize, bs != RoseLayout.blockSize {
        throw CLIError.failed(
          "\(path): blockSize \(bs), only \(RoseLayout.blockSize)-byte blocks are drawn")
      }
      return c
    } catch let e as CLIError {
      throw e
    } catch {
      throw CLIError.failed(
        "\(path): not a write-count file ({\"writes\": [count per block]}): \(error)")
    }
  }
}

/// A block map as a figure: one panel of owners, and one of write counts when there are any.
enum BlockMapFigure {
  static let palette: [BlockOwnerKind: RGB] = [
    .superblock: RGB(0xd6, 0x27, 0x28), .checkpoint: RGB(0xff, 0x7f, 0x0e),
    .reserved: RGB(0xc7, 0xc7, 0xc7), .inodePage: RGB(0x1f, 0x77, 0xb4),
    .directoryNode: RGB(0x94, 0x67, 0xbd), .extentNode: RGB(0x8c, 0x56, 0x4b),
    .xattrNode: RGB(0xe3, 0x77, 0xc2), .tail: RGB(0x17, 0xbe, 0xcf),
    .fileData: RGB(0x2c, 0xa0, 0x2c), .nat: RGB(0xbc, 0xbd, 0x22), .vbm: RGB(0x7f, 0x7f, 0x7f),
    .ssa: RGB(0x39, 0x3b, 0x79), .mapIndex: RGB(0xff, 0xbb, 0x78), .free: RGB(0xf7, 0xf7, 0xf7),
    .unused: RGB(0xe0, 0xe0, 0xe0),
  ]

  /// At most this many cells per panel; larger volumes draw several blocks per cell.
  static let maxCells = 1 << 17

  static func make(map: BlockMap, name: String, writes: [UInt64]?, columns: Int) -> Figure {
    let perCell = max(1, (map.blockCount + maxCells - 1) / maxCells)
    let cellCount = (map.blockCount + perCell - 1) / perCell
    let rows = (cellCount + columns - 1) / columns
    let unit = perCell == 1 ? "block" : "\(perCell) blocks"
    var owners = Panel(
      title: "owners", columns: columns, rows: rows, xLabel: "\(columns) \(unit)s per row",
      yLabel: "row", xRange: ("0", "\(columns * perCell - 1)"),
      yRange: ("0", "\(map.blockCount - 1)"))
    var heat: Panel? = nil
    var maxWrites: UInt64 = 0
    if let writes {
      heat = Panel(
        title: "writes per block", columns: columns, rows: rows,
        xLabel: "\(columns) \(unit)s per row", yLabel: "row",
        xRange: ("0", "\(columns * perCell - 1)"), yRange: ("0", "\(map.blockCount - 1)"))
      maxWrites = writes.max() ?? 0
    }
    let scale = HeatScale(maximum: maxWrites)
    var textIndex: [String: Int32] = [:]
    var texts: [String] = []
    func intern(_ t: String) -> Int32 {
      if let i = textIndex[t] { return i }
      let i = Int32(texts.count)
      texts.append(t)
      textIndex[t] = i
      return i
    }
    for cell in 0..<cellCount {
      let first = cell * perCell
      let last = min(map.blockCount, first + perCell)
      var text: String
      var kind: BlockOwnerKind
      var shared = false
      if perCell == 1 {
        let o = map.owners[first]
        kind = o.kind
        shared = o.isShared
        text = map.describe(first)
      } else {
        var tally: [BlockOwnerKind: Int] = [:]
        for b in first..<last {
          tally[map.owners[b].kind, default: 0] += 1
          if map.owners[b].isShared { shared = true }
        }
        // The most frequent owner that is not free, so a sparse cell still shows what is there.
        let ranked = tally.sorted {
          ($0.key == .free ? 0 : 1, $0.value, -Int($0.key.rawValue))
            > ($1.key == .free ? 0 : 1, $1.value, -Int($1.key.rawValue))
        }
        kind = ranked.first?.key ?? .free
        text =
          "blocks \(first)-\(last - 1): "
          + ranked.map { "\($0.value) \($0.key.label)" }.joined(separator: ", ")
      }
      var written: UInt64 = 0
      if let writes {
        for b in first..<last where b < writes.count { written += writes[b] }
        text += ", written \(written) times"
      }
      owners.colors[cell] = palette[kind]
      owners.marked[cell] = shared
      let t = intern(text)
      owners.infoIndex[cell] = t
      if heat != nil {
        heat?.colors[cell] = written > 0 ? scale.color(written) : nil
        heat?.infoIndex[cell] = t
      }
    }
    owners.infoTexts = texts
    heat?.infoTexts = texts
    var used = Set<BlockOwnerKind>()
    for o in map.owners { used.insert(o.kind) }
    let swatches = BlockOwnerKind.allCases.filter { used.contains($0) }.map {
      (label: $0.label, color: palette[$0] ?? RGB(0, 0, 0))
    }
    var notes = [
      "\(map.blockCount) blocks of 4 KiB; subvolumes: \(map.headNames.joined(separator: ", ")); white stroke: live in more than one subvolume"
    ]
    if !map.problems.isEmpty {
      notes.append("fsck found \(map.problems.count) problems; the map shows what could be walked")
    }
    return Figure(
      title: "RoseFS block map: \(name)", panels: [owners] + (heat.map { [$0] } ?? []),
      legend: Legend(
        swatches: swatches, scale: writes == nil ? nil : scale, scaleLabel: "writes per cell"),
      notes: notes)
  }
}

/// PNG output through a headless chromium (Debian package `chromium`).
enum HeadlessBrowser {
  static func find() -> String? {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    where FileManager.default.isExecutableFile(atPath: p) {
      return p
    }
    return nil
  }

  static func screenshot(svg: String, figure: Figure) throws -> [UInt8] {
    guard let browser = find() else {
      throw CLIError.failed(
        "PNG output needs chromium (apt-get install chromium); write .svg or .html")
    }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "rosepack-map-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let page = dir.appendingPathComponent("map.svg")
    let png = dir.appendingPathComponent("map.png")
    try Data(svg.utf8).write(to: page)
    let size = svgSize(svg)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: browser)
    p.arguments = [
      "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
      "--user-data-dir=" + dir.appendingPathComponent("profile").path,
      "--screenshot=" + png.path, "--window-size=\(size.0),\(size.1)", page.absoluteString,
    ]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: png.path)
    else {
      throw CLIError.failed("chromium --screenshot failed (status \(p.terminationStatus))")
    }
    return Array(data)
  }

  /// Width and height of an SVG our renderer wrote (its first width= and height= attributes).
  static func svgSize(_ svg: String) -> (Int, Int) {
    func attr(_ name: String) -> Int {
      guard let r = svg.range(of: " \(name)=\"") else { return 800 }
      let rest = svg[r.upperBound...]
      let digits = rest.prefix { $0.isNumber || $0 == "." }
      return Int((Double(digits) ?? 800).rounded(.up))
    }
    return (attr("width"), attr("height"))
  }
}

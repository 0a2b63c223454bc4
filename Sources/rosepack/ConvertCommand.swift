import ArgumentParser
import Foundation
import RoseBuild
import RoseFS
import RoseIngest
import RoseSizes

/// `rosepack convert`: tarballs and directories, layered in order, into one RoseFS image.
struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract: "Build a RoseFS image from tarballs (any format libarchive reads) and directories.",
    discussion: """
      Inputs are layered in order: a later entry replaces an earlier one. File data streams from the
      inputs into the image; memory stays proportional to the number of entries.
      SOURCE_DATE_EPOCH sets the time of created directories and the derived UUID.
      """)

  @Argument(help: "Tarballs or directories, applied in order.") var inputs: [String]
  @Option(name: .shortAndLong, help: "The image to write.") var output: String
  @Option(
    help:
      "Volume size (64M, 2G, bytes) or auto: the smallest that holds the content and the reserve.")
  var size: String = "auto"
  @Option(
    help:
      "Comma-separated subvolume names, e.g. a,b: the first holds the inputs, the others are snapshots of it."
  )
  var subvolumes: String = "a"
  @Option(help: "Volume label (up to 32 bytes).") var label: String = ""
  @Option(help: "Volume UUID (default: derived from the label and SOURCE_DATE_EPOCH).") var uuid:
    String?
  @Option(help: "Tails up to this many bytes share tail blocks (0 disables tail packing).")
  var tailMax: Int = RoseLayout.defaultTailMax
  @Option(help: "Extra slack for the runtime cleaner, in blocks.") var overprovision: UInt32 = 0
  @Flag(help: "Print the result as one JSON document on stdout.") var json = false
  @Flag(name: .shortAndLong, help: "No progress display.") var quiet = false

  func run() throws {
    let names = subvolumes.split(separator: ",").map {
      String($0).trimmingCharacters(in: .whitespaces)
    }
    guard !names.isEmpty, names.count <= 4,
      names.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 16 }),
      Set(names).count == names.count
    else {
      throw CLIError.usage(
        "--subvolumes '\(subvolumes)': give 1 to 4 distinct names of 1 to 16 bytes, e.g. a,b")
    }
    guard label.utf8.count <= 32 else { throw CLIError.usage("--label is longer than 32 bytes") }
    let options = BuildOptions(
      size: try parseSize(size, option: "--size"), label: label, uuid: try uuid.map(parseUUID),
      sourceDateEpoch: try sourceDateEpoch(), tailMax: tailMax, overprovisionBlocks: overprovision)
    for input in inputs {
      guard access(input, R_OK) == 0 else {
        throw CLIError.usage("\(input): cannot read input: \(String(cString: strerror(errno)))")
      }
      try HostInput.check(input, what: "the input", directoryAllowed: true)
    }
    let start = Date()
    let out = try PendingOutput(path: output)
    // Errors name the output the user gave, not the temporary name it is written under.
    let progress = Progress(quiet: quiet || json)
    let report: BuildReport
    var warnings: [ArchiveWarning] = []
    defer { if !quiet { reportInputWarnings(warnings) } }
    do {
      let builder = try ImageBuilder(
        image: ImageFile(fd: out.fd, path: output), options: options)
      let editor = TreeEditor(builder: builder)
      warnings = try ingest(inputs, into: editor, progress: progress)
      progress.update("writing metadata")
      let subvols = names.map { Subvolume(name: $0, root: editor.root) }
      report = try builder.finish(subvolumes: subvols, defaultSubvolume: 0)
    } catch RoseFSError.volumeTooSmall(let needed, let have) {
      // The format library reports sizes; the option that sets them is this command's to name.
      throw CLIError.usage(
        "--size \(size): the content needs \(formatSize(needed, exact: true)), the size given is "
          + "\(formatSize(have, exact: true)); use --size \((needed + (1 << 20) - 1) >> 20)M or --size auto"
      )
    } catch RoseFSError.volumeBelowMinimum {
      throw CLIError.usage(
        "--size \(size) is below the RoseFS minimum of \(formatSize(RoseLayout.minVolumeBytes)); use "
          + "\(RoseLayout.minVolumeBytes >> 20)M or more, or --size auto")
    }
    try out.commit()
    progress.done()
    let seconds = Date().timeIntervalSince(start)
    if json {
      try printJSON(
        ConvertSummary(image: output, seconds: seconds, report: report, inputWarnings: warnings))
    } else {
      let used =
        report.usedRanges.reduce(UInt64(0)) { $0 + $1[1] } * UInt64(RoseLayout.blockSize)
      print(
        "\(output): \(formatSize(report.volumeBytes)) RoseFS volume, \(report.inodeCount) inodes, "
          + "\(formatSize(used)) used, subvolumes \(names.joined(separator: ",")), uuid \(report.uuid) "
          + "(\(String(format: "%.2f", seconds)) s)")
    }
  }
}

/// Reads tarballs and directories, in order, into the tree (a later entry replaces an earlier one):
/// the input semantics `convert` and `update` share. Returns libarchive's warnings, each once.
func ingest(_ inputs: [String], into editor: TreeEditor, progress: Progress) throws
  -> [ArchiveWarning]
{
  var warnings: [ArchiveWarning] = []
  var seen = Set<ArchiveWarning>()
  for input in inputs {
    let show: (IngestProgress) -> Void = { p in
      var s = "\(input): \(p.entries) entries, \(formatSize(UInt64(max(p.bytesRead, 0))))"
      if let t = p.totalBytes, t > 0 { s += " (\(Int(Double(p.bytesRead) * 100 / Double(t)))%)" }
      progress.update(s)
    }
    if isDirectory(input) {
      try DirectoryReader(path: input, progress: show).read(into: editor)
    } else {
      let reader = ArchiveReader(path: input, progress: show)
      try reader.read(into: editor)
      warnings += reader.warnings.filter { seen.insert($0).inserted }
    }
  }
  return warnings
}

struct ConvertSummary: Encodable {
  var image: String
  var seconds: Double
  var report: BuildReport
  /// libarchive's warnings about the inputs (each once).
  var inputWarnings: [ArchiveWarning]
}

func parseUUID(_ s: String) throws -> [UInt8] {
  let hex = s.replacingOccurrences(of: "-", with: "")
  guard hex.count == 32 else { throw CLIError.usage("--uuid '\(s)' is not a UUID (32 hex digits)") }
  var out: [UInt8] = []
  var i = hex.startIndex
  while i < hex.endIndex {
    let j = hex.index(i, offsetBy: 2)
    guard let b = UInt8(hex[i..<j], radix: 16) else {
      throw CLIError.usage("--uuid '\(s)' is not a UUID")
    }
    out.append(b)
    i = j
  }
  return out
}

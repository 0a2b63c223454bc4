import ArgumentParser
import Foundation
import RoseBuild
import RoseFS
import RoseIngest
import RoseMount
import RoseSizes

/// `rosepack update`: offline A/B update. The slot becomes a snapshot of the other slot, then exactly
/// the inputs, through the read-write engine: blocks the other slot already has are reused, and none
/// of the other slot's blocks is written.
struct UpdateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "update",
    abstract:
      "Make one subvolume (slot) exactly the given tarballs and directories, reusing blocks.",
    discussion: """
      The slot starts as a snapshot of --from (default: the default subvolume, or the only other \
      one), then only what differs is written: unchanged files keep their inode and blocks, a \
      changed file is rewritten only in the 4 KiB blocks that differ. Inputs are layered as \
      `convert` layers them. The other subvolumes stay byte for byte what they were.
      """)
  @OptionGroup var volume: VolumeOptions
  @Argument(help: "Tarballs or directories, applied in order.") var inputs: [String]
  @Option(help: "The subvolume to replace (created when the volume has fewer than 4).") var slot:
    String
  @Option(help: "The subvolume the slot starts from.") var from: String?
  @Flag(help: "Make the slot the default subvolume afterwards.") var setDefault = false
  @Flag(help: "Print the result as one JSON document on stdout.") var json = false
  @Flag(name: .shortAndLong, help: "No progress display.") var quiet = false

  struct Summary: Encodable {
    var image: String
    var slot: String
    var from: String
    var seconds: Double
    var files: Int
    var contentBytes: UInt64
    var created: Int
    var removed: Int
    var changedFiles: Int
    /// File bytes written (blocks that differed, and new files).
    var dataBytesWritten: UInt64
    /// Every block the update wrote to the volume: data, metadata and checkpoints.
    var deviceBytesWritten: UInt64
    var isDefault: Bool
    /// libarchive's warnings about the inputs (each once).
    var inputWarnings: [ArchiveWarning]
  }

  func run() throws {
    guard !inputs.isEmpty else { throw CLIError.usage("update: give at least one input") }
    for input in inputs where access(input, R_OK) != 0 {
      throw CLIError.usage("\(input): cannot read input: \(String(cString: strerror(errno)))")
    }
    let start = Date()
    let (vol, name) = try volume.open()
    let lock = try lockImage(volume.image, exclusive: true)
    defer { close(lock) }
    let reader = try ImageReader(image: vol)
    let names = reader.checkpoint.heads.map(\.nameString)
    let source = try sourceSlot(
      names: names, defaultName: names[Int(reader.checkpoint.defaultHead)])

    // The new tree, its file data staged in a scratch file beside the image.
    let scratchPath = volume.image + ".update-\(getpid())"
    let scratch = open(scratchPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard scratch >= 0 else {
      throw CLIError.failed("\(scratchPath): cannot create: \(String(cString: strerror(errno)))")
    }
    unlink(scratchPath)
    defer { close(scratch) }
    let builder = try ImageBuilder(
      image: ImageFile(fd: scratch, path: scratchPath),
      options: BuildOptions(sourceDateEpoch: try sourceDateEpoch()))
    let editor = TreeEditor(builder: builder)
    let progress = Progress(quiet: quiet || json)
    let warnings = try ingest(inputs, into: editor, progress: progress)
    if !quiet { reportInputWarnings(warnings) }

    progress.update("\(name): slot \(slot) from \(source)")
    let device: FileBlockDevice
    let sync: TreeSync
    do {
      device = try FileBlockDevice(
        path: volume.image, byteOffset: vol.baseOffset, blockCount: reader.superblock.blockCount,
        writable: true)
      var engine = try RoseEngine.open(
        device: device, subvolume: names.contains(slot) ? slot : source, readOnly: false)
      try engine.snapshotHead(from: source, to: slot)
      if engine.subvolumeName != slot {
        try engine.unmount()
        engine = try RoseEngine.open(device: device, subvolume: slot, readOnly: false)
      }
      sync = TreeSync(volume: engine, source: builder.data)
      try sync.apply(root: editor.root)
      if setDefault { try engine.setDefaultHead(slot) }
      try engine.unmount()
    } catch let e as EngineError {
      throw CLIError.failed("\(name): update of slot \(slot) failed: \(e)")
    }
    progress.done()
    let s = sync.summary
    let summary = Summary(
      image: volume.image, slot: slot, from: source, seconds: Date().timeIntervalSince(start),
      files: s.files, contentBytes: s.contentBytes, created: s.created, removed: s.removed,
      changedFiles: s.changedFiles, dataBytesWritten: s.dataBytesWritten,
      deviceBytesWritten: device.writeCounts.values.reduce(0, +) * UInt64(RoseLayout.blockSize),
      isDefault: setDefault, inputWarnings: warnings)
    if json {
      try printJSON(summary)
      return
    }
    print(
      "\(name): slot \(slot) updated from \(source): \(s.files) files, "
        + "\(s.changedFiles) changed, \(s.created) created, \(s.removed) removed; wrote "
        + "\(formatSize(s.dataBytesWritten)) of file data (\(formatSize(summary.deviceBytesWritten)) "
        + "to the volume in all) for \(formatSize(s.contentBytes)) of content"
        + (setDefault ? "; \(slot) is now the default" : "")
        + " (\(String(format: "%.2f", summary.seconds)) s)")
  }

  /// The slot to start from: --from, else the default subvolume, else the only other subvolume.
  func sourceSlot(names: [String], defaultName: String) throws -> String {
    if let from {
      guard names.contains(from) else {
        throw CLIError.usage(
          "--from \(from): no such subvolume (the volume has \(names.joined(separator: ", ")))")
      }
      guard from != slot else { throw CLIError.usage("--from and --slot name the same subvolume") }
      return from
    }
    if defaultName != slot { return defaultName }
    let others = names.filter { $0 != slot }
    guard others.count == 1, let only = others.first else {
      throw CLIError.usage(
        "--slot \(slot) is the default subvolume; name the one to start from with --from (the volume has \(names.joined(separator: ", ")))"
      )
    }
    return only
  }
}

import ArgumentParser
import Foundation
import RoseBuild
import RoseDisk
import RoseFS
import RoseIngest
import RoseSizes
import SystemPackage

/// Which volume of a file to read: a bare RoseFS image, or a RoseFS partition of a GPT disk image.
struct VolumeOptions: ParsableArguments {
  @Argument(help: "A RoseFS image, or a GPT disk image holding RoseFS partitions.") var image:
    String
  @Option(help: "On a disk image: the partition, by GPT label or number (1-based).") var partition:
    String?

  /// Opens the volume: the bare image, the partition asked for, or the only RoseFS partition.
  func open() throws -> (volume: ImageFile, description: String) {
    try HostInput.check(image, what: "the image", blockDeviceAllowed: true)
    let file = try ImageFile(openPath: image)
    if partition == nil, file.hasRoseFSMagic() { return (file, image) }
    let table: GPTTable
    do {
      table = try GPTReader.read(path: image)
    } catch {
      if partition != nil { throw error }
      throw CLIError.failed(
        "\(image): neither a RoseFS image (no superblock at byte 1024) nor a GPT disk image")
    }
    if let p = partition {
      let part = try table.partition(p)
      let vol = try ImageFile(openPath: image, baseOffset: part.offset, length: part.size)
      guard vol.hasRoseFSMagic() else {
        throw CLIError.failed(
          "\(image): partition \(part.index) '\(part.label)' holds no RoseFS volume")
      }
      return (vol, "\(image) partition \(part.index) '\(part.label)'")
    }
    let rose = table.partitions.filter {
      ImageFile(fd: file.fd, path: image, baseOffset: $0.offset, length: $0.size).hasRoseFSMagic()
    }
    guard rose.count == 1, let only = rose.first else {
      let labels = rose.map { "\($0.index) '\($0.label)'" }.joined(separator: ", ")
      throw CLIError.usage(
        "\(image) is a disk image with \(rose.count) RoseFS partitions\(labels.isEmpty ? "" : " (\(labels))"); pick one with --partition LABEL|N"
      )
    }
    return (
      try ImageFile(openPath: image, baseOffset: only.offset, length: only.size),
      "\(image) partition \(only.index) '\(only.label)'"
    )
  }
}

struct FsckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fsck",
    abstract: "Check every structure and checksum of a RoseFS volume (FORMAT.md section 14).")
  @OptionGroup var volume: VolumeOptions
  @Flag(help: "Skip the data block checksums (metadata only).") var noData = false

  func run() throws {
    let (vol, name) = try volume.open()
    let problems = Fsck.check(image: vol, verifyData: !noData)
    if problems.isEmpty {
      print("\(name): clean")
      if let r = try? ImageReader(image: vol).spaceReport(), let rt = r.runtime {
        print(runtimeText(rt, headNames: r.heads.map(\.name)))
      }
      return
    }
    for p in problems { FileHandle.standardError.write(Data("\(name): \(p)\n".utf8)) }
    throw ExitCode(1)
  }
}

struct LsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ls", abstract: "List a directory of a subvolume.")
  @OptionGroup var volume: VolumeOptions
  @Argument(help: "Path inside the subvolume.") var path: String = "/"
  @Flag(name: .short, help: "Long format: mode, links, owner, size, time.") var l = false
  @Flag(name: .customShort("R"), help: "Recurse into directories.") var recursive = false
  @Option(help: "Subvolume name (default: the default subvolume).") var subvolume: String?

  func run() throws {
    let (vol, _) = try volume.open()
    let reader = try ImageReader(image: vol)
    let head = try reader.headIndex(named: subvolume)
    let ino = try reader.lookup(path, head: head)
    var out = ""
    try list(reader, head: head, ino: ino, path: path, into: &out, header: recursive)
    FileHandle.standardOutput.write(Data(out.utf8))
  }

  /// Lists `path` and, with -R, every directory below it, depth first in name order. Iterative with
  /// an explicit stack: the depth of the tree is the image's to choose, the thread stack is not. A
  /// directory reached twice is a loop (RoseFS directories have one parent), which is refused.
  private func list(
    _ r: ImageReader, head: Int, ino: UInt32, path: String, into out: inout String, header: Bool
  ) throws {
    var pending: [(ino: UInt32, path: String, header: Bool)] = [(ino, path, header)]
    var listedAt: [UInt32: String] = [:]
    var first = true
    while let (dirIno, dirPath, withHeader) = pending.popLast() {
      let rec = try r.readInodeRecord(dirIno, head: head)
      guard rec.kind == .directory else {
        out += try line(r, head: head, rec: rec, name: Array(dirPath.utf8)) + "\n"
        continue
      }
      if let earlier = listedAt[dirIno] {
        throw CLIError.failed(
          "\(volume.image): directory loop: \(dirPath) is inode \(dirIno), already listed as \(earlier); run rosepack fsck"
        )
      }
      listedAt[dirIno] = dirPath
      let entries = try r.entries(ofDirectory: dirIno, head: head).sorted {
        $0.name.lexicographicallyPrecedes($1.name)
      }
      if !first { out += "\n" }
      first = false
      if withHeader { out += "\(dirPath):\n" }
      for e in entries {
        out +=
          (l
            ? try line(r, head: head, rec: r.readInodeRecord(e.ino, head: head), name: e.name)
            : Name.printable(e.name)) + "\n"
      }
      if recursive {
        let base = dirPath.hasSuffix("/") ? dirPath : dirPath + "/"
        for e in entries.reversed() where e.type == FileKind.directory.rawValue {
          pending.append((e.ino, base + Name.printable(e.name), true))
        }
      }
    }
  }

  private func line(_ r: ImageReader, head: Int, rec: InodeRecord, name: [UInt8]) throws -> String {
    guard l else { return Name.printable(name) }
    let kind = rec.kind ?? .regular
    var s = modeString(kind: kind, permissions: rec.permissions)
    s += " \(rec.nlink) \(rec.uid) \(rec.gid) "
    if kind == .characterDevice || kind == .blockDevice {
      s += "\(rec.rdevMajor), \(rec.rdevMinor)"
    } else {
      s += "\(rec.size)"
    }
    s += " " + isoTime(rec.mtime) + " " + Name.printable(name)
    if kind == .symlink {
      s += " -> " + Name.printable(try r.readAll(ino: rec.ino, head: head, limit: 4096))
    }
    return s
  }
}

func modeString(kind: FileKind, permissions p: UInt16) -> String {
  let t: Character =
    switch kind {
    case .regular: "-"
    case .directory: "d"
    case .symlink: "l"
    case .characterDevice: "c"
    case .blockDevice: "b"
    case .fifo: "p"
    case .socket: "s"
    }
  var s = String(t)
  let bits: [(UInt16, Character)] = [
    (0o400, "r"), (0o200, "w"), (0o100, "x"), (0o040, "r"), (0o020, "w"), (0o010, "x"),
    (0o004, "r"), (0o002, "w"),
    (0o001, "x"),
  ]
  for (i, (bit, c)) in bits.enumerated() {
    var ch: Character = p & bit != 0 ? c : "-"
    if i == 2 && p & 0o4000 != 0 { ch = p & bit != 0 ? "s" : "S" }
    if i == 5 && p & 0o2000 != 0 { ch = p & bit != 0 ? "s" : "S" }
    if i == 8 && p & 0o1000 != 0 { ch = p & bit != 0 ? "t" : "T" }
    s.append(ch)
  }
  return s
}

func isoTime(_ t: Timestamp) -> String {
  let f = ISO8601DateFormatter()
  f.timeZone = TimeZone(identifier: "UTC")
  return f.string(from: Date(timeIntervalSince1970: TimeInterval(t.seconds)))
}

struct CatCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cat", abstract: "Write a file of a subvolume to stdout.")
  @OptionGroup var volume: VolumeOptions
  @Argument(help: "Path of a regular file inside the subvolume.") var path: String
  @Option(help: "Subvolume name (default: the default subvolume).") var subvolume: String?
  @Flag(help: "Write data blocks whose checksum does not match instead of failing.")
  var ignoreChecksums = false

  func run() throws {
    let (vol, _) = try volume.open()
    let reader = try ImageReader(image: vol)
    let head = try reader.headIndex(named: subvolume)
    let ino = try resolve(reader, path, head: head)
    let rec = try reader.readInodeRecord(ino, head: head)
    guard rec.kind == .regular else { throw CLIError.usage("\(path) is not a regular file") }
    // Holes are written as zeros: stdout may be a pipe, so seeking is not an option.
    var written: UInt64 = 0
    let zeros = [UInt8](repeating: 0, count: 1 << 16)
    func writeZeros(upTo end: UInt64) {
      while written < end {
        let n = Int(min(UInt64(zeros.count), end - written))
        _ = zeros.withUnsafeBytes {
          try? FileDescriptor.standardOutput.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n]))
        }
        written += UInt64(n)
      }
    }
    let source: ContentSource = ignoreChecksums ? reader : ChecksumVerifyingSource(reader: reader)
    do {
      try source.readContent(try reader.content(of: rec, head: head)) { buf, off in
        writeZeros(upTo: off)
        do { try FileDescriptor.standardOutput.writeAll(buf) } catch let e as Errno {
          throw CLIError.failed(
            "cat: write to stdout failed: \(String(cString: strerror(e.rawValue)))")
        }
        written = off + UInt64(buf.count)
      }
    } catch let e as RoseFSError {
      throw CLIError.failed("\(volume.image): \(path): \(e)")
    }
    writeZeros(upTo: rec.size)
  }
}

struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract:
      "Write a subvolume as a pax tarball (numeric owners, xattrs, hard links, devices, sparse files)."
  )
  @OptionGroup var volume: VolumeOptions
  @Option(name: .shortAndLong, help: "The tarball to write (.tar, .tar.gz, .tar.xz, .tar.zst).")
  var output: String
  @Option(help: "Subvolume name (default: the default subvolume).") var subvolume: String?
  @Flag(help: "Export data blocks whose checksum does not match instead of failing.")
  var ignoreChecksums = false

  func run() throws {
    let (vol, _) = try volume.open()
    let reader = try ImageReader(image: vol)
    let head = try reader.headIndex(named: subvolume)
    let root = try reader.loadTree(head: head)
    let source: ContentSource = ignoreChecksums ? reader : ChecksumVerifyingSource(reader: reader)
    let compression: TarExporter.Compression =
      output.hasSuffix(".gz")
      ? .gzip : output.hasSuffix(".xz") ? .xz : output.hasSuffix(".zst") ? .zstd : .none
    try checkOutputPath(output, option: "-o")
    // TarExporter writes OUTPUT.tmp-PID and renames it: removed if rosepack is interrupted.
    let temporary = output + ".tmp-\(getpid())"
    Interrupts.shared.register(temporary)
    defer { Interrupts.shared.unregister(temporary) }
    try TarExporter(compression: compression).export(root: root, source: source, to: output)
  }
}

struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Describe a RoseFS image or a disk image: geometry, subvolumes, space.")
  @Argument(help: "A RoseFS image or a GPT disk image.") var image: String
  @Option(help: "On a disk image: only this partition, by label or number.") var partition: String?
  @Flag(help: "One JSON document on stdout.") var json = false

  func run() throws {
    try HostInput.check(image, what: "the image", blockDeviceAllowed: true)
    let file = try ImageFile(openPath: image)
    let bare = file.hasRoseFSMagic()
    if bare && partition == nil {
      let report = try ImageReader(image: file).spaceReport()
      if json { try printJSON(report) } else { print(spaceText(report)) }
      return
    }
    let table = try GPTReader.read(path: image)
    var disk = DiskInspection(image: image, partitions: [])
    for p in table.partitions {
      if let want = partition, want != p.label && want != String(p.index) { continue }
      let vol = try ImageFile(openPath: image, baseOffset: p.offset, length: p.size)
      let isRose = vol.hasRoseFSMagic()
      disk.partitions.append(
        PartitionInspection(
          index: p.index, label: p.label, type: p.typeName ?? p.type.description,
          uuid: p.uuid.description,
          offset: p.offset, size: p.size,
          rosefs: isRose ? try ImageReader(image: vol).spaceReport() : nil))
    }
    if json {
      try printJSON(disk)
      return
    }
    print("\(image): \(table.scheme.uppercased()), \(table.partitions.count) partitions")
    for p in disk.partitions {
      print(
        "  \(p.index) \(p.label) \(p.type) offset \(p.offset) size \(formatSize(p.size)) uuid \(p.uuid)"
      )
      if let r = p.rosefs {
        print(spaceText(r).split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
      }
    }
  }
}

struct DiskInspection: Encodable {
  var image: String
  var partitions: [PartitionInspection]
}

struct PartitionInspection: Encodable {
  var index: Int
  var label: String
  var type: String
  var uuid: String
  var offset: UInt64
  var size: UInt64
  var rosefs: SpaceReport?
}

/// The human-readable form of `inspect`.
func spaceText(_ r: SpaceReport) -> String {
  func b(_ n: UInt64) -> String { "\(formatSize(n)) (\(n))" }
  var s = "RoseFS v1, label '\(r.label)', uuid \(r.uuid)\n"
  s += "volume \(b(r.volumeBytes)): \(r.segmentCount) segments of \(r.blocksPerSegment) blocks, "
  s += "reserve \(r.reserveSegments) segments + \(r.overprovisionBlocks) blocks\n"
  s += "features: \(r.features.joined(separator: " "))\n"
  for (i, h) in r.heads.enumerated() {
    s +=
      "subvolume \(h.name)\(i == r.defaultHead ? " (default)" : ""): root ino \(h.rootIno), \(h.inodeCount) inodes, "
    // valid_blocks and the VBM_SAME_AS index are the checkpoint's words, not facts: print them
    // as they are when they cannot be right.
    let (live, overflow) = h.validBlocks.multipliedReportingOverflow(
      by: UInt64(RoseLayout.blockSize))
    s += overflow ? "\(h.validBlocks) blocks live (valid_blocks)" : "\(formatSize(live)) live"
    s += ", \(formatSize(h.privateBytes)) private"
    if let src = h.vbmSameAs {
      s +=
        src < r.heads.count
        ? ", bitmap same as \(r.heads[src].name)" : ", bitmap same as head \(src) (no such head)"
    }
    s += "\n"
  }
  s += "used \(b(r.usedBytes)):\n"
  let rows: [(String, UInt64)] = [
    ("file data blocks", r.fileDataBytes), ("tail blocks", r.tailBlockBytes),
    ("inode pages", r.inodePageBytes),
    ("directory nodes", r.directoryNodeBytes), ("extent nodes", r.extentNodeBytes),
    ("xattr nodes", r.xattrNodeBytes),
    ("NAT", r.natBytes), ("validity bitmaps", r.vbmBytes), ("segment summary", r.ssaBytes),
    ("map index", r.mapIndexBytes), ("superblocks and checkpoints", r.fixedAreaBytes),
  ]
  for (name, n) in rows where n > 0 {
    s += "  \(name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(b(n))\n"
  }
  s += "shared by all subvolumes \(b(r.sharedByAllHeadsBytes))\n"
  s +=
    "free \(b(r.freeBytes)), of which reserve \(b(r.reserveBytes)); available to files \(b(r.availableBytes))"
  if let rt = r.runtime { s += "\n" + runtimeText(rt, headNames: r.heads.map(\.name)) }
  return s
}

/// The read-write state (checkpoint, NAT journal, segments), as `inspect` and `fsck` print it.
func runtimeText(_ rt: SpaceReport.RuntimeState, headNames: [String]) -> String {
  var flags: [String] = []
  if rt.clean { flags.append("clean") } else { flags.append("not cleanly unmounted") }
  if rt.fresh { flags.append("fresh from the packer") }
  var s =
    "checkpoint version \(rt.checkpointVersion) in block \(rt.checkpointBlock), \(flags.joined(separator: ", "))\n"
  s +=
    "segments: \(rt.freeSegments) free, \(rt.prefreeSegments) prefree, \(rt.reservedSegments) reserved, "
  s += "logs in \(rt.logSegments.map(String.init).joined(separator: " "))\n"
  let live = zip(headNames, rt.liveBlocksPerHead).map { "\($0) \($1)" }.joined(separator: ", ")
  s += "live blocks: \(live); shared by heads \(rt.sharedBlocks)\n"
  if rt.rollForwardNext == 0 {
    s += "roll-forward: no chain\n"
  } else {
    func count(_ n: Int, _ what: String) -> String { "\(n) \(what)\(n == 1 ? "" : "s")" }
    s +=
      "roll-forward: chain from block \(rt.rollForwardNext) after checkpoint \(rt.checkpointVersion): \(count(rt.rollForwardGroups, "fsync group")) in \(count(rt.rollForwardBlocks, "record block"))"
    if rt.rollForwardPartialBlocks > 0 {
      s +=
        ", then an incomplete group of \(count(rt.rollForwardPartialBlocks, "block")) (ignored at mount)"
    }
    s += "\n"
  }
  s += "NAT journal: \(rt.natJournal.count) entries"
  for e in rt.natJournal { s += "\n  head \(e.head) nid \(e.nid) -> block \(e.blockAddress)" }
  return s
}

/// Resolves `path` inside a subvolume the way the kernel would, following symlinks (absolute targets
/// start at the subvolume root) at most 40 times, as `cat` users expect for /etc/os-release and the like.
func resolve(_ r: ImageReader, _ path: String, head: Int) throws -> UInt32 {
  let root = r.checkpoint.heads[head].rootIno
  var pending = Array(path.utf8).split(separator: UInt8(ascii: "/")).map { Array($0) }
  var stack: [UInt32] = [root]  // directories from the root to the current one
  var hops = 0
  while !pending.isEmpty {
    let name = pending.removeFirst()
    if name == [UInt8(ascii: ".")] { continue }
    if name == [UInt8(ascii: "."), UInt8(ascii: ".")] {
      if stack.count > 1 { stack.removeLast() }
      continue
    }
    let dir = try r.readInodeRecord(stack[stack.count - 1], head: head)
    guard dir.kind == .directory else {
      throw CLIError.usage("\(path): a component is not a directory")
    }
    guard let entry = try r.lookup(name: name, inDirectory: dir, head: head) else {
      throw CLIError.usage("\(path): no such file or directory in the image")
    }
    let rec = try r.readInodeRecord(entry.ino, head: head)
    if rec.kind == .symlink {
      hops += 1
      guard hops <= 40 else { throw CLIError.usage("\(path): too many levels of symbolic links") }
      let target = try r.readAll(ino: entry.ino, head: head, limit: 4096)
      if target.first == UInt8(ascii: "/") { stack = [root] }
      pending = target.split(separator: UInt8(ascii: "/")).map { Array($0) } + pending
      continue
    }
    stack.append(entry.ino)
  }
  return stack[stack.count - 1]
}

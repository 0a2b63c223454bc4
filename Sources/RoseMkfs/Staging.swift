import Foundation
import RoseDisk
import RoseFS
import RoseIngest

/// The filesystems RoseMkfs makes with their own tools.
public enum FileSystemFormat: String, Sendable, CaseIterable {
  case ext2, ext3, ext4, xfs, btrfs, erofs, squashfs, f2fs, swap, vfat

  /// Read-only formats: their image is exactly as large as the content and never grows.
  public var isReadOnly: Bool { self == .erofs || self == .squashfs }
}

/// What to make: the format, its size and identity, and the user's extra options.
public struct FileSystemRequest: Sendable {
  public var format: FileSystemFormat
  /// Bytes; nil makes the smallest filesystem that holds the content.
  public var size: UInt64?
  /// nil: no label.
  public var label: String?
  /// The filesystem UUID (derived from the seed and label by the caller, so builds repeat).
  public var uuid: GUID
  /// Every time the tools stamp on their own (superblock, build time, ctime) becomes this.
  public var sourceDateEpoch: Int64
  public var compression: String?
  public var compressionLevel: Int?
  /// Appended after rosepack's own arguments (`MakeFileSystemOptions=`).
  public var extraOptions: [String]
  /// Logical sector size of the disk (xfs and f2fs take it).
  public var sectorSize: UInt64

  public init(
    format: FileSystemFormat, size: UInt64?, label: String?, uuid: GUID, sourceDateEpoch: Int64,
    compression: String? = nil, compressionLevel: Int? = nil, extraOptions: [String] = [],
    sectorSize: UInt64 = 512
  ) {
    self.format = format
    self.size = size
    self.label = label
    self.uuid = uuid
    self.sourceDateEpoch = sourceDateEpoch
    self.compression = compression
    self.compressionLevel = compressionLevel
    self.extraOptions = extraOptions
    self.sectorSize = sectorSize
  }
}

/// A built filesystem image: a file in the scratch directory (the caller removes it).
public struct FileSystemImage: Sendable {
  public var path: String
  public var size: UInt64
}

/// One tree, checked against what a format can hold and exported as a pax tarball: the one form
/// every tool can be fed from without root (directly, as `mksquashfs -tar`, or unpacked by bsdtar
/// inside the `fakeroot` session that then runs the mkfs, so owners, devices and xattrs reach it).
/// For vfat, which holds no owners, devices or xattrs, the tree is instead written out as plain
/// directories and files (`plainTree`) that mtools reads directly, with no unpacking step.
///
/// Memory follows entries: the tarball is streamed out of the builder's content source.
public final class StagedTree {
  /// The pax tarball; empty for vfat.
  public let tarball: String
  /// vfat only: the tree as plain host files, named as in the image.
  public let plainTree: String?
  public let scratch: String
  /// Entries, not counting the root.
  public let entries: Int
  /// Sum of regular file sizes.
  public let dataBytes: UInt64
  public let hasHardLinks: Bool
  let root: Inode
  /// Symlink targets by inode (the protofile writes them out).
  var symlinkTargets: [ObjectIdentifier: [UInt8]] = [:]

  /// Checks the tree for `format` and writes the tarball into `scratch` (a directory).
  public init(root: Inode, source: ContentSource, format: FileSystemFormat, scratch: String) throws
  {
    self.scratch = scratch
    self.root = root
    try Self.check(root, format: format)
    var entries = 0
    var data: UInt64 = 0
    var seen = Set<ObjectIdentifier>()
    var hardLinks = false
    walkTree(root) { _, inode in
      entries += 1
      if inode.kind != .directory, !seen.insert(ObjectIdentifier(inode)).inserted {
        hardLinks = true
        return
      }
      if inode.kind == .regular { data += inode.content.size }
    }
    self.entries = entries
    self.dataBytes = data
    self.hasHardLinks = hardLinks
    var targets: [ObjectIdentifier: [UInt8]] = [:]
    var badTarget: [UInt8]?
    try walkTree(root) { path, inode in
      // Only a protofile (xfs) writes symlink targets itself; other tools read the tarball.
      guard format == .xfs, inode.kind == .symlink else { return }
      var target: [UInt8] = []
      try source.readContent(inode.content) { bytes, _ in target += bytes }
      targets[ObjectIdentifier(inode)] = target
      if badTarget == nil, target.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
        badTarget = path
      }
    }
    if let badTarget {
      throw UnsupportedContent(
        format: format.rawValue, entry: "/" + Name.printable(badTarget),
        what: "a symlink target with spaces or control bytes",
        hint: "protofile fields are split at spaces")
    }
    symlinkTargets = targets
    if format == .vfat {
      tarball = ""
      let plain = scratch + "/fat-tree"
      try Self.writePlainTree(root, source: source, into: plain)
      plainTree = plain
    } else {
      tarball = scratch + "/content.tar"
      plainTree = nil
      try TarExporter().export(root: root, source: source, to: tarball)
    }
  }

  public func remove() {
    if !tarball.isEmpty { unlink(tarball) }
    if let plainTree { try? FileManager.default.removeItem(atPath: plainTree) }
  }

  /// Writes the directories and regular files of the tree below `directory` (a fresh one), with
  /// holes kept; owners, modes and times are not copied (the only reader is mtools, which takes
  /// names and bytes). Entries are made in sorted order, parents first.
  static func writePlainTree(_ root: Inode, source: ContentSource, into directory: String) throws {
    try? FileManager.default.removeItem(atPath: directory)
    guard mkdir(directory, 0o755) == 0 else {
      throw DiskError.invalidInput(
        path: directory, reason: "cannot create: \(String(cString: strerror(errno)))")
    }
    try walkTree(root) { path, inode in
      let target = directory + "/" + String(decoding: path, as: UTF8.self)
      switch inode.kind {
      case .directory:
        guard mkdir(target, 0o755) == 0 else {
          throw DiskError.invalidInput(
            path: target, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
      case .regular:
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
          throw DiskError.invalidInput(
            path: target, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        try StoredPieces.forEach(inode.content, source) { bytes, offset in
          var done = 0
          while done < bytes.count {
            let n = pwrite(
              fd, bytes.baseAddress.map { $0 + done }, bytes.count - done,
              off_t(clamping: offset + UInt64(done)))
            guard n > 0 else {
              throw DiskError.invalidInput(
                path: target, reason: "cannot write: \(String(cString: strerror(errno)))")
            }
            done += n
          }
        }
        guard ftruncate(fd, off_t(clamping: inode.content.size)) == 0 else {
          throw DiskError.invalidInput(
            path: target, reason: "cannot size: \(String(cString: strerror(errno)))")
        }
      default:
        // check(_:format:) refused every other kind for vfat.
        break
      }
    }
  }

  /// What each format cannot hold, refused by entry instead of silently dropped.
  static func check(_ root: Inode, format: FileSystemFormat) throws {
    func refuse(_ path: [UInt8], _ what: String, _ hint: String) -> UnsupportedContent {
      UnsupportedContent(
        format: format.rawValue, entry: "/" + Name.printable(path), what: what, hint: hint)
    }
    var failure: UnsupportedContent?
    var seen = Set<ObjectIdentifier>()
    func visit(_ path: [UInt8], _ inode: Inode) {
      guard failure == nil else { return }
      let again = inode.kind != .directory && !seen.insert(ObjectIdentifier(inode)).inserted
      switch format {
      case .swap:
        failure = refuse(path, "files", "a swap area holds no content")
      case .xfs:
        if again {
          failure = refuse(
            path, "a hard link", "mkfs.xfs protofiles (xfsprogs 6.1) have no hard links; remove it")
        } else if let x = inode.xattrs.first {
          failure = refuse(
            path, "the xattr \(Name.printable(x.name))",
            "mkfs.xfs protofiles carry no xattrs; use ext4 or btrfs")
        } else if inode.kind == .socket {
          failure = refuse(path, "a socket", "protofiles have no sockets; remove it")
        } else if inode.permissions & 0o1000 != 0 {
          failure = refuse(path, "the sticky bit", "protofiles cannot express it; use ext4")
        } else if path.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
          failure = refuse(path, "this name", "protofile names cannot hold spaces or control bytes")
        }
      case .btrfs:
        if inode.kind == .characterDevice || inode.kind == .blockDevice {
          failure = refuse(
            path, "a device node",
            "mkfs.btrfs --rootdir (btrfs-progs 6.2) writes its number as 0,0 when unprivileged; "
              + "use ext4, erofs or squashfs, or create it at boot (systemd-tmpfiles)")
        }
      case .f2fs:
        if inode.kind == .characterDevice || inode.kind == .blockDevice || inode.kind == .fifo
          || inode.kind == .socket
        {
          let what = [
            FileKind.characterDevice: "a device node", .blockDevice: "a device node",
            .fifo: "a fifo", .socket: "a socket",
          ][inode.kind, default: "a special file"]
          failure = refuse(
            path, what,
            "sload.f2fs (f2fs-tools 1.15) skips special files; use ext4, erofs or squashfs, or "
              + "create it at boot (systemd-tmpfiles)")
        } else if let x = inode.xattrs.first {
          failure = refuse(
            path, "the xattr \(Name.printable(x.name))",
            "sload.f2fs (f2fs-tools 1.15) copies no xattrs; use ext4, erofs or squashfs")
        }
      case .vfat:
        failure = fatRefusal(path, inode, again: again, refuse)
      default: break
      }
    }
    visit([], root)
    walkTree(root) { path, inode in visit(path, inode) }
    if let failure { throw failure }
    if format == .vfat, let (first, second) = fatCaseClash(root) {
      throw UnsupportedContent(
        format: format.rawValue, entry: second,
        what: "a name that differs from \(first) only in case",
        hint: "FAT compares names without case; rename one")
    }
  }

  /// What FAT cannot hold, for one entry (owners, modes and times are mapped, not refused: see
  /// docs/FILESYSTEMS.md).
  static func fatRefusal(
    _ path: [UInt8], _ inode: Inode, again: Bool,
    _ refuse: ([UInt8], String, String) -> UnsupportedContent
  ) -> UnsupportedContent? {
    switch inode.kind {
    case .directory, .regular: break
    case .symlink:
      return refuse(
        path, "a symlink",
        "FAT has no symlinks; put a copy of the target there (File=) or remove it")
    case .characterDevice, .blockDevice:
      return refuse(path, "a device node", "FAT has none; remove it")
    case .fifo:
      return refuse(path, "a fifo", "FAT has none; remove it")
    case .socket:
      return refuse(path, "a socket", "FAT has none; remove it")
    }
    if again {
      return refuse(
        path, "a hard link",
        "FAT has no hard links (the names would become two copies); remove one name")
    }
    if let x = inode.xattrs.first {
      return refuse(path, "the xattr \(Name.printable(x.name))", "FAT has no xattrs; remove it")
    }
    guard !path.isEmpty else { return nil }
    let name = Array(path.split(separator: UInt8(ascii: "/")).last ?? [])
    if let reason = fatNameProblem(name) {
      return refuse(path, "this name (\(reason))", "rename it")
    }
    return nil
  }

  /// Why FAT (VFAT long names, as Windows and Linux read them) cannot hold `name`, or nil.
  static func fatNameProblem(_ name: [UInt8]) -> String? {
    guard let text = String(validating: name, as: UTF8.self) else {
      return "not UTF-8: FAT long names are UTF-16"
    }
    if name.contains(where: { $0 >= 0x80 }) {
      // mtools 4.0.32 writes a name whose characters its DOS code page has (é, ü, ...) as an 8.3
      // name only, upper-cased ("cafÉ.txt" reads back), and the firmware reads that byte in its
      // own code page.
      return "a non-ASCII character, which mtools stores in a DOS code page and upper-case"
    }
    if let bad = name.first(where: {
      $0 < 0x20 || $0 == 0x7F || Array(#""*/:<>?\|"#.utf8).contains($0)
    }) {
      return bad < 0x20 || bad == 0x7F
        ? "a control byte" : "the character \(Character(Unicode.Scalar(bad)))"
    }
    if name.last == UInt8(ascii: ".") || name.last == UInt8(ascii: " ") {
      return "a trailing dot or space, which FAT drops"
    }
    if text.utf16.count > 255 { return "longer than 255 UTF-16 units" }
    return nil
  }

  /// Two names of one directory that FAT sees as the same (it compares names without case).
  static func fatCaseClash(_ root: Inode) -> (String, String)? {
    var clash: (String, String)?
    func visit(_ prefix: [UInt8], _ directory: Inode) {
      var seen: [String: [UInt8]] = [:]
      for name in directory.children.keys.sorted() {
        guard clash == nil else { return }
        let path = prefix.isEmpty ? name.bytes : prefix + [UInt8(ascii: "/")] + name.bytes
        let key = String(decoding: name.bytes, as: UTF8.self).uppercased()
        if let other = seen[key] {
          clash = ("/" + Name.printable(other), "/" + Name.printable(path))
          return
        }
        seen[key] = path
        if let child = directory.children[name], child.kind == .directory { visit(path, child) }
      }
    }
    visit([], root)
    return clash
  }

  /// The environment every tool runs in: fixed time zone and locale, the epoch for tools that
  /// read it (mtools, mksquashfs, e2fsprogs' test hook for its own clock).
  static func environment(epoch: Int64) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["SOURCE_DATE_EPOCH"] = String(epoch)
    environment["E2FSPROGS_FAKE_TIME"] = String(epoch)
    environment["TZ"] = "UTC"
    environment["LC_ALL"] = "C"
    environment.removeValue(forKey: "FAKEROOTKEY")
    environment.removeValue(forKey: "LD_PRELOAD")
    return environment
  }

  /// Unpacks the tarball into a fresh directory inside one `fakeroot` session and runs `tool`
  /// there with `arguments`, where `{}` stands for that directory: the tool sees the owners,
  /// devices and xattrs the tarball holds, and the host gets none of them.
  /// `keepEpoch` false leaves SOURCE_DATE_EPOCH out (mksquashfs refuses it beside `-mkfs-time`).
  func runUnpacked(_ tool: String, _ arguments: [String], epoch: Int64, keepEpoch: Bool = true)
    throws -> String
  {
    let fakeroot = try Tool.find("fakeroot", package: "fakeroot")
    let bsdtar = try Tool.find("bsdtar", package: "libarchive-tools")
    let directory = scratch + "/tree"
    try? FileManager.default.removeItem(atPath: directory)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    // bsdtar leaves the top directory's mode, owner and time as they are (and its time moves as
    // entries are made in it), so the root's are set last.
    let rootTime = root.mtime.signMagnitude
    let script =
      "\"$1\" -xpf \"$2\" -C \"$3\" --xattrs --acls --numeric-owner"
      + " && chown \(root.uid):\(root.gid) \"$3\" && chmod \(String(root.permissions, radix: 8)) \"$3\""
      + " && touch -d @\(rootTime.seconds).\(String(rootTime.nanoseconds).leftPadded(9)) \"$3\""
      + " && shift 3 && exec \"$@\""
    let resolved = arguments.map { $0 == "{}" ? directory : $0 }
    var environment = Self.environment(epoch: epoch)
    if !keepEpoch { environment.removeValue(forKey: "SOURCE_DATE_EPOCH") }
    return try Tool.run(
      fakeroot, ["--", "/bin/sh", "-c", script, "sh", bsdtar, tarball, directory, tool] + resolved,
      environment: environment)
  }

  /// A first size to try for a format without a shrink step: the data in 4 KiB blocks, an inode
  /// and a dentry per entry, a quarter on top, and the format's fixed overhead.
  func estimate(overhead: UInt64) -> UInt64 {
    let blocks = (dataBytes + UInt64(entries) * 4095) / 4096 * 4096
    let metadata = UInt64(entries + 16) * 512
    return align((blocks + metadata) + (blocks + metadata) / 4 + overhead)
  }
}

/// Rounds up to 1 MiB.
func align(_ bytes: UInt64, to grain: UInt64 = 1 << 20) -> UInt64 {
  (bytes + grain - 1) / grain * grain
}

/// Builds one filesystem image from a staged tree (or none, for swap).
public enum FileSystemMaker {
  public static func make(
    _ request: FileSystemRequest, tree: StagedTree?, scratch: String
  ) throws -> FileSystemImage {
    let output = scratch + "/\(request.format.rawValue).img"
    unlink(output)
    switch request.format {
    case .ext2, .ext3, .ext4:
      return try Ext4Maker(request: request, tree: tree).make(output)
    case .erofs:
      return try ErofsMaker(request: request, tree: tree).make(output)
    case .squashfs:
      return try SquashfsMaker(request: request, tree: tree).make(output)
    case .btrfs:
      return try BtrfsMaker(request: request, tree: tree).make(output)
    case .f2fs:
      return try F2fsMaker(request: request, tree: tree).make(output)
    case .xfs:
      return try XfsMaker(request: request, tree: tree).make(output)
    case .swap:
      return try SwapMaker(request: request).make(output)
    case .vfat:
      return try VfatMaker(request: request, tree: tree).make(output)
    }
  }

  /// Tries sizes from `first`, doubling on a tool failure, up to `limit` (for tools that can
  /// neither shrink nor report a minimum): the first size that builds is the measured fit.
  static func fit(first: UInt64, limit: UInt64 = 1 << 42, _ build: (UInt64) throws -> Void) throws
    -> UInt64
  {
    var size = first
    while true {
      do {
        try build(size)
        return size
      } catch DiskError.toolFailed(let tool, let arguments, let status, let output)
        where size * 2 <= limit
      {
        // Only "no space" failures are worth a larger try; anything else is reported now.
        let lower = output.lowercased()
        guard
          lower.contains("space") || lower.contains("too small") || lower.contains("enospc")
            || lower.contains("not enough") || lower.contains("no free")
        else {
          throw DiskError.toolFailed(
            tool: tool, arguments: arguments, status: status, output: output)
        }
        size *= 2
      }
    }
  }
}

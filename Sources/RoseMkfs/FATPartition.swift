import Foundation
import RoseDisk

/// Builds a FAT (ESP) partition image with the host tools `mkfs.vfat` (dosfstools) and
/// `mmd`/`mcopy` (mtools), with no mounts and no root.
///
/// Determinism: `mkfs.vfat --invariant -i VOLID` fixes the boot sector, mtools stamps every
/// file and directory with `SOURCE_DATE_EPOCH` (in UTC), and files are added in sorted
/// destination order, one `mcopy` per directory, so directory entry order does not depend on
/// readdir.
public struct FATPartition: Sendable {
  /// One file to put in the image. `destination` is a path inside the filesystem
  /// ("EFI/BOOT/BOOTX64.EFI"). A directory `source` is copied recursively below `destination`.
  public struct File: Sendable, Equatable {
    public var source: String
    public var destination: String

    public init(source: String, destination: String) {
      self.source = source
      self.destination = destination
    }
  }

  public var size: UInt64
  /// Volume label, at most 11 characters (upper-cased).
  public var label: String
  public var volumeID: UInt32
  /// Timestamp for every file; nil uses the SOURCE_DATE_EPOCH environment variable, then
  /// 315532800 (1980-01-01, the FAT epoch).
  public var sourceDateEpoch: UInt64?
  /// Logical sector size of the filesystem (512, or 4096 for 4Kn disks).
  public var sectorSize: UInt64
  /// 12, 16 or 32; nil lets mkfs.vfat choose.
  public var fatBits: Int?
  /// Extra `mkfs.vfat` arguments, after rosepack's own (`MakeFileSystemOptions=`: `-s 8` for the
  /// cluster size, `-i 1234ABCD` for another volume ID; the later option wins).
  public var extraOptions: [String] = []

  public init(
    size: UInt64, label: String = "ESP", volumeID: UInt32, sourceDateEpoch: UInt64? = nil,
    sectorSize: UInt64 = 512,
    fatBits: Int? = nil
  ) {
    self.size = size
    self.label = label
    self.volumeID = volumeID
    self.sourceDateEpoch = sourceDateEpoch
    self.sectorSize = sectorSize
    self.fatBits = fatBits
  }

  /// A volume ID derived from the seed (first 4 bytes of `GUID.derived(seed:label:)`).
  public static func volumeID(seed: String, label: String) -> UInt32 {
    UInt32(truncatingIfNeeded: GUID.derived(seed: seed, label: "fat-volume-id:" + label).high >> 32)
  }

  /// Builds the image in `directory` and returns its path (the caller removes it).
  public func build(files: [File], in directory: String) throws -> String {
    let (directories, copies) = try expand(files)
    let token = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    let path = directory + "/.rose-fat-" + token + ".img"
    try build(
      at: path, directories: directories, copies: copies, readOnly: [], scratch: directory)
    return path
  }

  /// Formats a new image at `path` and fills it: `directories` (parents first) with one `mmd`,
  /// `copies` (host source, destination) with one `mcopy` per directory, then the read-only
  /// attribute on `readOnly` with one `mattrib`. The image is removed when a step fails.
  func build(
    at path: String, directories: [String], copies: [(String, String)], readOnly: [String],
    scratch: String
  ) throws {
    let label = self.label.uppercased()
    guard !label.isEmpty, label.utf8.count <= 11 else {
      throw DiskError.invalidLabel(
        label: self.label, reason: "FAT volume labels have 1 to 11 characters")
    }
    guard size % sectorSize == 0, size >= 64 * sectorSize else {
      throw DiskError.invalidSizeRule(
        label: self.label,
        reason: "FAT size \(size) must be a sector multiple and at least 64 sectors")
    }
    let mkfs = try Tool.find("mkfs.vfat", package: "dosfstools")
    let mmd = try Tool.find("mmd", package: "mtools")
    let mcopy = try Tool.find("mcopy", package: "mtools")
    let environment = Self.environment(epoch: Self.fatEpoch(sourceDateEpoch))
    try createSparseFile(path, size: size)
    do {
      // dosfstools 4.2 (Debian 12) has --invariant; older ones do not, and need no check here
      // because install-deps.sh installs 4.2.
      let volume = String(volumeID, radix: 16)
      var arguments = [
        "--invariant", "-i", String(repeating: "0", count: 8 - volume.count) + volume, "-n", label,
        "-S", String(sectorSize),
      ]
      if let fatBits { arguments += ["-F", String(fatBits)] }
      arguments += extraOptions
      arguments.append(path)
      _ = try Tool.run(mkfs, arguments, environment: environment)
      if !directories.isEmpty {
        _ = try Tool.run(
          mmd, ["-i", path] + directories.map { "::/" + $0 }, environment: environment)
      }
      try copy(copies, into: path, mcopy: mcopy, scratch: scratch, environment: environment)
      if !readOnly.isEmpty {
        let mattrib = try Tool.find("mattrib", package: "mtools")
        _ = try Tool.run(
          mattrib, ["-i", path, "+r"] + readOnly.map { "::/" + $0 }, environment: environment)
      }
    } catch {
      unlink(path)
      throw error
    }
  }

  /// The time every FAT entry gets: SOURCE_DATE_EPOCH (the argument, else the environment),
  /// clamped to what a FAT date holds (1980-01-01 to 2107-12-31, in UTC).
  static func fatEpoch(_ epoch: UInt64?) -> UInt64 {
    let value =
      epoch ?? ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap { UInt64($0) }
      ?? 315_532_800
    return min(max(value, 315_532_800), 4_354_819_198)
  }

  /// mtools' environment: the epoch stamps every entry, times are written as UTC, and names
  /// are read as UTF-8 (under the C locale mtools would mangle a non-ASCII name).
  static func environment(epoch: UInt64) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["SOURCE_DATE_EPOCH"] = String(epoch)
    environment["TZ"] = "UTC"
    environment["LC_ALL"] = "C.UTF-8"
    environment["MTOOLS_SKIP_CHECK"] = "1"
    environment.removeValue(forKey: "MTOOLSRC")
    return environment
  }

  /// Copies the files with one `mcopy` per target directory (not one per file: an ESP with
  /// thousands of files must not start thousands of processes). Each file is first linked (or
  /// copied) under its destination name into a staged directory, because mcopy names a copy after
  /// its source. The names are passed in sorted order, so directory entries and cluster allocation
  /// do not depend on the host's readdir order, as one recursive `mcopy -s` would make them.
  func copy(
    _ copies: [(String, String)], into image: String, mcopy: String, scratch: String,
    environment: [String: String]
  ) throws {
    guard !copies.isEmpty else { return }
    let stage = scratch + "/.rose-fat-stage-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    defer { try? FileManager.default.removeItem(atPath: stage) }
    // Per image directory: (name in the image, host path to hand mcopy).
    var byDirectory: [String: [(String, String)]] = [:]
    for (source, destination) in copies {
      let directory = (destination as NSString).deletingLastPathComponent
      if (source as NSString).lastPathComponent == (destination as NSString).lastPathComponent {
        // Already named as in the image (a tree staged for vfat): no link needed.
        byDirectory[directory, default: []].append(
          ((destination as NSString).lastPathComponent, source))
        continue
      }
      let staged = stage + "/" + destination
      let parent = (staged as NSString).deletingLastPathComponent
      try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
      unlink(staged)
      if link(source, staged) != 0 {
        do {
          try FileManager.default.copyItem(atPath: source, toPath: staged)
        } catch {
          throw DiskError.invalidInput(path: source, reason: "cannot stage for mcopy: \(error)")
        }
      }
      byDirectory[directory, default: []].append(
        ((destination as NSString).lastPathComponent, staged))
    }
    for directory in byDirectory.keys.sorted() {
      guard
        let sources = byDirectory[directory]?.sorted(by: {
          Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8))
        }).map(\.1)
      else { continue }
      // Keep each command line well under ARG_MAX.
      var start = 0
      while start < sources.count {
        var end = start
        var bytes = 0
        while end < sources.count && (end == start || bytes + sources[end].utf8.count < 1 << 17) {
          bytes += sources[end].utf8.count + 1
          end += 1
        }
        _ = try Tool.run(
          mcopy,
          ["-i", image, "-o", "-D", "o"] + Array(sources[start..<end]) + ["::/" + directory + "/"],
          environment: environment)
        start = end
      }
    }
  }

  /// A FAT file system holds directories and regular files only; anything else handed to mcopy could
  /// block it (a FIFO) or read forever (a device), so it is refused here, by name.
  static func refuseSpecial(_ path: String) throws {
    var st = stat()
    guard stat(path, &st) == 0 else {
      throw DiskError.invalidInput(path: path, reason: "file for the FAT image does not exist")
    }
    let type = st.st_mode & S_IFMT
    guard type == S_IFREG || type == S_IFDIR else {
      let kind =
        type == S_IFIFO
        ? "a FIFO"
        : type == S_IFSOCK ? "a socket" : type == S_IFCHR ? "a character device" : "a block device"
      throw DiskError.invalidInput(
        path: path,
        reason:
          "is \(kind); a FAT partition holds only regular files and directories. Remove it from the source tree"
      )
    }
  }

  /// Sorted list of directories to create (parents first) and files to copy.
  func expand(_ files: [File]) throws -> ([String], [(String, String)]) {
    var directories = Set<String>()
    var copies: [(String, String)] = []
    func addParents(_ destination: String) {
      var parts = destination.split(separator: "/").map(String.init)
      parts.removeLast()
      var prefix = ""
      for part in parts {
        prefix = prefix.isEmpty ? part : prefix + "/" + part
        directories.insert(prefix)
      }
    }
    for file in files {
      let destination = file.destination.split(separator: "/").joined(separator: "/")
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: file.source, isDirectory: &isDirectory) else {
        throw DiskError.invalidInput(
          path: file.source, reason: "file for the FAT image does not exist")
      }
      if isDirectory.boolValue {
        if !destination.isEmpty { directories.insert(destination) }
        addParents(destination + "/x")
        let entries = (try? FileManager.default.subpathsOfDirectory(atPath: file.source)) ?? []
        for entry in entries.sorted() {
          let source = file.source + "/" + entry
          let target = destination.isEmpty ? entry : destination + "/" + entry
          var entryIsDirectory: ObjCBool = false
          _ = FileManager.default.fileExists(atPath: source, isDirectory: &entryIsDirectory)
          try Self.refuseSpecial(source)
          if entryIsDirectory.boolValue {
            directories.insert(target)
          } else {
            addParents(target)
            copies.append((source, target))
          }
        }
      } else {
        try Self.refuseSpecial(file.source)
        guard !destination.isEmpty else {
          throw DiskError.invalidInput(
            path: file.source, reason: "destination path in the FAT image is empty")
        }
        addParents(destination)
        copies.append((file.source, destination))
      }
    }
    directories.remove("")
    let sortedDirectories = directories.sorted { a, b in
      let da = a.split(separator: "/").count
      let db = b.split(separator: "/").count
      return da != db ? da < db : a < b
    }
    return (sortedDirectories, copies.sorted { $0.1 < $1.1 })
  }
}

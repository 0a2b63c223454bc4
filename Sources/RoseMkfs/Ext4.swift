import Foundation
import RoseDisk
import RoseFS

/// ext2, ext3 and ext4 with `mke2fs -d` (e2fsprogs 1.47.0 takes a directory only): the staged
/// tree is unpacked and copied in one fakeroot session, so owners, modes, devices, fifos,
/// sockets, hard links, symlinks, xattrs and times all arrive.
///
/// Determinism: `-U` and `-E hash_seed=` fix the UUIDs, `E2FSPROGS_FAKE_TIME` mke2fs's clock
/// (superblock times, crtime, lost+found); the one time mke2fs copies from the host, each inode's
/// ctime (the moment of unpacking), is set afterwards by one `debugfs -w` to the tree's ctime.
/// The smallest filesystem: built at an estimate, then `resize2fs -M`.
struct Ext4Maker {
  var request: FileSystemRequest
  var tree: StagedTree?

  func make(_ output: String) throws -> FileSystemImage {
    guard let tree else { throw UnsupportedContent.noTree(request.format) }
    let mke2fs = try Tool.find("mke2fs", package: "e2fsprogs")
    let environment = StagedTree.environment(epoch: request.sourceDateEpoch)
    let uuid = request.uuid.description
    var arguments = [
      "-q", "-F", "-t", request.format.rawValue, "-U", uuid, "-E",
      "hash_seed=\(uuid),nodiscard", "-d", "{}",
    ]
    if let label = request.label { arguments += ["-L", label] }
    arguments += request.extraOptions
    func build(_ size: UInt64) throws {
      try createSparseFile(output, size: size)
      do {
        _ = try tree.runUnpacked(mke2fs, arguments + [output], epoch: request.sourceDateEpoch)
      } catch DiskError.toolFailed(_, _, _, let text)
        where text.contains("Could not allocate") || text.contains("No space")
      {
        throw ContentDoesNotFit(needed: size + 1, available: size)
      }
    }
    var size: UInt64
    if let fixed = request.size {
      size = fixed
      do { try build(size) } catch let error as ContentDoesNotFit {
        throw ContentDoesNotFit(
          needed: max(error.needed, tree.estimate(overhead: 2 << 20)), available: size)
      }
    } else {
      size = tree.estimate(overhead: 4 << 20)
      while true {
        do {
          try build(size)
          break
        } catch is ContentDoesNotFit where size < 1 << 42 {
          size *= 2
        }
      }
      let resize2fs = try Tool.find("resize2fs", package: "e2fsprogs")
      _ = try Tool.run(resize2fs, ["-f", "-M", output], environment: environment)
      size = try Self.blockCount(output, environment: environment)
      guard truncate(output, off_t(clamping: size)) == 0 else {
        throw DiskError.invalidInput(
          path: output, reason: "cannot truncate: \(String(cString: strerror(errno)))")
      }
    }
    try fixTimes(output, tree: tree, environment: environment)
    return FileSystemImage(path: output, size: size)
  }

  /// Bytes the filesystem spans (block count times block size, from `dumpe2fs -h`).
  static func blockCount(_ image: String, environment: [String: String]) throws -> UInt64 {
    let dumpe2fs = try Tool.find("dumpe2fs", package: "e2fsprogs")
    let text = try Tool.run(dumpe2fs, ["-h", image], environment: environment)
    var count: UInt64?
    var size: UInt64?
    for line in text.split(separator: "\n") {
      let parts = line.split(separator: ":", maxSplits: 1).map {
        $0.trimmingCharacters(in: .whitespaces)
      }
      guard parts.count == 2 else { continue }
      if parts[0] == "Block count" { count = UInt64(parts[1]) }
      if parts[0] == "Block size" { size = UInt64(parts[1]) }
    }
    guard let count, let size else {
      throw DiskError.toolFailed(
        tool: dumpe2fs, arguments: ["-h", image], status: 0,
        output: "no block count in its output: " + String(text.suffix(500)))
    }
    return count * size
  }

  /// Sets every inode's ctime (and the root's times, mode and owner) to the tree's, in one debugfs
  /// run. Names debugfs
  /// cannot quote (a double quote, a backslash or a control byte) keep the unpacking time.
  func fixTimes(_ image: String, tree: StagedTree, environment: [String: String]) throws {
    let debugfs = try Tool.find("debugfs", package: "e2fsprogs")
    // mke2fs -d does not copy the source directory's own times to the root inode (it stamps its
    // clock), nor its mode and owner in every version.
    let root = tree.root
    var commands =
      "sif / mtime @\(root.mtime.seconds)\nsif / atime @\(root.atime.seconds)\n"
      + "sif / ctime @\(root.ctime.seconds)\nsif / mode 0\(String(root.mode, radix: 8))\n"
      + "sif / uid \(root.uid)\nsif / gid \(root.gid)\n"
    var seen = Set<ObjectIdentifier>()
    walkTree(tree.root) { path, inode in
      guard seen.insert(ObjectIdentifier(inode)).inserted,
        !path.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }),
        let name = String(validating: path, as: UTF8.self)
      else { return }
      commands += "sif \"/\(name)\" ctime @\(inode.ctime.seconds)\n"
    }
    let file = tree.scratch + "/debugfs.cmd"
    try Data(commands.utf8).write(to: URL(fileURLWithPath: file))
    defer { unlink(file) }
    let text = try Tool.run(debugfs, ["-w", "-f", file, image], environment: environment)
    if let bad = text.split(separator: "\n").first(where: {
      $0.contains("File not found") || $0.contains("Couldn't") || $0.contains("error")
    }) {
      throw DiskError.toolFailed(
        tool: debugfs, arguments: ["-w", "-f", file, image], status: 0, output: String(bad))
    }
  }
}

extension UnsupportedContent {
  static func noTree(_ format: FileSystemFormat) -> UnsupportedContent {
    UnsupportedContent(
      format: format.rawValue, entry: "/", what: "no tree", hint: "internal: no staged tree")
  }
}

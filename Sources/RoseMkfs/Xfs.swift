import Foundation
import RoseDisk
import RoseFS

/// xfs with `mkfs.xfs -p PROTOFILE` (xfsprogs 6.1 reads a protofile, not a directory). The
/// protofile names every entry with its type, mode, owner and group (devices with their numbers,
/// symlinks with their targets); regular files' bytes come from the tree unpacked (in fakeroot)
/// beside it. What a protofile cannot say is refused by `StagedTree.check`: hard links, xattrs,
/// sockets, the sticky bit, names with spaces or control bytes. Times are not kept: mkfs.xfs
/// stamps every inode with the build time, so xfs images do not repeat. mkfs.xfs 6.1 refuses
/// filesystems under 300 MiB, the smallest one made.
struct XfsMaker {
  var request: FileSystemRequest
  var tree: StagedTree?
  static let minimum: UInt64 = 300 << 20

  func make(_ output: String) throws -> FileSystemImage {
    guard let tree else { throw UnsupportedContent.noTree(request.format) }
    let mkfs = try Tool.find("mkfs.xfs", package: "xfsprogs")
    let directory = tree.scratch + "/tree"
    let proto = tree.scratch + "/xfs.proto"
    try Data(protofile(tree.root, directory: directory).utf8).write(
      to: URL(fileURLWithPath: proto))
    defer { unlink(proto) }
    let size = request.size ?? max(Self.minimum, tree.estimate(overhead: 64 << 20))
    guard size >= Self.minimum else {
      throw ContentDoesNotFit(needed: Self.minimum, available: size)
    }
    try createSparseFile(output, size: size)
    var arguments = [
      "-q", "-f", "-m", "uuid=\(request.uuid.description)", "-s",
      "size=\(max(request.sectorSize, 512))", "-p", proto,
    ]
    if let label = request.label { arguments += ["-L", label] }
    arguments += request.extraOptions + [output]
    do {
      _ = try tree.runUnpacked(mkfs, arguments, epoch: request.sourceDateEpoch)
    } catch DiskError.toolFailed(_, _, _, let text) where text.contains("No space") {
      throw ContentDoesNotFit(needed: size + 1, available: size)
    }
    return FileSystemImage(path: output, size: size)
  }

  /// The protofile: a boot-image line, "0 0" (blocks and inodes decided by mkfs), the root, then
  /// each directory's entries, `$` closing each directory.
  func protofile(_ root: Inode, directory: String) -> String {
    func mode(_ inode: Inode) -> String {
      let type: String
      switch inode.kind {
      case .regular: type = "-"
      case .directory: type = "d"
      case .symlink: type = "l"
      case .characterDevice: type = "c"
      case .blockDevice: type = "b"
      case .fifo: type = "p"
      case .socket: type = "s"
      }
      let p = inode.permissions
      return type + (p & 0o4000 != 0 ? "u" : "-") + (p & 0o2000 != 0 ? "g" : "-")
        + String(p & 0o777, radix: 8).leftPadded(3) + " \(inode.uid) \(inode.gid)"
    }
    var out = "/dev/null\n0 0\n" + mode(root) + "\n"
    func visit(_ dir: Inode, _ prefix: [UInt8], depth: Int) {
      let indent = String(repeating: " ", count: depth)
      for name in dir.children.keys.sorted() {
        guard let child = dir.children[name] else { continue }
        let path = prefix.isEmpty ? name.bytes : prefix + [UInt8(ascii: "/")] + name.bytes
        let text = String(decoding: name.bytes, as: UTF8.self)
        var line = indent + text + " " + mode(child)
        switch child.kind {
        case .regular: line += " " + directory + "/" + String(decoding: path, as: UTF8.self)
        case .symlink:
          line += " " + (String(validating: symlinkTarget(child), as: UTF8.self) ?? "")
        case .characterDevice, .blockDevice: line += " \(child.rdevMajor) \(child.rdevMinor)"
        default: break
        }
        out += line + "\n"
        if child.kind == .directory {
          visit(child, path, depth: depth + 1)
          out += indent + "$\n"
        }
      }
    }
    visit(root, [], depth: 1)
    return out + "$\n"
  }

  func symlinkTarget(_ inode: Inode) -> [UInt8] {
    tree?.symlinkTargets[ObjectIdentifier(inode)] ?? []
  }
}

extension String {
  func leftPadded(_ width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}

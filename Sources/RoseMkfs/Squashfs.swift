import Foundation
import RoseDisk
import RoseFS

/// squashfs with `mksquashfs - IMAGE -tar` reading the staged tarball on stdin: no unpacking and
/// no fakeroot. Owners, modes, devices, fifos, sockets, hard links, xattrs and mtimes arrive;
/// squashfs keeps one time per inode. The tar stream has no root entry mksquashfs uses, so the
/// root's mode, owner and time are given as options (an xattr on the root is refused).
/// `-mkfs-time` fixes the superblock time; squashfs has no UUID and no label.
struct SquashfsMaker {
  var request: FileSystemRequest
  var tree: StagedTree?

  func make(_ output: String) throws -> FileSystemImage {
    guard let tree else { throw UnsupportedContent.noTree(request.format) }
    let mksquashfs = try Tool.find("mksquashfs", package: "squashfs-tools")
    let root = tree.root
    var arguments = [
      "-", output, "-tar", "-noappend", "-quiet", "-no-progress",
      "-mkfs-time", String(max(request.sourceDateEpoch, 0)),
      "-root-time", String(max(root.mtime.seconds, 0)),
      "-root-mode", String(root.permissions, radix: 8),
      "-root-uid", String(root.uid), "-root-gid", String(root.gid),
    ]
    if let compression = request.compression { arguments += ["-comp", compression] }
    if let level = request.compressionLevel { arguments += ["-Xcompression-level", String(level)] }
    arguments += request.extraOptions
    // mksquashfs refuses SOURCE_DATE_EPOCH beside -mkfs-time/-root-time (which set the same).
    var environment = StagedTree.environment(epoch: request.sourceDateEpoch)
    environment.removeValue(forKey: "SOURCE_DATE_EPOCH")
    _ = try Tool.run(mksquashfs, arguments, environment: environment, standardInput: tree.tarball)
    let size = align(fileSize(output), to: 4096)
    if let available = request.size, size > available {
      throw ContentDoesNotFit(needed: size, available: available)
    }
    return FileSystemImage(path: output, size: size)
  }
}

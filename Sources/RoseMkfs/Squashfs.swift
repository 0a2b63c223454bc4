import Foundation
import RoseDisk
import RoseFS

/// squashfs with `mksquashfs DIR IMAGE` on the tree unpacked in a fakeroot session (4.5.1's
/// `-tar` ignores the tar's root entry and stamps the root with the build time). Owners, modes,
/// devices, fifos, sockets, hard links, symlinks, xattrs and mtimes arrive; squashfs keeps one
/// time per inode. `-mkfs-time` fixes the superblock time; squashfs has no UUID and no label.
struct SquashfsMaker {
  var request: FileSystemRequest
  var tree: StagedTree?

  func make(_ output: String) throws -> FileSystemImage {
    guard let tree else { throw UnsupportedContent.noTree(request.format) }
    let mksquashfs = try Tool.find("mksquashfs", package: "squashfs-tools")
    var arguments = [
      "{}", output, "-noappend", "-quiet", "-no-progress",
      "-mkfs-time", String(max(request.sourceDateEpoch, 0)),
    ]
    if let compression = request.compression { arguments += ["-comp", compression] }
    if let level = request.compressionLevel { arguments += ["-Xcompression-level", String(level)] }
    arguments += request.extraOptions
    _ = try tree.runUnpacked(
      mksquashfs, arguments, epoch: request.sourceDateEpoch, keepEpoch: false)
    let size = align(fileSize(output), to: 4096)
    if let available = request.size, size > available {
      throw ContentDoesNotFit(needed: size, available: available)
    }
    return FileSystemImage(path: output, size: size)
  }
}

import Foundation
import RoseDisk
import RoseFS

/// btrfs with `mkfs.btrfs --rootdir` (btrfs-progs 6.2), unpacked in a fakeroot session: owners,
/// modes, fifos, sockets, hard links, symlinks, xattrs and times arrive, except the root
/// directory's times (the build time). Device nodes are refused: their numbers arrive as 0,0.
/// The smallest filesystem is `--shrink`'s. Not reproducible: btrfs-progs 6.2 draws the device
/// and chunk-tree UUIDs at random and stamps the build time in its trees (no option sets them).
struct BtrfsMaker {
  var request: FileSystemRequest
  var tree: StagedTree?

  func make(_ output: String) throws -> FileSystemImage {
    guard let tree else { throw UnsupportedContent.noTree(request.format) }
    let mkfs = try Tool.find("mkfs.btrfs", package: "btrfs-progs")
    var arguments = ["-q", "-f", "-U", request.uuid.description, "--rootdir", "{}"]
    if let label = request.label { arguments += ["-L", label] }
    // btrfs needs about 110 MiB before any content (metadata duplicated, system chunks).
    let size = request.size ?? max(tree.estimate(overhead: 128 << 20), 256 << 20)
    if request.size == nil { arguments.append("--shrink") }
    arguments += request.extraOptions + [output]
    try createSparseFile(output, size: size)
    do {
      _ = try tree.runUnpacked(mkfs, arguments, epoch: request.sourceDateEpoch)
    } catch DiskError.toolFailed(_, _, _, let text)
      where text.contains("No space") || text.contains("too small")
    {
      throw ContentDoesNotFit(
        needed: max(size + 1, tree.estimate(overhead: 128 << 20)), available: size)
    }
    return FileSystemImage(path: output, size: align(fileSize(output), to: 4096))
  }
}

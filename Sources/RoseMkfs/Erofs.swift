import Foundation
import RoseDisk
import RoseFS

/// erofs with `mkfs.erofs` (erofs-utils 1.5, which reads a directory only): unpacked in a
/// fakeroot session, so owners, modes, devices, fifos, sockets, hard links, xattrs and mtimes
/// arrive (erofs keeps one time per inode). `-T` fixes the build time and `-U` the UUID, so the
/// image repeats byte for byte. erofs-utils 1.5 writes no volume label.
struct ErofsMaker {
  var request: FileSystemRequest
  var tree: StagedTree?

  func make(_ output: String) throws -> FileSystemImage {
    guard let tree else { throw UnsupportedContent.noTree(request.format) }
    let mkfs = try Tool.find("mkfs.erofs", package: "erofs-utils")
    var arguments = ["--quiet", "-T\(request.sourceDateEpoch)", "-U\(request.uuid.description)"]
    if let compression = request.compression {
      arguments.append(
        "-z" + compression + (request.compressionLevel.map { ",\($0)" } ?? ""))
    }
    arguments += request.extraOptions + [output, "{}"]
    _ = try tree.runUnpacked(mkfs, arguments, epoch: request.sourceDateEpoch)
    let size = align(fileSize(output), to: 4096)
    if let available = request.size, size > available {
      throw ContentDoesNotFit(needed: size, available: available)
    }
    if size != fileSize(output) { _ = truncate(output, off_t(clamping: size)) }
    return FileSystemImage(path: output, size: size)
  }
}

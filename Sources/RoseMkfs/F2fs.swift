import Foundation
import RoseDisk
import RoseFS

/// f2fs with `mkfs.f2fs` then `sload.f2fs -P` (f2fs-tools 1.15), the load unpacked in a
/// fakeroot session: owners, modes, hard links, symlinks and mtimes arrive (`-T` stamps the
/// epoch where sload has no time of its own). sload.f2fs 1.15 copies no xattrs and skips device
/// nodes, fifos and sockets, so those are refused. mkfs.f2fs crashes below 56 MiB, and 56 MiB leaves no block for data,
/// so the smallest filesystem is measured: 64 MiB, doubled until the load fits.
struct F2fsMaker {
  var request: FileSystemRequest
  var tree: StagedTree?
  static let minimum: UInt64 = 64 << 20

  func make(_ output: String) throws -> FileSystemImage {
    guard let tree else { throw UnsupportedContent.noTree(request.format) }
    let mkfs = try Tool.find("mkfs.f2fs", package: "f2fs-tools")
    let sload = try Tool.find("sload.f2fs", package: "f2fs-tools")
    let environment = StagedTree.environment(epoch: request.sourceDateEpoch)
    let epoch = String(max(request.sourceDateEpoch, 0))
    func build(_ size: UInt64) throws {
      guard size >= Self.minimum else {
        throw ContentDoesNotFit(needed: Self.minimum, available: size)
      }
      try createSparseFile(output, size: size)
      var arguments = ["-q", "-f", "-U", request.uuid.description, "-T", epoch, "-t", "0"]
      if let label = request.label { arguments += ["-l", label] }
      arguments += request.extraOptions + [output]
      _ = try Tool.run(mkfs, arguments, environment: environment)
      // sload.f2fs reports a full volume as "Can't find free block" (status 255 or 0).
      let text: String
      do {
        text = try tree.runUnpacked(
          sload, ["-f", "{}", "-T", epoch, "-P", output], epoch: request.sourceDateEpoch)
      } catch DiskError.toolFailed(_, _, _, let output)
        where output.contains("Can't find free") || output.contains("No space")
      {
        throw ContentDoesNotFit(needed: size + 1, available: size)
      }
      if text.contains("Can't find free") || text.contains("No space") {
        throw ContentDoesNotFit(needed: size + 1, available: size)
      }
    }
    if let size = request.size {
      try build(size)
      return FileSystemImage(path: output, size: size)
    }
    var size = max(Self.minimum, tree.estimate(overhead: 48 << 20))
    while true {
      do {
        try build(size)
        return FileSystemImage(path: output, size: size)
      } catch is ContentDoesNotFit where size < 1 << 42 {
        size *= 2
      }
    }
  }
}

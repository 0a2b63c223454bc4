import Foundation
import RoseDisk

/// A swap area with `mkswap` (util-linux): label and UUID only; the smallest is 1 MiB.
struct SwapMaker {
  var request: FileSystemRequest

  func make(_ output: String) throws -> FileSystemImage {
    let mkswap = try Tool.find("mkswap", package: "util-linux")
    let size = request.size ?? 1 << 20
    try createSparseFile(output, size: size)
    var arguments = ["-U", request.uuid.description]
    if let label = request.label { arguments += ["-L", label] }
    arguments += request.extraOptions + [output]
    _ = try Tool.run(
      mkswap, arguments, environment: StagedTree.environment(epoch: request.sourceDateEpoch))
    return FileSystemImage(path: output, size: size)
  }
}

import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// An empty packed volume of `size` bytes (subvolumes named by `heads`, all empty), as a file.
func emptyVolume(size: UInt64, heads: [String] = ["a"]) throws -> TestImage {
  try TestImage(options: BuildOptions(size: size, sourceDateEpoch: 1_700_000_000)) { b in
    let t = Timestamp(seconds: 1_700_000_000)
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    var subs = [Subvolume(name: heads[0], root: root)]
    for h in heads.dropFirst() { subs.append(Subvolume(name: h, root: b.snapshot(root))) }
    return subs
  }
}

/// fsck of an image file; the problems, empty when clean.
func fsckProblems(path: String) throws -> [String] {
  let image = try ImageFile(openPath: path)
  return Fsck.check(image: image)
}

/// fsck of in-memory blocks, written to a temporary sparse file first.
func fsckProblems(blocks: [UInt32: [UInt8]], device: RecordingBlockDevice) throws -> [String] {
  let path = NSTemporaryDirectory() + "rosefs-engine-\(UUID().uuidString).img"
  defer { unlink(path) }
  try device.writeImage(blocks, to: path)
  return try fsckProblems(path: path)
}

extension RoseEngine {
  /// Test convenience: the ino of a path from the root.
  func resolve(_ path: String) throws(EngineError) -> UInt32 {
    var ino = rootIno
    for c in path.split(separator: "/") {
      ino = try lookup(parent: ino, name: Array(c.utf8)).ino
    }
    return ino
  }

  func writeAll(_ ino: UInt32, _ bytes: [UInt8], at offset: UInt64 = 0) throws(EngineError) {
    var failure: EngineError?
    bytes.withUnsafeBytes { buf in
      do throws(EngineError) { try write(ino, offset: offset, bytes: buf) } catch {
        failure = error
      }
    }
    if let failure { throw failure }
  }

  func createFile(_ parent: UInt32, _ name: String, mode: UInt16 = 0o644) throws(EngineError)
    -> UInt32
  {
    try mknod(
      parent: parent, name: Array(name.utf8), mode: 0o100000 | mode, uid: 0, gid: 0, rdevMajor: 0,
      rdevMinor: 0
    ).ino
  }
}

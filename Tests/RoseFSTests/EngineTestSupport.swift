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

// MARK: - Crash images (record the device writes, rebuild the image at a cut, check it)

/// The writes of each flush epoch of a recorded run: the events after the previous flush (`start`)
/// up to the flush at index `flush`.
func flushEpochs(_ events: [RecordingBlockDevice.Event])
  -> [(start: Int, flush: Int, writes: [(UInt32, [UInt8])])]
{
  var epochs: [(start: Int, flush: Int, writes: [(UInt32, [UInt8])])] = []
  var start = 0
  for (i, ev) in events.enumerated() where ev == .flush {
    let writes = (start..<i).compactMap { j -> (UInt32, [UInt8])? in
      if case .write(let a, let b) = events[j] { return (a, b) }
      return nil
    }
    epochs.append((start, i, writes))
    start = i + 1
  }
  return epochs
}

/// A crash image of `dev`'s volume must be fsck-clean, open, and hold each of `files` (made durable
/// before the cut) with exactly its content. Returns the engine that opened it (read-only unless
/// `writable`) and its device, for checks after a reopen.
@discardableResult
func expectConsistent(
  _ blocks: [UInt32: [UInt8]], of dev: RecordingBlockDevice,
  holding files: [(name: String, data: [UInt8], at: Int)], writable: Bool = false, _ what: String
) throws -> (engine: RoseEngine, device: RecordingBlockDevice) {
  let problems = try fsckProblems(blocks: blocks, device: dev)
  #expect(problems.isEmpty, "\(what): \(problems.prefix(5).joined(separator: "; "))")
  let view = RecordingBlockDevice(blockCount: dev.blockCount, blocks: blocks)
  let r = try RoseEngine.open(device: view, subvolume: nil, readOnly: !writable)
  for f in files {
    let ino = try r.resolve(f.name)
    #expect(
      try r.read(ino, offset: 0, count: f.data.count + 1) == f.data,
      "\(what): \(f.name) fsync'd at event \(f.at) differs")
  }
  return (r, view)
}

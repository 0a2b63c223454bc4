import Foundation
import RoseFS

/// A block device that passes everything to the device under it and records every block write: the
/// operation it happened under and what the block is (read from the bytes, `RoseFSWriteKind`).
public final class HeatRecordingDevice: BlockDevice, @unchecked Sendable {
  public let inner: any BlockDevice
  public var log: HeatLog
  public var currentOp = 0
  private var kindIndex: [String: UInt8] = [:]

  public init(inner: any BlockDevice, operations: Int) {
    self.inner = inner
    log = HeatLog(
      filesystem: "RoseFS", blockCount: Int(inner.blockCount), operations: operations,
      method:
        "the engine's device layer: every 4 KiB block write through BlockDevice.writeBlock, labelled by the block's content (header magic, inode slots, fixed addresses)."
    )
  }

  public var blockCount: UInt64 { inner.blockCount }
  public func readBlock(_ address: UInt32) throws(EngineError) -> [UInt8] {
    try inner.readBlock(address)
  }
  public func writeBlock(_ address: UInt32, _ bytes: [UInt8]) throws(EngineError) {
    let label = RoseFSWriteKind.classify(address: address, bytes: bytes)
    let k: UInt8
    if let known = kindIndex[label] {
      k = known
    } else {
      k = log.kind(label)
      kindIndex[label] = k
    }
    log.record(op: currentOp, block: address, kind: k)
    log.deviceBytes += bytes.count
    try inner.writeBlock(address, bytes)
  }
  public func flush() throws(EngineError) { try inner.flush() }
  public var writeCounts: [UInt32: UInt64] { inner.writeCounts }
}

public enum RoseFSRunner {
  /// Opens `image` (a fresh volume) with the engine, runs the stream, unmounts. The heat log's count
  /// per block is checked against the engine's own device-layer counts (FileBlockDevice.writeCounts).
  public static func run(stream ops: [NumberedOp], seed: UInt64, image: String) throws -> HeatLog {
    let file = try FileBlockDevice(path: image, writable: true)
    let device = HeatRecordingDevice(inner: file, operations: ops.count)
    let engine = try RoseEngine.open(device: device, subvolume: nil, readOnly: false)
    let target = EngineTarget(volume: engine)
    let outcome = StreamRunner.run(
      ops, seed: seed, on: target, before: { device.currentOp = $0 },
      progress: { n in FileHandle.standardError.write(Data("\r\(n) operations".utf8)) })
    FileHandle.standardError.write(Data("\n".utf8))
    var log = device.log
    log.outcome = outcome
    // The device's own counters (the engine's FileBlockDevice) against ours.
    let own = file.writeCounts
    let ownTotal = own.values.reduce(0, +)
    log.deviceStatBytes = Int(ownTotal) * 4096
    log.deviceStatSource = "the engine's own FileBlockDevice.writeCounts:"
    var disagree = 0
    let ours = log.countsPerBlock
    for (b, c) in own where Int(b) < ours.count && ours[Int(b)] != c { disagree += 1 }
    if disagree > 0 {
      log.notes.append(
        "\(disagree) blocks where FileBlockDevice.writeCounts differs from the recording")
    }
    return log
  }
}

import Foundation

/// A labelled range of 4 KiB device blocks (a filesystem structure: "journal", "inode table").
public struct StructureRange: Codable, Equatable, Sendable {
  public var first: Int
  public var count: Int
  public var label: String
  public init(first: Int, count: Int, label: String) {
    self.first = first
    self.count = count
    self.label = label
  }
}

/// Every 4 KiB block write one filesystem received during a run, in order: the operation it happened
/// under (0: mkfs/mount before the first operation; operations + 1: the final sync and unmount), the
/// block, and what the block was (an index into `kinds`).
public struct HeatLog: Codable, Sendable {
  public var filesystem: String
  public var blockCount: Int
  public var operations: Int
  public var kinds: [String]
  public var ops: [Int32]
  public var blocks: [UInt32]
  public var kindOf: [UInt8]
  /// Bytes the device was asked to write (sectors x 512 for the kernel, blocks x 4096 for the engine).
  public var deviceBytes: Int
  /// The device's own count for the same run (/sys/block/loopN/stat field 7 x 512), when there is one.
  public var deviceStatBytes: Int?
  /// What `deviceStatBytes` comes from ("/sys/block/loop0/stat", "FileBlockDevice.writeCounts").
  public var deviceStatSource: String?
  /// How the writes were counted (one sentence, for the report).
  public var method: String
  /// Static structure map of the device (kernel filesystems: from dumpe2fs or dump-tree).
  public var structures: [StructureRange]
  public var outcome: RunOutcome?
  public var notes: [String]

  public init(filesystem: String, blockCount: Int, operations: Int, method: String) {
    self.filesystem = filesystem
    self.blockCount = blockCount
    self.operations = operations
    self.method = method
    kinds = []
    ops = []
    blocks = []
    kindOf = []
    deviceBytes = 0
    structures = []
    notes = []
  }

  var kindIndex: [String: UInt8] {
    var d: [String: UInt8] = [:]
    for (i, k) in kinds.enumerated() { d[k] = UInt8(i) }
    return d
  }

  public mutating func kind(_ label: String) -> UInt8 {
    if let i = kinds.firstIndex(of: label) { return UInt8(i) }
    kinds.append(label)
    return UInt8(kinds.count - 1)
  }

  public mutating func record(op: Int, block: UInt32, kind: UInt8) {
    ops.append(Int32(op))
    blocks.append(block)
    kindOf.append(kind)
  }

  /// Labels every write by the static structure its block lies in (kernel filesystems).
  public mutating func labelByStructures(otherLabel: String) {
    var label = [UInt8](repeating: kind(otherLabel), count: blockCount)
    for s in structures {
      let k = kind(s.label)
      for b in max(0, s.first)..<min(blockCount, s.first + s.count) { label[b] = k }
    }
    for i in blocks.indices where Int(blocks[i]) < blockCount {
      kindOf[i] = label[Int(blocks[i])]
    }
  }

  public func save(to path: String) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    try enc.encode(self).write(to: URL(fileURLWithPath: path))
  }

  public static func load(path: String) throws -> HeatLog {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw WorkloadError.io("\(path): cannot read the heat log")
    }
    do { return try JSONDecoder().decode(HeatLog.self, from: data) } catch {
      throw WorkloadError.io("\(path): not a heat log: \(error)")
    }
  }

  /// Writes per block over the whole run.
  public var countsPerBlock: [UInt64] {
    var c = [UInt64](repeating: 0, count: blockCount)
    for b in blocks where Int(b) < blockCount { c[Int(b)] += 1 }
    return c
  }
}

/// The numbers of one filesystem's run (issue 7's table).
public struct HeatStatistics: Codable, Equatable, Sendable {
  public var filesystem: String
  public var hostWrites: Int
  public var deviceBytes: Int
  public var deviceStatBytes: Int?
  public var payloadBytes: Int
  public var writeAmplification: Double
  public var hottestBlock: Int
  public var hottestCount: Int
  public var hottestStructure: String
  public var writtenBlocks: Int
  public var meanOverWritten: Double
  public var hottestOverMean: Double
  public var gini: Double
  public var firstENOSPC: Int?
  public var liveBytesAtENOSPC: Int?
  public var failures: Int
  public var writesByStructure: [String: Int]
  /// Writes by the kind of operation they completed under ("fsync", "create"; "mount" before the
  /// first, "sync and unmount" after the last); empty without the stream.
  public var writesByOperation: [String: Int]
  /// Writes to the hottest block by operation kind.
  public var hottestByOperation: [String: Int]

  /// `opKinds[n - 1]` is the kind of operation n (nil: no stream given).
  public init(_ log: HeatLog, payloadBytes: Int, opKinds: [String]? = nil) {
    filesystem = log.filesystem
    hostWrites = log.blocks.count
    deviceBytes = log.deviceBytes
    deviceStatBytes = log.deviceStatBytes
    self.payloadBytes = payloadBytes
    writeAmplification = payloadBytes > 0 ? Double(log.deviceBytes) / Double(payloadBytes) : 0
    let counts = log.countsPerBlock
    var hot = 0
    for (b, c) in counts.enumerated() where c > counts[hot] { hot = b }
    hottestBlock = hot
    hottestCount = Int(counts.isEmpty ? 0 : counts[hot])
    // The structure of the hottest block: what most of its writes were.
    var tally: [UInt8: Int] = [:]
    for i in log.blocks.indices where Int(log.blocks[i]) == hot {
      tally[log.kindOf[i], default: 0] += 1
    }
    let top = tally.max { ($0.value, -Int($0.key)) < ($1.value, -Int($1.key)) }?.key
    hottestStructure = top.map { Int($0) < log.kinds.count ? log.kinds[Int($0)] : "?" } ?? "-"
    writtenBlocks = counts.filter { $0 > 0 }.count
    meanOverWritten = writtenBlocks > 0 ? Double(hostWrites) / Double(writtenBlocks) : 0
    hottestOverMean = meanOverWritten > 0 ? Double(hottestCount) / meanOverWritten : 0
    gini = Self.gini(counts)
    firstENOSPC = log.outcome?.firstENOSPC
    liveBytesAtENOSPC = log.outcome?.liveBytesAtENOSPC
    failures = log.outcome?.failures.values.reduce(0, +) ?? 0
    var byKind: [String: Int] = [:]
    for k in log.kindOf {
      byKind[Int(k) < log.kinds.count ? log.kinds[Int(k)] : "?", default: 0] += 1
    }
    writesByStructure = byKind
    var byOp: [String: Int] = [:]
    var hotByOp: [String: Int] = [:]
    if let opKinds {
      for i in log.ops.indices {
        let n = Int(log.ops[i])
        let name =
          n <= 0 ? "mount" : n > opKinds.count ? "sync and unmount" : opKinds[n - 1]
        byOp[name, default: 0] += 1
        if Int(log.blocks[i]) == hot { hotByOp[name, default: 0] += 1 }
      }
    }
    writesByOperation = byOp
    hottestByOperation = hotByOp
  }

  /// Gini coefficient of the counts (0: every block written equally often; near 1: one block takes all).
  public static func gini(_ counts: [UInt64]) -> Double {
    let n = counts.count
    let total = counts.reduce(0, +)
    guard n > 0, total > 0 else { return 0 }
    let sorted = counts.sorted()
    var weighted = 0.0
    for (i, c) in sorted.enumerated() { weighted += Double(i + 1) * Double(c) }
    return 2 * weighted / (Double(n) * Double(total)) - Double(n + 1) / Double(n)
  }
}

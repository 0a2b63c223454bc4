// The workload generator: a model of the volume's files (path, size) driven by a seeded generator.
// Weights and sizes are documented in Benchmarks/heat/README.md; change them there too.

public struct WorkloadParameters: Equatable, Sendable, Codable {
  public var seed: UInt64
  public var operations: Int
  public var volumeBytes: Int
  /// The band the generator keeps the volume in once it has filled it (fractions of the volume,
  /// counting every file in whole 4 KiB blocks).
  public var lowFill: Double
  public var highFill: Double
  public init(
    seed: UInt64 = 1, operations: Int = 30_000, volumeBytes: Int = 64 << 20, lowFill: Double = 0.60,
    highFill: Double = 0.85
  ) {
    self.seed = seed
    self.operations = operations
    self.volumeBytes = volumeBytes
    self.lowFill = lowFill
    self.highFill = highFill
  }
}

/// What the generator produced: counts per operation and the fill level over the run.
public struct WorkloadSummary: Equatable, Sendable, Codable {
  public var parameters: WorkloadParameters
  public var operationsByKind: [String: Int]
  public var payloadBytes: Int
  /// First operation after which the fill reached `lowFill` (the end of the fill-up phase).
  public var filledAtOp: Int?
  /// Fill (fraction of the volume, files in whole 4 KiB blocks) after the fill-up phase.
  public var minFill: Double
  public var maxFill: Double
  public var meanFill: Double
  public var finalFill: Double
  public var finalLiveBytes: Int
  public var finalFiles: Int
  public var finalDirectories: Int
}

public struct WorkloadGenerator {
  public let parameters: WorkloadParameters
  var rng: SplitMix64
  var ops: [NumberedOp] = []

  // The model: files (path -> size) with an array for uniform picks, directories with their entries.
  var fileSize: [String: Int] = [:]
  var fileList: [String] = []
  var fileIndex: [String: Int] = [:]
  var dirEntries: [String: [String]] = ["/": []]
  var dirList: [String] = []
  var churnDirs: [String] = []
  var configFiles: [String] = []
  var logFiles: [String] = []
  var nextName = 0
  var usedBlocks = 0
  var liveBytes = 0
  var lastWritten: String?
  var sinceFsync = 0
  var fsyncEvery = 5
  var filled = false

  public init(_ p: WorkloadParameters) {
    parameters = p
    rng = SplitMix64(seed: p.seed)
  }

  static func blocks(_ size: Int) -> Int { (size + 4095) / 4096 }
  var fill: Double { Double(usedBlocks * 4096) / Double(parameters.volumeBytes) }
  var done: Bool { ops.count >= parameters.operations }

  mutating func emit(_ op: HeatOp) {
    guard !done else { return }
    ops.append(NumberedOp(n: ops.count + 1, op: op, liveBytes: liveBytes))
  }

  // MARK: Model updates

  static func parent(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path[..<slash])
  }

  mutating func setSize(_ path: String, _ size: Int) {
    let old = fileSize[path] ?? 0
    if fileSize[path] == nil {
      fileIndex[path] = fileList.count
      fileList.append(path)
      dirEntries[Self.parent(path), default: []].append(path)
    }
    fileSize[path] = size
    usedBlocks += Self.blocks(size) - Self.blocks(old)
    liveBytes += size - old
  }

  mutating func removeFile(_ path: String) {
    guard let old = fileSize.removeValue(forKey: path), let i = fileIndex.removeValue(forKey: path)
    else { return }
    usedBlocks -= Self.blocks(old)
    liveBytes -= old
    let last = fileList.removeLast()
    if i < fileList.count {
      fileList[i] = last
      fileIndex[last] = i
    }
    let dir = Self.parent(path)
    dirEntries[dir]?.removeAll { $0 == path }
    configFiles.removeAll { $0 == path }
    logFiles.removeAll { $0 == path }
    if lastWritten == path { lastWritten = nil }
  }

  mutating func newPath(in dir: String) -> String {
    nextName += 1
    return (dir == "/" ? "" : dir) + "/f\(nextName)"
  }

  // MARK: Operations

  mutating func mkdir(_ path: String) {
    dirEntries[path] = []
    dirEntries[Self.parent(path), default: []].append(path)
    dirList.append(path)
    emit(.mkdir(path))
  }

  mutating func write(_ op: HeatOp, path: String, newSize: Int) {
    setSize(path, newSize)
    lastWritten = path
    emit(op)
  }

  mutating func smallSize() -> Int {
    let r = rng.unit()
    if r < 0.75 { return rng.int(512...4095) }
    if r < 0.95 { return rng.int(4096...8191) }
    return rng.int(8192...16384)
  }

  mutating func largeSize() -> Int {
    // Log-uniform 64 KiB .. 2 MiB.
    let lo = 16.0
    let hi = 21.0
    return Int(pow(2.0, lo + (hi - lo) * rng.unit()).rounded())
  }

  /// Room under the ceiling, in bytes rounded to blocks.
  mutating func fits(_ addBlocks: Int) -> Bool {
    Double((usedBlocks + addBlocks) * 4096) <= parameters.highFill * Double(parameters.volumeBytes)
  }

  mutating func randomFile(excludingSpecial: Bool = false) -> String? {
    guard !fileList.isEmpty else { return nil }
    for _ in 0..<8 {
      let f = fileList[rng.int(0...fileList.count - 1)]
      if !excludingSpecial || (!configFiles.contains(f) && !logFiles.contains(f)) { return f }
    }
    return nil
  }

  /// Of three random files, the largest: deletes under pressure free space faster.
  mutating func largeishFile() -> String? {
    var best: String?
    for _ in 0..<3 {
      if let f = randomFile(excludingSpecial: true),
        (fileSize[f] ?? 0) > (best.map { fileSize[$0] ?? 0 } ?? -1)
      {
        best = f
      }
    }
    return best
  }

  mutating func createSmall() {
    let size = smallSize()
    guard fits(Self.blocks(size)) else { return deleteOne() }
    let dirs = dirList
    let dir = dirs[rng.int(0...dirs.count - 1)]
    let p = newPath(in: dir)
    write(.create(p, size: size), path: p, newSize: size)
  }

  mutating func createLarge() {
    let size = largeSize()
    guard fits(Self.blocks(size)) else { return deleteOne() }
    let p = newPath(in: "/data")
    write(.create(p, size: size), path: p, newSize: size)
  }

  mutating func deleteOne() {
    guard let f = largeishFile() else { return }
    // Never below the band once filled: a delete that would leave it becomes a create.
    if filled,
      Double((usedBlocks - Self.blocks(fileSize[f] ?? 0)) * 4096)
        < parameters.lowFill * Double(parameters.volumeBytes)
    {
      let size = smallSize()
      let p = newPath(in: dirList[rng.int(0...dirList.count - 1)])
      return write(.create(p, size: size), path: p, newSize: size)
    }
    removeFile(f)
    emit(.unlink(f))
  }

  mutating func append() {
    let target: String?
    if !logFiles.isEmpty, rng.unit() < 0.7 {
      target = logFiles[rng.int(0...logFiles.count - 1)]
    } else {
      target = randomFile()
    }
    guard let f = target, let size = fileSize[f] else { return }
    let n = rng.int(64...8192)
    if logFiles.contains(f), size + n > 256 << 10 {
      // Log rotation: start the log again.
      write(.truncate(f, size: 0), path: f, newSize: 0)
      return
    }
    guard fits(Self.blocks(size + n) - Self.blocks(size)) else { return deleteOne() }
    write(.append(f, size: n), path: f, newSize: size + n)
  }

  mutating func overwrite() {
    guard let f = randomFile(), let size = fileSize[f], size > 0 else { return }
    let offset = rng.int(0...(size - 1) / 512) * 512
    let n = min(size - offset, rng.int(512...16384))
    write(.overwrite(f, offset: offset, size: n), path: f, newSize: size)
  }

  /// The pattern that makes ext4 hot: a small settings file rewritten in place, then fsync.
  mutating func configUpdate() {
    guard !configFiles.isEmpty else { return }
    let f = configFiles[rng.int(0...configFiles.count - 1)]
    let n = rng.int(200...3000)
    write(.create(f, size: n), path: f, newSize: n)
    emit(.fsync(f))
    sinceFsync = 0
  }

  /// The safe-save pattern: write a temporary file, fsync it, rename it over the config.
  mutating func configAtomicSave() {
    guard !configFiles.isEmpty else { return }
    let f = configFiles[rng.int(0...configFiles.count - 1)]
    let tmp = f + ".tmp"
    let n = rng.int(200...3000)
    write(.create(tmp, size: n), path: tmp, newSize: n)
    emit(.fsync(tmp))
    renameOver(tmp, f)
    configFiles.append(f)
    sinceFsync = 0
  }

  mutating func renameOver(_ from: String, _ to: String) {
    guard let size = fileSize[from] else { return }
    let wasLog = logFiles.contains(to)
    removeFile(to)
    removeFile(from)
    setSize(to, size)
    if wasLog { logFiles.append(to) }
    emit(.rename(from, to: to))
  }

  mutating func renameOverExisting() {
    guard let a = randomFile(excludingSpecial: true), let b = randomFile(excludingSpecial: true),
      a != b
    else { return }
    renameOver(a, b)
  }

  mutating func truncate() {
    guard let f = randomFile(excludingSpecial: true), let size = fileSize[f] else { return }
    let n: Int
    if rng.unit() < 0.8 || size == 0 {
      n = size == 0 ? 0 : rng.int(0...size)
    } else {
      n = size + rng.int(1...8192)
      guard fits(Self.blocks(n) - Self.blocks(size)) else { return deleteOne() }
    }
    write(.truncate(f, size: n), path: f, newSize: n)
  }

  /// Directory churn: a new directory with a few files, or an old one emptied and removed.
  mutating func churnMake() {
    nextName += 1
    let d = "/tmp/t\(nextName)"
    mkdir(d)
    churnDirs.append(d)
  }

  mutating func churnRemove() {
    guard !churnDirs.isEmpty else { return churnMake() }
    let i = rng.int(0...churnDirs.count - 1)
    let d = churnDirs.remove(at: i)
    for f in dirEntries[d] ?? [] where !done {
      removeFile(f)
      emit(.unlink(f))
    }
    dirList.removeAll { $0 == d }
    dirEntries.removeValue(forKey: d)
    dirEntries[Self.parent(d)]?.removeAll { $0 == d }
    emit(.rmdir(d))
  }

  mutating func fsyncRecent() {
    guard let f = lastWritten, fileSize[f] != nil else { return }
    emit(.fsync(f))
  }

  // MARK: The stream

  /// Initial layout: a few directories, config files and logs.
  mutating func setUp() {
    for d in ["/etc", "/var", "/var/log", "/data", "/cache", "/tmp", "/app"] { mkdir(d) }
    for i in 0..<4 { mkdir("/app/m\(i)") }
    for i in 0..<12 {
      let f = "/etc/app\(i).conf"
      let n = rng.int(200...3000)
      write(.create(f, size: n), path: f, newSize: n)
      configFiles.append(f)
    }
    for i in 0..<6 {
      let f = "/var/log/l\(i).log"
      write(.create(f, size: 0), path: f, newSize: 0)
      logFiles.append(f)
    }
    // Directories new small files go to (churn directories join while they exist).
    dirList = [
      "/etc", "/var", "/data", "/cache", "/tmp", "/app/m0", "/app/m1", "/app/m2", "/app/m3",
    ]
  }

  public static func generate(_ p: WorkloadParameters) -> (
    ops: [NumberedOp], summary: WorkloadSummary
  ) {
    var g = WorkloadGenerator(p)
    g.setUp()
    var filledAt: Int?
    var minFill = 1.0
    var maxFill = 0.0
    var fillSum = 0.0
    var fillCount = 0
    while !g.done {
      let fill = g.fill
      if filledAt == nil && fill >= p.lowFill {
        filledAt = g.ops.count
        g.filled = true
      }
      // Weights: create small, create large, append, overwrite, config update, atomic save, truncate,
      // unlink, rename over, directory churn (make, remove).
      var w: [Double] = [24, 0.6, 12, 12, 14, 3, 4, 12, 2, 1.5, 1.5]
      if filledAt == nil {
        w = [40, 2, 8, 6, 6, 1, 1, 2, 1, 1, 0.5]
      } else {
        // Proportional steering towards the middle of the band: above it, fewer creates and more
        // deletes and truncates; below it, the reverse.
        let mid = (p.lowFill + p.highFill) / 2
        let u = max(-1, min(1, (fill - mid) / ((p.highFill - p.lowFill) / 2)))
        w[0] *= max(0.1, 1 - 0.8 * u)
        w[1] *= max(0.05, 1 - 0.9 * u)
        w[6] *= max(0.2, 1 + u)
        w[7] *= max(0.1, 1 + 1.5 * u)
      }
      var r = g.rng.unit() * w.reduce(0, +)
      var pick = 0
      while pick < w.count - 1 && r >= w[pick] {
        r -= w[pick]
        pick += 1
      }
      let before = g.ops.count
      switch pick {
      case 0: g.createSmall()
      case 1: g.createLarge()
      case 2: g.append()
      case 3: g.overwrite()
      case 4: g.configUpdate()
      case 5: g.configAtomicSave()
      case 6: g.truncate()
      case 7: g.deleteOne()
      case 8: g.renameOverExisting()
      case 9: g.churnMake()
      default: g.churnRemove()
      }
      // The floor: a truncate, rename or directory removal that left the band is followed by creates.
      while g.filled && !g.done && g.fill < p.lowFill { g.createSmall() }
      g.sinceFsync += g.ops.count - before
      if g.sinceFsync >= g.fsyncEvery {
        g.fsyncRecent()
        g.sinceFsync = 0
        g.fsyncEvery = g.rng.int(3...8)
      }
      if filledAt != nil {
        let f = g.fill
        minFill = min(minFill, f)
        maxFill = max(maxFill, f)
        fillSum += f
        fillCount += 1
      }
    }
    var byKind: [String: Int] = [:]
    var payload = 0
    for o in g.ops {
      byKind[o.op.name, default: 0] += 1
      payload += o.op.payloadBytes
    }
    let summary = WorkloadSummary(
      parameters: p, operationsByKind: byKind, payloadBytes: payload, filledAtOp: filledAt,
      minFill: fillCount > 0 ? minFill : g.fill, maxFill: fillCount > 0 ? maxFill : g.fill,
      meanFill: fillCount > 0 ? fillSum / Double(fillCount) : g.fill, finalFill: g.fill,
      finalLiveBytes: g.liveBytes, finalFiles: g.fileList.count,
      finalDirectories: g.dirEntries.count - 1)
    return (g.ops, summary)
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

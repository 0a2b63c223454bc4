import Foundation

// The write-heat workload (Benchmarks/heat/README.md): a deterministic stream of file operations that
// a phone or a small OS puts on flash, kept 60-85 % full. The same stream runs on every filesystem.

/// One operation of the stream. Paths are absolute inside the volume ("/etc/app3.conf").
public enum HeatOp: Equatable, Sendable {
  case mkdir(String)
  case rmdir(String)
  /// Create or replace: open with O_CREAT|O_TRUNC and write `size` bytes.
  case create(String, size: Int)
  case append(String, size: Int)
  /// Overwrite `size` bytes at `offset` in place (inside the file: the size does not change).
  case overwrite(String, offset: Int, size: Int)
  case truncate(String, size: Int)
  case unlink(String)
  /// rename(2): replaces `to` when it exists.
  case rename(String, to: String)
  case fsync(String)

  public var name: String {
    switch self {
    case .mkdir: "mkdir"
    case .rmdir: "rmdir"
    case .create: "create"
    case .append: "append"
    case .overwrite: "overwrite"
    case .truncate: "truncate"
    case .unlink: "unlink"
    case .rename: "rename"
    case .fsync: "fsync"
    }
  }

  /// Bytes of file data the operation writes (what write amplification divides by).
  public var payloadBytes: Int {
    switch self {
    case .create(_, let n), .append(_, let n), .overwrite(_, _, let n): n
    default: 0
    }
  }
}

/// An operation with its number (1-based) and the live file bytes after it (the generator's model).
public struct NumberedOp: Equatable, Sendable {
  public var n: Int
  public var op: HeatOp
  public var liveBytes: Int
  public init(n: Int, op: HeatOp, liveBytes: Int) {
    self.n = n
    self.op = op
    self.liveBytes = liveBytes
  }
}

public enum WorkloadError: Error, CustomStringConvertible {
  case badLine(file: String, line: Int, reason: String)
  case io(String)
  public var description: String {
    switch self {
    case .badLine(let f, let l, let r): "\(f):\(l): \(r)"
    case .io(let m): m
    }
  }
}

/// The stream as JSON lines: `{"n":1,"op":"create","path":"/etc/a.conf","size":812,"live":4096}`.
public enum OpStream {
  struct Line: Codable {
    var n: Int
    var op: String
    var path: String
    var to: String?
    var size: Int?
    var offset: Int?
    var live: Int
  }

  public static func encode(_ o: NumberedOp) -> String {
    func q(_ s: String) -> String {
      var out = "\""
      for c in s.unicodeScalars {
        if c == "\"" || c == "\\" { out += "\\" }
        out.unicodeScalars.append(c)
      }
      return out + "\""
    }
    var s = "{\"n\":\(o.n),\"op\":\"\(o.op.name)\""
    switch o.op {
    case .mkdir(let p), .rmdir(let p), .unlink(let p), .fsync(let p):
      s += ",\"path\":\(q(p))"
    case .create(let p, let n), .append(let p, let n), .truncate(let p, let n):
      s += ",\"path\":\(q(p)),\"size\":\(n)"
    case .overwrite(let p, let off, let n):
      s += ",\"path\":\(q(p)),\"offset\":\(off),\"size\":\(n)"
    case .rename(let p, let to):
      s += ",\"path\":\(q(p)),\"to\":\(q(to))"
    }
    return s + ",\"live\":\(o.liveBytes)}"
  }

  public static func decode(_ line: String, file: String, lineNumber: Int) throws(WorkloadError)
    -> NumberedOp
  {
    let l: Line
    do { l = try JSONDecoder().decode(Line.self, from: Data(line.utf8)) } catch {
      throw .badLine(file: file, line: lineNumber, reason: "not an operation: \(error)")
    }
    func need(_ v: Int?, _ field: String) throws(WorkloadError) -> Int {
      guard let v, v >= 0 else {
        throw .badLine(
          file: file, line: lineNumber, reason: "\(l.op) needs a non-negative \"\(field)\"")
      }
      return v
    }
    let op: HeatOp
    switch l.op {
    case "mkdir": op = .mkdir(l.path)
    case "rmdir": op = .rmdir(l.path)
    case "create": op = .create(l.path, size: try need(l.size, "size"))
    case "append": op = .append(l.path, size: try need(l.size, "size"))
    case "overwrite":
      op = .overwrite(l.path, offset: try need(l.offset, "offset"), size: try need(l.size, "size"))
    case "truncate": op = .truncate(l.path, size: try need(l.size, "size"))
    case "unlink": op = .unlink(l.path)
    case "rename":
      guard let to = l.to else {
        throw .badLine(file: file, line: lineNumber, reason: "rename needs \"to\"")
      }
      op = .rename(l.path, to: to)
    case "fsync": op = .fsync(l.path)
    default:
      throw .badLine(
        file: file, line: lineNumber,
        reason:
          "unknown op \"\(l.op)\" (mkdir, rmdir, create, append, overwrite, truncate, unlink, rename, fsync)"
      )
    }
    guard l.path.hasPrefix("/") else {
      throw .badLine(file: file, line: lineNumber, reason: "path \"\(l.path)\" is not absolute")
    }
    return NumberedOp(n: l.n, op: op, liveBytes: l.live)
  }

  public static func read(path: String) throws(WorkloadError) -> [NumberedOp] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw .io("\(path): cannot read the operation stream")
    }
    var out: [NumberedOp] = []
    var lineNumber = 0
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
      lineNumber += 1
      if line.isEmpty { continue }
      out.append(try decode(String(line), file: path, lineNumber: lineNumber))
    }
    return out
  }
}

/// SplitMix64: small, fast, and the same on every platform (the stream must not depend on Swift's
/// unseeded generators).
public struct SplitMix64: RandomNumberGenerator, Sendable {
  public var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  /// Uniform in `range` (deterministic: no rejection sampling that depends on the platform).
  public mutating func int(_ range: ClosedRange<Int>) -> Int {
    range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
  }
  public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// The bytes an operation writes: a pseudo-random stream seeded by (seed, op number), so every runner
/// writes the same bytes and no filesystem can compress or deduplicate them.
public enum Payload {
  public static func bytes(seed: UInt64, op: Int, count: Int) -> [UInt8] {
    var rng = SplitMix64(seed: seed ^ (UInt64(op) &* 0xD1B5_4A32_D192_ED03))
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { p in
      var i = 0
      while i + 8 <= count {
        p.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self)
        i += 8
      }
      if i < count {
        var v = rng.next()
        while i < count {
          p[i] = UInt8(truncatingIfNeeded: v)
          v >>= 8
          i += 1
        }
      }
    }
    return out
  }
}

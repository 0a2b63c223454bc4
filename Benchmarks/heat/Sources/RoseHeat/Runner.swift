import Foundation

// Runs an operation stream against a filesystem: a mounted directory (the kernel's ext4 and btrfs, or
// a FUSE mount) through POSIX calls, or the RoseFS engine through `VolumeOperations`. Failures are
// counted by errno and the run goes on; the first ENOSPC is remembered.

/// Where the operations go. Each call returns 0 or an errno.
public protocol OperationTarget: AnyObject {
  func apply(_ op: HeatOp, payload: [UInt8]) -> Int32
  /// After the last operation: sync and unmount (or the equivalent). Returns 0 or an errno.
  func finish() -> Int32
}

/// The outcome of a run on one filesystem.
public struct RunOutcome: Codable, Equatable, Sendable {
  public var operations: Int
  public var failures: [String: Int]
  public var firstENOSPC: Int?
  /// Live file bytes (the generator's model) when the first ENOSPC happened.
  public var liveBytesAtENOSPC: Int?
  public var payloadBytes: Int
  public var seconds: Double
  public init() {
    operations = 0
    failures = [:]
    payloadBytes = 0
    seconds = 0
  }
}

public enum StreamRunner {
  /// `before` runs before each operation with its number (the kernel runner writes a trace marker).
  public static func run(
    _ ops: [NumberedOp], seed: UInt64, on target: OperationTarget,
    before: ((Int) -> Void)? = nil, progress: ((Int) -> Void)? = nil
  ) -> RunOutcome {
    var out = RunOutcome()
    let start = Date()
    for o in ops {
      before?(o.n)
      let bytes =
        o.op.payloadBytes > 0 ? Payload.bytes(seed: seed, op: o.n, count: o.op.payloadBytes) : []
      let e = target.apply(o.op, payload: bytes)
      out.operations += 1
      out.payloadBytes += o.op.payloadBytes
      if e != 0 {
        out.failures["\(o.op.name): \(errnoName(e))", default: 0] += 1
        if e == ENOSPC && out.firstENOSPC == nil {
          out.firstENOSPC = o.n
          out.liveBytesAtENOSPC = o.liveBytes
        }
      }
      if o.n % 1000 == 0 { progress?(o.n) }
    }
    before?(ops.count + 1)
    let e = target.finish()
    if e != 0 { out.failures["finish: \(errnoName(e))", default: 0] += 1 }
    out.seconds = Date().timeIntervalSince(start)
    return out
  }

  public static func errnoName(_ e: Int32) -> String {
    switch e {
    case ENOENT: "ENOENT"
    case ENOSPC: "ENOSPC"
    case EEXIST: "EEXIST"
    case ENOTEMPTY: "ENOTEMPTY"
    case EIO: "EIO"
    case EROFS: "EROFS"
    case ENOTDIR: "ENOTDIR"
    case EISDIR: "EISDIR"
    default: "errno \(e)"
    }
  }
}

/// A mounted filesystem, through the kernel's system calls.
public final class PosixTarget: OperationTarget {
  public let root: String
  public init(root: String) { self.root = root }

  func path(_ p: String) -> String { root + p }

  static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int?) -> Int32 {
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeBytes { b -> Int in
        guard let base = b.baseAddress else { return 0 }
        if let offset {
          return pwrite(fd, base + done, bytes.count - done, off_t(offset + done))
        }
        return Glibc.write(fd, base + done, bytes.count - done)
      }
      if n < 0 {
        if errno == EINTR { continue }
        return errno
      }
      if n == 0 { return EIO }
      done += n
    }
    return 0
  }

  static func result(_ r: Int32) -> Int32 { r == 0 ? 0 : errno }

  public func apply(_ op: HeatOp, payload: [UInt8]) -> Int32 {
    switch op {
    case .mkdir(let p): return Self.result(Glibc.mkdir(path(p), 0o755))
    case .rmdir(let p): return Self.result(Glibc.rmdir(path(p)))
    case .unlink(let p): return Self.result(Glibc.unlink(path(p)))
    case .rename(let a, let b): return Self.result(Glibc.rename(path(a), path(b)))
    case .truncate(let p, let n): return Self.result(Glibc.truncate(path(p), off_t(n)))
    case .create(let p, _), .append(let p, _), .overwrite(let p, _, _):
      var flags = O_WRONLY | O_CLOEXEC
      var offset: Int? = nil
      switch op {
      case .create: flags |= O_CREAT | O_TRUNC
      case .append: flags |= O_APPEND
      case .overwrite(_, let off, _): offset = off
      default: break
      }
      let fd = open(path(p), flags, 0o644)
      guard fd >= 0 else { return errno }
      let e = Self.writeAll(fd, payload, at: offset)
      let c = close(fd)
      return e != 0 ? e : (c == 0 ? 0 : errno)
    case .fsync(let p):
      let fd = open(path(p), O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else { return errno }
      let r = Glibc.fsync(fd)
      let e = r == 0 ? 0 : errno
      close(fd)
      return e
    }
  }

  public func finish() -> Int32 {
    sync()
    return 0
  }
}

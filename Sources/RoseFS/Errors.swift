/// Errors of the format library. Each carries the context a user needs to act; the CLI prints them once.
public enum RoseFSError: Error, CustomStringConvertible, Equatable {
  case io(path: String, operation: String, errno: Int32)
  case volumeTooSmall(neededBytes: UInt64, haveBytes: UInt64)
  case volumeTooLarge(bytes: UInt64)
  case fileTooLarge(path: String, size: UInt64)
  case xattrsTooLarge(path: String, bytes: Int)
  case xattrInvalid(path: String, name: [UInt8], reason: String)
  case invalidOption(String)
  case corrupt(String)
  /// A broken invariant of the packer itself (a rosepack bug), never bad input.
  case internalInvariant(String)
  case notFound(String)

  public var description: String {
    switch self {
    case .io(let path, let op, let e):
      return "\(path): \(op) failed: \(String(cString: strerror(e)))"
    case .volumeTooSmall(let need, let have):
      return
        "image too small: the content needs \(formatBytes(need)) (\(need) bytes) but the size given is \(formatBytes(have)); use --size \(suggestSize(need)) or --size auto"
    case .volumeTooLarge(let b):
      return
        "volume of \(b) bytes is larger than RoseFS v1 supports (16 TiB with 32-bit block addresses)"
    case .fileTooLarge(let p, let s):
      return "\(p): file of \(s) bytes is larger than RoseFS v1 supports (2^40 bytes)"
    case .xattrsTooLarge(let p, let b):
      return
        "\(p): extended attributes take \(b) bytes; RoseFS v1 stores at most 4064 bytes of xattrs per inode"
    case .xattrInvalid(let p, let n, let why):
      return
        "\(p): extended attribute \(Name.printable(Array(n.prefix(64))))\(n.count > 64 ? "..." : ""): \(why)"
    case .invalidOption(let m): return m
    case .corrupt(let m): return "corrupt image: \(m)"
    case .internalInvariant(let m):
      return "internal error (a bug in rosepack, please report it): \(m)"
    case .notFound(let m): return m
    }
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// "412.0 MiB": binary units, as the CLI takes them.
public func formatBytes(_ n: UInt64) -> String {
  let units = ["B", "KiB", "MiB", "GiB", "TiB"]
  var v = Double(n)
  var i = 0
  while v >= 1024 && i < units.count - 1 {
    v /= 1024
    i += 1
  }
  if i == 0 { return "\(n) B" }
  let r = (v * 10).rounded() / 10
  return "\(r) \(units[i])"
}

func suggestSize(_ need: UInt64) -> String {
  let mib = (need + (1 << 20) - 1) >> 20
  return "\(mib)M"
}

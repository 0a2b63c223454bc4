import RoseSizes

/// Errors of the format library. Each carries the context a user needs to act; the CLI prints them once.
public enum RoseFSError: Error, CustomStringConvertible, Equatable {
  case io(path: String, operation: String, errno: Int32)
  case volumeTooSmall(neededBytes: UInt64, haveBytes: UInt64)
  /// A requested volume size below `RoseLayout.minVolumeBytes`.
  case volumeBelowMinimum(bytes: UInt64)
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
        "volume too small: the content needs \(formatSize(need, exact: true)), the volume has \(formatSize(have, exact: true))"
    case .volumeBelowMinimum(let bytes):
      return
        "a volume of \(formatSize(bytes, exact: true)) is below the RoseFS minimum of \(formatSize(RoseLayout.minVolumeBytes))"
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

extension RoseFSError {
  /// `error` itself when the format library threw it; anything else reaching a format-library call
  /// site is a broken invariant, kept with its text.
  public init(wrapping error: any Error) {
    self = (error as? RoseFSError) ?? .internalInvariant("\(error)")
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

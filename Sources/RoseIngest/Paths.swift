import RoseFS

/// Path rules shared by every input: tar semantics, bytes only.
public enum ImagePath {
  /// Longest name component RoseFS stores.
  public static let maxNameLength = 255

  /// Splits `path` into components: leading `./` and `/` dropped, empty and `.` components collapsed.
  /// An empty result is the root. Throws for `..` and components longer than 255 bytes.
  public static func components(_ path: [UInt8], input: String) throws -> [Name] {
    // Called once per archive entry: scanned through a buffer pointer (no per-byte bounds
    // checks), one allocation for the list and none for components of up to 15 bytes (`Name`
    // keeps those inline).
    try path.withUnsafeBufferPointer { p in
      var out: [Name] = []
      out.reserveCapacity(4)
      var start = 0
      var i = 0
      let dot = UInt8(ascii: ".")
      while i <= p.count {
        if i == p.count || p[i] == UInt8(ascii: "/") {
          let n = i - start
          if n == 1 && p[start] == dot {
            // "." collapses
          } else if n == 2 && p[start] == dot && p[start + 1] == dot {
            throw IngestError.dotDotComponent(input: input, entry: path)
          } else if n > maxNameLength {
            throw IngestError.nameTooLong(input: input, entry: path, length: n)
          } else if n > 0 {
            out.append(Name(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: p[start..<i]))))
          }
          start = i + 1
        }
        i += 1
      }
      return out
    }
  }

  /// "a/b/c" from components (no leading slash); "" for the root.
  public static func join(_ comps: [Name]) -> [UInt8] {
    var out: [UInt8] = []
    for (i, c) in comps.enumerated() {
      if i > 0 { out.append(UInt8(ascii: "/")) }
      out += c.bytes
    }
    return out
  }
}

/// fnmatch-style matching over image paths (no leading slash): `*` and `?` do not cross `/`, `**`
/// does, `[...]` classes with `!`/`^` negation and ranges, `\` escapes.
public struct PathGlob: Sendable {
  public let pattern: [UInt8]

  public init(_ pattern: String) { self.init(bytes: Array(pattern.utf8)) }
  public init(bytes: [UInt8]) {
    var p = bytes[...]
    while true {
      if p.first == UInt8(ascii: "/") {
        p = p.dropFirst()
      } else if p.starts(with: [UInt8(ascii: "."), UInt8(ascii: "/")]) {
        p = p.dropFirst(2)
      } else {
        break
      }
    }
    while p.count > 1 && p.last == UInt8(ascii: "/") { p = p.dropLast() }
    pattern = Array(p)
  }

  public func matches(_ path: [UInt8]) -> Bool {
    pattern.withUnsafeBufferPointer { pat in
      path.withUnsafeBufferPointer { s in PathGlob.match(pat, 0, s, 0) }
    }
  }

  private static func match(
    _ p: UnsafeBufferPointer<UInt8>, _ pi0: Int, _ s: UnsafeBufferPointer<UInt8>, _ si0: Int
  ) -> Bool {
    var pi = pi0
    var si = si0
    let slash = UInt8(ascii: "/")
    while pi < p.count {
      let c = p[pi]
      switch c {
      case UInt8(ascii: "*"):
        let double = pi + 1 < p.count && p[pi + 1] == UInt8(ascii: "*")
        var next = pi + (double ? 2 : 1)
        // "**/" also matches zero directories.
        if double && next < p.count && p[next] == slash {
          if match(p, next + 1, s, si) { return true }
          next += 0
        }
        var k = si
        while true {
          if match(p, next, s, k) { return true }
          if k >= s.count { return false }
          if !double && s[k] == slash { return false }
          k += 1
        }
      case UInt8(ascii: "?"):
        guard si < s.count, s[si] != slash else { return false }
        pi += 1
        si += 1
      case UInt8(ascii: "["):
        guard si < s.count, s[si] != slash else { return false }
        var j = pi + 1
        var negate = false
        if j < p.count && (p[j] == UInt8(ascii: "!") || p[j] == UInt8(ascii: "^")) {
          negate = true
          j += 1
        }
        var matched = false
        var first = true
        var closed = false
        while j < p.count {
          if p[j] == UInt8(ascii: "]") && !first {
            closed = true
            break
          }
          first = false
          var lo = p[j]
          if lo == UInt8(ascii: "\\") && j + 1 < p.count {
            j += 1
            lo = p[j]
          }
          var hi = lo
          if j + 2 < p.count && p[j + 1] == UInt8(ascii: "-") && p[j + 2] != UInt8(ascii: "]") {
            hi = p[j + 2]
            j += 2
          }
          if s[si] >= lo && s[si] <= hi { matched = true }
          j += 1
        }
        if !closed {
          // A lone '[' is literal.
          guard s[si] == c else { return false }
          pi += 1
          si += 1
          continue
        }
        guard matched != negate else { return false }
        pi = j + 1
        si += 1
      case UInt8(ascii: "\\") where pi + 1 < p.count:
        guard si < s.count, s[si] == p[pi + 1] else { return false }
        pi += 2
        si += 1
      default:
        guard si < s.count, s[si] == c else { return false }
        pi += 1
        si += 1
      }
    }
    return si == s.count
  }
}

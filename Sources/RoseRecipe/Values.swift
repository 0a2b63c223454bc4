import Foundation

/// One `Key=Value` line after includes, with its value after `%{...}` expansion.
struct Entry {
  var key: String
  var raw: String
  var keyAt: SourcePosition
  var valueAt: SourcePosition
  /// Directory of the file that contains the line; relative host paths resolve against it.
  var directory: String
  var spec: KeySpec?
  var value: String = ""
  /// Source column of each character of `value` (expansions map to the `%` that produced them).
  var columns: [Int] = []
  var typed: TypedValue?
  /// True when the value failed to parse; the key still counts as present.
  var failed = false

  /// Position of the character at `offset` in the expanded value.
  func position(at offset: Int) -> SourcePosition {
    let column: Int
    if offset < columns.count {
      column = columns[offset]
    } else if let last = columns.last {
      column = last + 1
    } else {
      column = valueAt.column
    }
    return SourcePosition(file: valueAt.file, line: valueAt.line, column: column)
  }
}

/// A value after the generic type check of the key table.
enum TypedValue {
  case text(String)
  case bool(Bool)
  case size(UInt64)
  case auto
  case int(Int64)
  case uuid(UUID)
  case words([(word: String, offset: Int)])

  var text: String? { if case .text(let s) = self { return s } else { return nil } }
  var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
  var size: UInt64? { if case .size(let s) = self { return s } else { return nil } }
  var int: Int64? { if case .int(let i) = self { return i } else { return nil } }
  var uuid: UUID? { if case .uuid(let u) = self { return u } else { return nil } }
  var words: [(word: String, offset: Int)] {
    if case .words(let w) = self { return w } else { return [] }
  }
}

func parseBool(_ text: String) -> Bool? {
  switch text.lowercased() {
  case "yes", "true", "on", "1": return true
  case "no", "false", "off", "0": return false
  default: return nil
  }
}

/// Decimal or 0x-prefixed hexadecimal unsigned number.
func parseUnsigned(_ text: String) -> UInt64? {
  let lower = text.lowercased()
  if lower.hasPrefix("0x") { return UInt64(lower.dropFirst(2), radix: 16) }
  guard lower.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
  return UInt64(lower)
}

func parseOctalMode(_ text: String) -> UInt16? {
  guard !text.isEmpty, text.allSatisfy({ ("0"..."7").contains($0) }),
    let mode = UInt16(text, radix: 8), mode <= 0o7777
  else { return nil }
  return mode
}

/// Splits on whitespace, keeping each word's character offset.
func splitWords(_ text: String) -> [(word: String, offset: Int)] {
  var result: [(String, Int)] = []
  var current = ""
  var start = 0
  for (index, char) in text.enumerated() {
    if char == " " || char == "\t" {
      if !current.isEmpty { result.append((current, start)) }
      current = ""
    } else {
      if current.isEmpty { start = index }
      current.append(char)
    }
  }
  if !current.isEmpty { result.append((current, start)) }
  return result
}

/// Splits `text` on `separator` into at most `limit` fields, keeping each field's offset.
func splitFields(_ text: String, on separator: Character, limit: Int) -> [(
  field: String, offset: Int
)] {
  var result: [(String, Int)] = []
  var current = ""
  var start = 0
  for (index, char) in text.enumerated() {
    if char == separator && result.count < limit - 1 {
      result.append((current, start))
      current = ""
      start = index + 1
    } else {
      current.append(char)
    }
  }
  result.append((current, start))
  return result
}

func isValidVariableName(_ name: String) -> Bool {
  guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else {
    return false
  }
  return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
}

func joinPath(_ directory: String, _ path: String) -> String {
  if path.hasPrefix("/") { return (path as NSString).standardizingPath }
  return ((directory as NSString).appendingPathComponent(path) as NSString).standardizingPath
}

func fileKind(_ path: String) -> (exists: Bool, isDirectory: Bool) {
  var isDirectory: ObjCBool = false
  let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
  return (exists, isDirectory.boolValue)
}

/// Why a `CopyBlocks=` source cannot fill a partition, as systemd-repart 252 refuses it: a regular
/// file of zero bytes ("has zero size, refusing") or of a size that is not a multiple of 512
/// ("has size that is not multiple of 512, refusing"; repart copies whole 512-byte sectors).
/// nil when the size is fine or the path is not a regular file (a block device's size is not
/// in its stat). `key` names the key in the message (`CopyBlocks`).
func copyBlocksSizeProblem(_ path: String, key: String) -> (message: String, hint: String)? {
  var info = stat()
  guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
  let size = UInt64(info.st_size)
  if size == 0 {
    return ("\(key)= source \(path) is empty (0 bytes)", "give a file with the partition's bytes")
  }
  guard size % 512 != 0 else { return nil }
  let padded = (size + 511) / 512 * 512
  return (
    "\(key)= source \(path) is \(size) bytes, not a multiple of 512",
    "systemd-repart refuses it; pad the file with zeros to \(padded) bytes "
      + "(truncate -s \(padded) FILE)"
  )
}

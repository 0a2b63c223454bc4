import Foundation

/// One meaningful line of a recipe file.
enum INILine: Equatable {
  case section(name: String, at: SourcePosition)
  case entry(key: String, value: String, keyAt: SourcePosition, valueAt: SourcePosition)
}

/// A systemd-style INI reader of our own, because we want exact line:column positions for
/// every key and value, and no INI library gives them.
enum INIParser {
  static func parse(text: String, file: String, diagnostics: inout Diagnostics) -> [INILine] {
    var result: [INILine] = []
    var lineNumber = 0
    // "\r\n" is one Character in Swift: split on it too, so CRLF files read as systemd reads them.
    for rawLine in text.split(
      omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    {
      lineNumber += 1
      var line = Substring(rawLine)
      if line.hasSuffix("\r") { line = line.dropLast() }
      let indent = line.prefix(while: { $0 == " " || $0 == "\t" }).count
      let body = line.dropFirst(indent)
      let column = indent + 1
      if body.isEmpty || body.hasPrefix("#") || body.hasPrefix(";") { continue }
      let position = SourcePosition(file: file, line: lineNumber, column: column)
      if body.hasPrefix("[") {
        let trimmed = body.trimmingTrailingSpace()
        guard trimmed.hasSuffix("]"), trimmed.count >= 3 else {
          diagnostics.error(
            position, "malformed section header '\(trimmed)'", hint: "write it as [Section]")
          continue
        }
        let name = String(trimmed.dropFirst().dropLast())
        guard name.allSatisfy({ $0.isLetter || $0.isNumber }) else {
          diagnostics.error(
            position.shifted(by: 1), "invalid section name '\(name)'",
            hint: "section names are letters and digits, e.g. [Partition]")
          continue
        }
        result.append(.section(name: name, at: position))
        continue
      }
      guard let equals = body.firstIndex(of: "=") else {
        diagnostics.error(
          position, "expected Key=Value or [Section], got '\(body.trimmingTrailingSpace())'")
        continue
      }
      let key = String(body[body.startIndex..<equals]).trimmingTrailingSpace()
      guard !key.isEmpty else {
        diagnostics.error(position, "missing key name before '='")
        continue
      }
      guard key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
        diagnostics.error(
          position, "invalid key name '\(key)'", hint: "key names are letters and digits")
        continue
      }
      let afterEquals = body[body.index(after: equals)...]
      let valueIndent = afterEquals.prefix(while: { $0 == " " || $0 == "\t" }).count
      let value = String(afterEquals.dropFirst(valueIndent)).trimmingTrailingSpace()
      let valueColumn = column + body.distance(from: body.startIndex, to: equals) + 1 + valueIndent
      // NUL and other control characters cut names short or make invalid ones downstream.
      if let offset = value.unicodeScalars.firstIndex(where: {
        ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F
      }) {
        let bad = value.unicodeScalars[offset].value
        let column =
          valueColumn
          + value.unicodeScalars.distance(
            from: value.unicodeScalars.startIndex, to: offset)
        diagnostics.error(
          SourcePosition(file: file, line: lineNumber, column: column),
          "\(key)= contains the control character U+\(String(format: "%04X", bad))",
          hint: "remove it; write \\n or \\t escapes in Inline= text")
        continue
      }
      result.append(
        .entry(
          key: key, value: value, keyAt: position,
          valueAt: SourcePosition(file: file, line: lineNumber, column: valueColumn)))
    }
    return result
  }
}

extension StringProtocol {
  func trimmingTrailingSpace() -> String {
    var s = Substring(self)
    while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
    return String(s)
  }
}

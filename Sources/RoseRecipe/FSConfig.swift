import Foundation

/// Reader for Android `fs_config` text manifests, because Android trees get ownership and
/// modes from such a file, not from the (unprivileged) host, and porting teams already have one.
public enum FSConfig {
  /// Parses `path uid gid mode [capabilities=0x...]` lines; `#` comments and blank lines are
  /// skipped. Paths are made absolute. Errors carry file:line:col.
  public static func parse(text: String, file: String) -> (
    overrides: [OwnershipOverride], errors: [RecipeError]
  ) {
    var overrides: [OwnershipOverride] = []
    var errors: [RecipeError] = []
    var firstLine: [String: Int] = [:]
    var lineNumber = 0
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
      lineNumber += 1
      var line = String(rawLine)
      if line.hasSuffix("\r") { line.removeLast() }
      let fields = splitWords(line)
      guard let first = fields.first, !first.word.hasPrefix("#") else { continue }
      func at(_ offset: Int) -> SourcePosition {
        SourcePosition(file: file, line: lineNumber, column: offset + 1)
      }
      guard fields.count == 4 || fields.count == 5 else {
        errors.append(
          RecipeError(
            at(first.offset),
            "expected 'path uid gid mode [capabilities=0x...]', got "
              + "\(fields.count) fields"))
        continue
      }
      var path = first.word.hasPrefix("/") ? first.word : "/" + first.word
      while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
      guard let uid = UInt32(fields[1].word) else {
        errors.append(
          RecipeError(
            at(fields[1].offset), "invalid uid '\(fields[1].word)'",
            hint: "fs_config takes numeric ids, e.g. 0 for root"))
        continue
      }
      guard let gid = UInt32(fields[2].word) else {
        errors.append(
          RecipeError(
            at(fields[2].offset), "invalid gid '\(fields[2].word)'",
            hint: "fs_config takes numeric ids, e.g. 0 for root"))
        continue
      }
      guard let mode = parseOctalMode(fields[3].word) else {
        errors.append(
          RecipeError(
            at(fields[3].offset), "invalid mode '\(fields[3].word)'",
            hint: "an octal mode such as 0755"))
        continue
      }
      var capabilities: UInt64 = 0
      if fields.count == 5 {
        let word = fields[4].word
        let prefix = "capabilities="
        guard word.hasPrefix(prefix),
          let value = parseUnsigned(String(word.dropFirst(prefix.count)))
        else {
          errors.append(
            RecipeError(
              at(fields[4].offset), "invalid capabilities '\(word)'",
              hint: "write capabilities=0x followed by a hexadecimal mask"))
          continue
        }
        capabilities = value
      }
      if let previous = firstLine[path] {
        errors.append(
          RecipeError(
            at(first.offset), "duplicate entry for \(path)",
            hint: "first given at line \(previous)"))
        continue
      }
      firstLine[path] = lineNumber
      overrides.append(
        OwnershipOverride(
          path: path, uid: uid, gid: gid, mode: mode, capabilities: capabilities,
          position: at(first.offset)))
    }
    return (overrides, errors)
  }
}

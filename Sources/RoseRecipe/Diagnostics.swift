import Foundation
import RoseDisk

/// Where a value came from, so that every later stage (validation here, the disk planner and
/// the image builder elsewhere) can point the user at the exact line that asked for it.
///
/// Positions are provenance, not meaning: two recipes that describe the same image are equal
/// even when their text sits on different lines, so `==` ignores positions. That is what lets
/// `parse(dump(recipe)) == recipe` hold.
public struct SourcePosition: Sendable, Equatable, Hashable, CustomStringConvertible {
  /// Path of the file as rosepack opened it.
  public var file: String
  /// 1-based line; 0 when the value did not come from a file (command line, environment).
  public var line: Int
  /// 1-based column in characters; 0 when unknown.
  public var column: Int

  public init(file: String, line: Int, column: Int) {
    self.file = file
    self.line = line
    self.column = column
  }

  public static func == (lhs: SourcePosition, rhs: SourcePosition) -> Bool { true }
  public func hash(into hasher: inout Hasher) {}

  public var description: String {
    line > 0 ? "\(file):\(line):\(column)" : file
  }

  func shifted(by columns: Int) -> SourcePosition {
    SourcePosition(file: file, line: line, column: column + columns)
  }
}

/// One problem in a recipe, typed so that the CLI can print it compiler-style and tests can
/// check the exact place and words, and so that editors can jump to `file:line:col`.
public struct RecipeError: Error, Sendable, Equatable, CustomStringConvertible {
  public var file: String
  public var line: Int
  public var column: Int
  public var message: String
  /// A suggestion that makes the fix obvious: a close key name, the allowed values, …
  public var hint: String?

  public init(file: String, line: Int, column: Int, message: String, hint: String? = nil) {
    self.file = file
    self.line = line
    self.column = column
    self.message = message
    self.hint = hint
  }

  init(_ position: SourcePosition, _ message: String, hint: String? = nil) {
    self.init(
      file: position.file, line: position.line, column: position.column, message: message,
      hint: hint)
  }

  public var position: SourcePosition { SourcePosition(file: file, line: line, column: column) }

  /// `file:line:col: message` and, on the next line, the hint.
  public var description: String {
    let place = line > 0 ? "\(file):\(line):\(column)" : file
    var text = "\(place): \(message)"
    if let hint { text += "\n  hint: \(hint)" }
    return text
  }

  static func sortKey(_ a: RecipeError, _ b: RecipeError) -> Bool {
    if a.file != b.file { return a.file < b.file }
    if a.line != b.line { return a.line < b.line }
    if a.column != b.column { return a.column < b.column }
    return a.message < b.message
  }
}

/// All problems found in one load: users fix a recipe in one round instead of one error per run.
public struct RecipeErrors: Error, Sendable, Equatable, CustomStringConvertible {
  /// Sorted by file, line, column.
  public var errors: [RecipeError]

  public init(_ errors: [RecipeError]) {
    self.errors = errors.sorted(by: RecipeError.sortKey)
  }

  public var description: String {
    errors.map(\.description).joined(separator: "\n")
  }
}

/// Collects errors and warnings while a recipe is loaded.
struct Diagnostics {
  var errors: [RecipeError] = []
  var warnings: [RecipeError] = []

  mutating func error(_ position: SourcePosition, _ message: String, hint: String? = nil) {
    errors.append(RecipeError(position, message, hint: hint))
  }

  mutating func warning(_ position: SourcePosition, _ message: String, hint: String? = nil) {
    warnings.append(RecipeError(position, message, hint: hint))
  }
}

/// Levenshtein distance ignoring case, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
  PartitionTypes.editDistance(a.lowercased(), b.lowercased())
}

/// The closest candidate, if it is close enough to be a plausible typo.
func closestMatch(_ word: String, in candidates: [String]) -> String? {
  var best: (String, Int)?
  for candidate in candidates {
    let distance = editDistance(word, candidate)
    if best.map({ distance < $0.1 }) ?? true { best = (candidate, distance) }
  }
  guard let (name, distance) = best else { return nil }
  let limit = max(2, min(word.count, name.count) / 3)
  if word.lowercased() == name.lowercased() || distance <= limit { return name }
  return nil
}

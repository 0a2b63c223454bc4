import Foundation
import Testing

@testable import RoseRecipe

/// A unique scratch directory per test.
final class TempDir {
  let path: String

  init() {
    path = (NSTemporaryDirectory() as NSString).appendingPathComponent(
      "rosepack-recipe-" + UUID().uuidString)
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  @discardableResult
  func write(_ relative: String, _ text: String) -> String {
    let full = ((path as NSString).appendingPathComponent(relative) as NSString).standardizingPath
    try? FileManager.default.createDirectory(
      atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: full, contents: Data(text.utf8))
    return full
  }

  func mkdir(_ relative: String) {
    try? FileManager.default.createDirectory(
      atPath: (path as NSString).appendingPathComponent(relative),
      withIntermediateDirectories: true)
  }

  func file(_ relative: String) -> String {
    ((path as NSString).appendingPathComponent(relative) as NSString).standardizingPath
  }
}

/// Loads and returns the errors (empty when the recipe is valid).
func errors(
  _ path: String, defines: [String: String] = [:], environment: [String: String] = [:]
) -> [RecipeError] {
  do {
    _ = try RecipeLoader.load(path: path, defines: defines, environment: environment)
    return []
  } catch let error as RecipeErrors {
    return error.errors
  } catch {
    return [RecipeError(file: "?", line: 0, column: 0, message: "\(error)")]
  }
}

/// A minimal valid recipe header: lines 1-3.
let imageHeader = """
  [Image]
  Name=test
  Version=1

  """

/// Checks that exactly one error was reported, at the given place, with the given text.
func expectSingle(
  _ found: [RecipeError], file: String, line: Int, column: Int, message: String,
  hint: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(found.count == 1, "\(found)", sourceLocation: sourceLocation)
  guard let error = found.first else { return }
  #expect(error.file == file, sourceLocation: sourceLocation)
  #expect(error.line == line, sourceLocation: sourceLocation)
  #expect(error.column == column, sourceLocation: sourceLocation)
  #expect(error.message == message, sourceLocation: sourceLocation)
  if let hint { #expect(error.hint == hint, sourceLocation: sourceLocation) }
}

import Foundation

/// Starter projects for `rosepack init --template NAME DIR`: real directories under the
/// project's top-level `Templates/` (a recipe `NAME.conf`, its input files and Mustache templates,
/// and a one-line `DESCRIPTION` that is not copied), so a user edits files, not strings in Swift.
///
/// Where `Templates/` is found, first match wins: `$ROSEPACK_TEMPLATES`; `Templates/` or
/// `share/rosepack/Templates/` next to, or one level above, the executable's directory (an
/// installed layout); then the nearest directory above the executable that holds both
/// `Package.swift` and `Templates/` (the source tree `swift build` ran in, e.g. from
/// `.build/debug/rosepack`).
public struct StarterTemplate: Sendable, Equatable {
  public var name: String
  public var summary: String
  /// The template's directory.
  public var directory: String

  /// File name of the recipe inside the project directory.
  public var recipeFileName: String { "\(name).conf" }

  static let descriptionFile = "DESCRIPTION"

  /// Copies the template into `target` (created if needed) and returns the recipe path.
  /// Refuses to overwrite existing files; copies symbolic links as links.
  @discardableResult
  public func write(to target: String) throws -> String {
    let manager = FileManager.default
    let files = try relativeFiles()
    for file in files {
      let path = (target as NSString).appendingPathComponent(file)
      if manager.fileExists(atPath: path) {
        throw RecipeError(
          file: path, line: 0, column: 0, message: "already exists; not overwriting it",
          hint: "choose an empty directory for the new project")
      }
    }
    for file in files {
      let source = (directory as NSString).appendingPathComponent(file)
      let path = (target as NSString).appendingPathComponent(file)
      try manager.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try manager.copyItem(atPath: source, toPath: path)
    }
    return (target as NSString).appendingPathComponent(recipeFileName)
  }

  /// Every regular file and link of the template, relative, sorted; DESCRIPTION left out.
  public func relativeFiles() throws -> [String] {
    guard let enumerator = FileManager.default.enumerator(atPath: directory) else {
      throw RecipeError(
        file: directory, line: 0, column: 0, message: "cannot read the template directory")
    }
    var files: [String] = []
    while let entry = enumerator.nextObject() as? String {
      if entry == Self.descriptionFile { continue }
      let kind = fileKind((directory as NSString).appendingPathComponent(entry))
      if !kind.isDirectory { files.append(entry) }
    }
    return files.sorted()
  }
}

public enum StarterTemplates {
  /// The `Templates/` directory (see `StarterTemplate`), or nil when none is found.
  public static func directory(
    executable: String = CommandLine.arguments.first ?? "",
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) -> String? {
    if let explicit = environment["ROSEPACK_TEMPLATES"], !explicit.isEmpty {
      return explicit
    }
    var exe = executable
    if !exe.hasPrefix("/") {
      exe = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(exe)
    }
    exe = (exe as NSString).resolvingSymlinksInPath
    var dir = (exe as NSString).deletingLastPathComponent
    let first = dir
    for candidate in [
      first + "/Templates", first + "/share/rosepack/Templates",
      (first as NSString).deletingLastPathComponent + "/share/rosepack/Templates",
    ] where fileKind(candidate).isDirectory {
      return candidate
    }
    while dir != "/" && !dir.isEmpty {
      if fileKind(dir + "/Package.swift").exists && fileKind(dir + "/Templates").isDirectory {
        return dir + "/Templates"
      }
      dir = (dir as NSString).deletingLastPathComponent
    }
    return nil
  }

  /// The templates in `directory`: every subdirectory that holds `NAME/NAME.conf`.
  public static func list(in directory: String) -> [StarterTemplate] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.sorted().compactMap { name in
      let dir = (directory as NSString).appendingPathComponent(name)
      guard fileKind(dir + "/" + name + ".conf") == (true, false) else { return nil }
      let description =
        (try? String(
          contentsOfFile: dir + "/" + StarterTemplate.descriptionFile, encoding: .utf8))
      let summary = description?.split(separator: "\n").first.map(String.init) ?? ""
      return StarterTemplate(name: name, summary: summary, directory: dir)
    }
  }
}

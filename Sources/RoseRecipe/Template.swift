import Foundation
import Mustache

/// Renders per-slot configuration files with Mustache, so one template yields an fstab or a
/// slot marker for each A/B slot; errors name the template file and position like recipe errors.
public struct TemplateRenderer: Sendable {
  public init() {}

  /// Config files are not HTML: variables are inserted verbatim.
  static let pragma = "{{% CONTENT_TYPE: TEXT }}"

  /// Parses the template (so that syntax errors surface at load time) without rendering it.
  public func parse(templatePath: String) throws -> MustacheTemplate {
    guard let data = FileManager.default.contents(atPath: templatePath),
      let text = String(data: data, encoding: .utf8)
    else {
      throw RecipeError(
        file: templatePath, line: 0, column: 0, message: "cannot read template")
    }
    return try parse(text: text, name: templatePath)
  }

  /// Parses template text; `name` is used in error positions.
  public func parse(text: String, name: String) throws -> MustacheTemplate {
    do {
      return try MustacheTemplate(string: Self.pragma + text)
    } catch let error as MustacheTemplate.ParserError {
      let line = error.context.lineNumber
      var column = error.context.columnNumber
      if line == 1 { column = max(1, column - Self.pragma.count) }
      throw RecipeError(
        file: name, line: line, column: column,
        message: "template syntax error: \(Self.describe(error.error))",
        hint: "line: \(error.context.line)")
    } catch {
      throw RecipeError(
        file: name, line: 1, column: 1, message: "template syntax error: \(error)")
    }
  }

  /// Renders the template at `templatePath` with `variables`. A missing variable is an error;
  /// `{{#name}}…{{/name}}` on a missing or empty name renders nothing (a conditional).
  public func render(templatePath: String, variables: [String: String]) throws -> String {
    switch readText(templatePath) {
    case .success(let text):
      return try render(text: text, name: templatePath, variables: variables)
    case .failure(let reason):
      throw RecipeError(
        file: templatePath, line: 0, column: 0, message: "cannot read template: \(reason.text)")
    }
  }

  /// Renders template text directly (tests, starter previews). A variable the template uses
  /// and nobody defined is an error at its line and column, not empty text.
  public func render(text: String, name: String, variables: [String: String]) throws -> String {
    let template = try parse(text: text, name: name)
    if let missing = Self.undefinedNames(in: text, defined: variables).first {
      throw RecipeError(
        file: name, line: missing.line, column: missing.column,
        message: "undefined template variable {{\(missing.name)}}",
        hint: "defined: " + variables.keys.sorted().joined(separator: ", "))
    }
    return template.render(Self.context(variables))
  }

  /// Names used by `{{name}}`, `{{{name}}}`, `{{&name}}`, `{{#name}}` and `{{^name}}` tags that
  /// are not in `defined`, with their 1-based line and column.
  static func undefinedNames(in text: String, defined: [String: String]) -> [(
    name: String, line: Int, column: Int
  )] {
    var result: [(String, Int, Int)] = []
    var sections: [(name: String, skipped: Bool)] = []
    let chars = Array(text)
    var line = 1
    var column = 1
    var i = 0
    while i < chars.count {
      if chars[i] == "{" && i + 1 < chars.count && chars[i + 1] == "{" {
        let tagLine = line
        let tagColumn = column
        var j = i + 2
        while j + 1 < chars.count && !(chars[j] == "}" && chars[j + 1] == "}") { j += 1 }
        var body = String(chars[(i + 2)..<min(j, chars.count)])
        if body.hasPrefix("{") { body.removeFirst() }
        let sigil = body.first
        let name = String(body.drop(while: { "#^&/!>=%".contains($0) }))
          .trimmingCharacters(in: .whitespaces)
        let skipping = sections.contains { $0.skipped }
        if sigil == "#" || sigil == "^" {
          // `{{#name}}` on an undefined name renders nothing: what is inside is not checked;
          // `{{^name}}` renders its inside exactly when the name is undefined.
          sections.append((name, sigil == "#" && defined[name] == nil))
        } else if sigil == "/" {
          if let index = sections.lastIndex(where: { $0.name == name }) {
            sections.removeSubrange(index...)
          }
        } else if let sigil, "!>=%".contains(sigil) {
          // comments, partials, delimiters, pragmas
        } else if !skipping && !name.isEmpty && name != "." && defined[name] == nil {
          result.append((name, tagLine, tagColumn))
        }
        let end = min(j + 2, chars.count)
        while i < end {
          if chars[i] == "\n" {
            line += 1
            column = 1
          } else {
            column += 1
          }
          i += 1
        }
        continue
      }
      if chars[i] == "\n" {
        line += 1
        column = 1
      } else {
        column += 1
      }
      i += 1
    }
    return result
  }

  static func context(_ variables: [String: String]) -> [String: Any] {
    var context: [String: Any] = [:]
    for (key, value) in variables {
      context[key] = value.isEmpty ? false : value
    }
    return context
  }

  static func describe(_ error: Error) -> String {
    guard let error = error as? MustacheTemplate.Error else { return "\(error)" }
    switch error {
    case .sectionCloseNameIncorrect: return "section closed with the wrong name"
    case .unfinishedName: return "unfinished tag"
    case .expectedSectionEnd: return "section is not closed"
    case .invalidSetDelimiter: return "invalid set-delimiter tag"
    case .transformAppliedToInheritanceSection: return "transform applied to inheritance section"
    case .illegalTokenInsideInheritSection: return "illegal token inside inherit section"
    case .textInsideInheritSection: return "text inside inherit section"
    case .invalidConfigVariableSyntax: return "invalid pragma"
    case .unrecognisedConfigVariable: return "unrecognised pragma"
    @unknown default: return "\(error)"
    }
  }
}

/// The variables every template sees, built in one place so the CLI and the docs agree.
public enum TemplateVariables {
  /// Everything from the recipe and `--define`, plus the built-ins, for one partition and slot.
  /// For partitions without A/B subvolumes `slot` is `a`.
  public static func make(recipe: Recipe, partition: PartitionSpec, slot: SlotSelector)
    -> [String: String]
  {
    var variables = recipe.image.defines
    let slotName = slot == .b ? "b" : "a"
    variables["IMAGE_NAME"] = recipe.image.name
    variables["IMAGE_VERSION"] = recipe.image.version
    variables["SOURCE_DATE_EPOCH"] = String(recipe.image.sourceDateEpoch)
    variables["ARCHITECTURE"] = recipe.image.architecture.rawValue
    variables["image_name"] = recipe.image.name
    variables["image_version"] = recipe.image.version
    variables["architecture"] = recipe.image.architecture.rawValue
    variables["source_date_epoch"] = String(recipe.image.sourceDateEpoch)
    variables["partition_label"] = partition.label
    variables["partition_type"] = partition.type.name ?? partition.type.guid.uuidString
    variables["slot"] = slotName
    variables["other_slot"] = slotName == "a" ? "b" : "a"
    variables["slot_a"] = slotName == "a" ? "true" : ""
    variables["slot_b"] = slotName == "b" ? "true" : ""
    let index = slotName == "a" ? 0 : 1
    variables["subvolume"] =
      index < partition.subvolumes.count ? partition.subvolumes[index] : ""
    variables["default_subvolume"] = partition.defaultSubvolume ?? ""
    for (position, other) in recipe.partitions.enumerated() {
      variables["partition_\(position + 1)_label"] = other.label
    }
    return variables
  }

  /// Names and meanings, for the documentation.
  static let documented: [(String, String)] = [
    ("slot", "`a` or `b` (`a` for partitions without two subvolumes)"),
    ("other_slot", "the other slot"),
    ("slot_a, slot_b", "true in the matching slot, for `{{#slot_a}}…{{/slot_a}}`"),
    ("subvolume", "the subvolume name of this slot"),
    ("default_subvolume", "`DefaultSlot=`"),
    ("image_name, image_version", "`Name=`, `Version=`"),
    ("architecture, source_date_epoch", "`Architecture=`, the resolved epoch"),
    ("partition_label, partition_type", "this partition's `Label=` and `Type=`"),
    ("partition_N_label", "label of the N-th partition (1-based), e.g. for an fstab"),
    ("every %{NAME} variable", "`Define=`/`--define` values and the built-ins, same names"),
  ]
}

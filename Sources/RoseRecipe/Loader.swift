import Foundation
import RoseDisk
import RoseSizes

/// Turns a recipe file (plus its includes, drop-ins, `--define`s and environment) into a
/// validated `Recipe`, or throws every problem at once as `RecipeErrors`.
public struct RecipeLoader: Sendable {
  /// - Parameters:
  ///   - path: the recipe file (`NAME.conf`); drop-ins are read from `NAME.conf.d/*.conf`.
  ///   - defines: `--define NAME=VALUE` pairs; they win over `Define=` in the recipe.
  ///   - environment: only `SOURCE_DATE_EPOCH` is read; it wins over `SourceDateEpoch=`.
  ///   - root: `--root DIR`: where absolute `CopyFiles=` sources are (as in systemd-repart).
  public static func load(
    path: String, defines: [String: String] = [:], environment: [String: String] = [:],
    root: String? = nil
  ) throws -> Recipe {
    var absolute = path
    if !absolute.hasPrefix("/") {
      absolute = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
    }
    var state = LoadState(mainPath: (absolute as NSString).standardizingPath)
    state.root = root
    let recipe = state.run(defines: defines, environment: environment)
    if !state.diagnostics.errors.isEmpty || recipe == nil {
      throw RecipeErrors(state.diagnostics.errors)
    }
    guard let recipe else { throw RecipeErrors(state.diagnostics.errors) }
    return recipe
  }
}

let builtinVariables = ["IMAGE_NAME", "IMAGE_VERSION", "SOURCE_DATE_EPOCH", "ARCHITECTURE"]

struct Group {
  var kind: SectionKind
  var header: SourcePosition
  var entries: [Entry] = []
  var mergedInto: Int?
}

struct LoadState {
  let mainPath: String
  var diagnostics = Diagnostics()
  var groups: [Group] = []
  var singletons: [SectionKind: Int] = [:]
  var filesRead: [String] = []
  var root: String?
  /// True when an epoch was given (environment or `SourceDateEpoch=`): only then are input
  /// times clamped.
  var epochGiven = false

  init(mainPath: String) {
    self.mainPath = mainPath
  }

  // MARK: Reading files

  mutating func run(defines: [String: String], environment: [String: String]) -> Recipe? {
    readFile(mainPath, current: nil, stack: [], includedFrom: nil)
    guard filesRead.contains(mainPath) else { return nil }
    let dropInDirectory = mainPath + ".d"
    if let names = try? FileManager.default.contentsOfDirectory(atPath: dropInDirectory) {
      for name in names.sorted() where name.hasSuffix(".conf") {
        readFile(
          (dropInDirectory as NSString).appendingPathComponent(name), current: nil, stack: [],
          includedFrom: nil)
      }
    }
    validateKeys()
    mergeExtends()
    let variables = resolveVariables(cliDefines: defines, environment: environment)
    typeCheck(architecture: variables.architecture)
    return build(
      userDefines: variables.userDefines, sourceDateEpoch: variables.sourceDateEpoch,
      architecture: variables.architecture)
  }

  mutating func readFile(
    _ path: String, current: Int?, stack: [String], includedFrom: SourcePosition?
  ) {
    let path = (path as NSString).standardizingPath
    if stack.contains(path) || (includedFrom != nil && path == mainPath) {
      let chain = (stack + [path]).map { ($0 as NSString).lastPathComponent }
      diagnostics.error(
        includedFrom ?? SourcePosition(file: path, line: 0, column: 0),
        "include cycle: " + chain.joined(separator: " -> "))
      return
    }
    let text: String
    switch readText(path) {
    case .success(let contents):
      text = contents
    case .failure(let reason):
      if let includedFrom {
        diagnostics.error(includedFrom, "cannot read included file \(path): \(reason.text)")
      } else {
        diagnostics.error(
          SourcePosition(file: path, line: 0, column: 0), "cannot read recipe file: \(reason.text)")
      }
      return
    }
    filesRead.append(path)
    let directory = (path as NSString).deletingLastPathComponent
    var currentGroup = current
    var headersInFile: [SectionKind: Int] = [:]
    for line in INIParser.parse(text: text, file: path, diagnostics: &diagnostics) {
      switch line {
      case .section(let name, let at):
        guard let kind = SectionKind(rawValue: name), kind != .any else {
          let known = ["Image", "Partition", "Output"]
          let hint = closestMatch(name, in: known).map { "did you mean [\($0)]?" }
          diagnostics.error(
            at.shifted(by: 1), "unknown section [\(name)]",
            hint: hint ?? "sections are [Image], [Partition] and [Output]")
          currentGroup = -1
          continue
        }
        if kind == .partition {
          groups.append(Group(kind: kind, header: at))
          currentGroup = groups.count - 1
          continue
        }
        if let first = headersInFile[kind] {
          diagnostics.error(
            at, "duplicate section [\(name)]",
            hint: "[\(name)] was already opened at line \(first) of this file")
        } else {
          headersInFile[kind] = at.line
        }
        if let index = singletons[kind] {
          currentGroup = index
        } else {
          groups.append(Group(kind: kind, header: at))
          singletons[kind] = groups.count - 1
          currentGroup = groups.count - 1
        }
      case .entry(let key, let value, let keyAt, let valueAt):
        if key == "Include" {
          if value.isEmpty {
            diagnostics.error(valueAt, "Include= needs a file name")
          } else {
            readFile(
              joinPath(directory, value), current: currentGroup, stack: stack + [path],
              includedFrom: valueAt)
          }
          continue
        }
        guard let group = currentGroup else {
          diagnostics.error(
            keyAt, "\(key)= is outside any section",
            hint: "add [Image], [Partition] or [Output] above it")
          continue
        }
        if group < 0 { continue }
        groups[group].entries.append(
          Entry(key: key, raw: value, keyAt: keyAt, valueAt: valueAt, directory: directory))
      }
    }
  }

  // MARK: Keys

  mutating func validateKeys() {
    for index in groups.indices {
      let kind = groups[index].kind
      var accepted: [Entry] = []
      for entry in groups[index].entries {
        guard let spec = keySpec(section: kind, name: entry.key) else {
          reportUnknownKey(entry, in: kind)
          continue
        }
        var entry = entry
        entry.spec = spec
        if !spec.repeatable {
          if let previous = accepted.firstIndex(where: { $0.key == entry.key }) {
            if accepted[previous].keyAt.file == entry.keyAt.file {
              // systemd reads unit files this way: the last assignment wins.
              diagnostics.warning(
                entry.keyAt,
                "\(entry.key)= repeats line \(accepted[previous].keyAt.line); the last value wins")
            }
            accepted.remove(at: previous)
          }
          // An empty assignment resets the key to its default, as in systemd.
          if entry.raw.isEmpty { continue }
        }
        accepted.append(entry)
      }
      groups[index].entries = accepted
    }
  }

  mutating func reportUnknownKey(_ entry: Entry, in kind: SectionKind) {
    let candidates = recipeKeys.filter { $0.section == kind || $0.section == .any }.map(\.name)
    var hint: String?
    if entry.key == "Subvolumes" || entry.key == "DefaultSubvolume" {
      hint =
        "repart's \(entry.key)= is about btrfs subvolumes, which rosepack does not write; RoseFS "
        + "A/B slots are Slots= and DefaultSlot="
    } else if let other = recipeKeys.first(where: { $0.name == entry.key }) {
      // An exact key of another section says more than a near one here (CompressLevel= is
      // [Output]'s, though CompressionLevel= is one letter group away).
      hint = "\(entry.key)= belongs in [\(other.section.rawValue)]"
    } else if let match = closestMatch(entry.key, in: candidates) {
      hint = "did you mean \(match)=?"
    }
    diagnostics.error(
      entry.keyAt, "unknown key \(entry.key)= in [\(kind.rawValue)]", hint: hint)
  }

  /// Folds `[Partition] Extend=LABEL` sections into the partition they name.
  mutating func mergeExtends() {
    var labels: [(label: String, index: Int)] = []
    for index in groups.indices where groups[index].kind == .partition {
      let entries = groups[index].entries
      guard let extend = entries.first(where: { $0.key == "Extend" }) else {
        let label =
          entries.last(where: { $0.key == "Label" })?.raw
          ?? entries.last(where: { $0.key == "Type" })?.raw.lowercased() ?? ""
        labels.append((label, index))
        continue
      }
      guard let target = labels.last(where: { $0.label == extend.raw }) else {
        diagnostics.error(
          extend.valueAt, "Extend=\(extend.raw) names no earlier partition",
          hint: labels.isEmpty
            ? "Extend= must come after the partition it extends"
            : "labels so far: " + labels.map(\.label).joined(separator: ", "))
        groups[index].mergedInto = -1
        continue
      }
      for entry in entries where entry.key != "Extend" {
        if let spec = entry.spec, !spec.repeatable {
          groups[target.index].entries.removeAll { $0.key == entry.key }
        }
        groups[target.index].entries.append(entry)
      }
      groups[index].mergedInto = target.index
    }
  }

  // MARK: Variables

  struct Variables {
    var userDefines: [String: String]
    var sourceDateEpoch: Int64
    var architecture: Architecture
  }

  mutating func resolveVariables(cliDefines: [String: String], environment: [String: String])
    -> Variables
  {
    var variables: [String: String] = [:]
    let imageIndex = singletons[.image]
    for entry in imageIndex.map({ groups[$0].entries }) ?? [] where entry.key == "Define" {
      let parts = splitFields(entry.raw, on: "=", limit: 2)
      guard parts.count == 2 else {
        diagnostics.error(
          entry.valueAt, "Define= expects NAME=VALUE", hint: "e.g. Define=VARIANT=debug")
        continue
      }
      let name = parts[0].field
      if !isValidVariableName(name) {
        diagnostics.error(
          entry.valueAt, "invalid variable name '\(name)'",
          hint: "names are letters, digits and _, not starting with a digit")
      } else if builtinVariables.contains(name) {
        diagnostics.error(
          entry.valueAt, "cannot redefine built-in variable \(name)",
          hint: "set Name=, Version=, Architecture= or SourceDateEpoch= instead")
      } else {
        variables[name] = parts[1].field
      }
    }
    for (name, value) in cliDefines.sorted(by: { $0.key < $1.key }) {
      let at = SourcePosition(file: "--define \(name)", line: 0, column: 0)
      if !isValidVariableName(name) {
        diagnostics.error(at, "invalid variable name '\(name)'")
      } else if builtinVariables.contains(name) {
        diagnostics.error(
          at, "cannot redefine built-in variable \(name)",
          hint: "set it in the recipe's [Image] section instead")
      } else {
        variables[name] = value
      }
    }

    // Name=, Version=, Architecture= and SourceDateEpoch= may use user variables only;
    // everything else may also use the built-ins they define.
    let early: Set<String> = ["Name", "Version", "SourceDateEpoch", "Architecture"]
    if let imageIndex {
      for i in groups[imageIndex].entries.indices
      where early.contains(groups[imageIndex].entries[i].key) {
        var entry = groups[imageIndex].entries[i]
        expand(&entry, variables: variables)
        groups[imageIndex].entries[i] = entry
      }
    }
    let image = imageIndex.map { groups[$0].entries } ?? []
    let name = image.last(where: { $0.key == "Name" })?.value ?? defaultImageName
    let version = image.last(where: { $0.key == "Version" })?.value ?? "0"
    var architecture = Architecture.x8664
    if let entry = image.last(where: { $0.key == "Architecture" }) {
      architecture = Architecture(rawValue: entry.value) ?? .x8664
    }
    var epoch: Int64 = 0
    if let text = environment["SOURCE_DATE_EPOCH"] {
      if let value = Int64(text), value >= 0 {
        epoch = value
        epochGiven = true
      } else {
        diagnostics.error(
          SourcePosition(file: "SOURCE_DATE_EPOCH (environment)", line: 0, column: 0),
          "invalid SOURCE_DATE_EPOCH '\(text)'", hint: "seconds since 1970, e.g. 1700000000")
      }
    } else if let entry = image.last(where: { $0.key == "SourceDateEpoch" }),
      let value = Int64(entry.value), value >= 0
    {
      epoch = value
      epochGiven = true
    }
    var all = variables
    all["IMAGE_NAME"] = name
    all["IMAGE_VERSION"] = version
    all["SOURCE_DATE_EPOCH"] = String(epoch)
    all["ARCHITECTURE"] = architecture.rawValue
    for g in groups.indices {
      for i in groups[g].entries.indices {
        let entry = groups[g].entries[i]
        if entry.key == "Define" {
          groups[g].entries[i].value = entry.raw
          groups[g].entries[i].columns = entry.raw.indices.map { _ in entry.valueAt.column }
          continue
        }
        if g == imageIndex && early.contains(entry.key) { continue }
        var copy = entry
        expand(&copy, variables: all)
        groups[g].entries[i] = copy
      }
    }
    return Variables(userDefines: variables, sourceDateEpoch: epoch, architecture: architecture)
  }

  var defaultImageName: String {
    let base = (mainPath as NSString).lastPathComponent
    return base.hasSuffix(".conf") ? String(base.dropLast(5)) : base
  }

  /// Replaces `%{NAME}` and `%%`; on error, reports it and marks the entry failed.
  mutating func expand(_ entry: inout Entry, variables: [String: String]) {
    let chars = Array(entry.raw)
    var out = ""
    var columns: [Int] = []
    var i = 0
    while i < chars.count {
      let column = entry.valueAt.column + i
      let at = SourcePosition(file: entry.valueAt.file, line: entry.valueAt.line, column: column)
      guard chars[i] == "%" else {
        out.append(chars[i])
        columns.append(column)
        i += 1
        continue
      }
      let next: Character? = i + 1 < chars.count ? chars[i + 1] : nil
      if next == "%" {
        out.append("%")
        columns.append(column)
        i += 2
        continue
      }
      guard next == "{" else {
        diagnostics.error(
          at, "invalid specifier '%\(next.map(String.init) ?? "")' in \(entry.key)=",
          hint: "variables are written %{NAME}; write %% for a literal %")
        entry.failed = true
        return
      }
      guard let close = chars[(i + 2)...].firstIndex(of: "}") else {
        diagnostics.error(
          at, "unterminated %{ in \(entry.key)=", hint: "write %{NAME}, or %% for a literal %")
        entry.failed = true
        return
      }
      let name = String(chars[(i + 2)..<close])
      guard let value = variables[name] else {
        diagnostics.error(
          at, "undefined variable %{\(name)}",
          hint: "defined: " + variables.keys.sorted().joined(separator: ", "))
        entry.failed = true
        return
      }
      out += value
      columns += value.map { _ in column }
      i = close + 1
    }
    entry.value = out
    entry.columns = columns
  }

  // MARK: Generic type check

  mutating func typeCheck(architecture: Architecture) {
    for g in groups.indices {
      for i in groups[g].entries.indices where !groups[g].entries[i].failed {
        guard let spec = groups[g].entries[i].spec else { continue }
        let entry = groups[g].entries[i]
        if let typed = check(entry, spec: spec, architecture: architecture) {
          groups[g].entries[i].typed = typed
        } else {
          groups[g].entries[i].failed = true
        }
      }
    }
  }

  mutating func check(_ entry: Entry, spec: KeySpec, architecture: Architecture) -> TypedValue? {
    let value = entry.value
    let at = entry.valueAt
    switch spec.type {
    case .string, .path, .syntax:
      return .text(value)
    case .list:
      return .words(splitWords(value))
    case .bool:
      if let b = parseBool(value) { return .bool(b) }
      diagnostics.error(
        at, "invalid boolean '\(value)' for \(spec.name)=", hint: "use yes or no")
    case .size, .sizeOrAuto:
      if case .sizeOrAuto = spec.type, value == "auto" { return .auto }
      if let size = parseSize(value) {
        if size >= 1 << 60 {
          diagnostics.error(
            at, "\(spec.name)=\(value) is too large",
            hint: "sizes must be below 1 EiB (2^60 bytes); disk offsets must stay far from 2^63"
          )
          return nil
        }
        return .size(size)
      }
      var hint = sizeHint(for: value)
      if case .sizeOrAuto = spec.type, hint == sizeSyntaxHint { hint += ", or auto" }
      diagnostics.error(at, "invalid size '\(value)' for \(spec.name)=", hint: hint)
    case .int(let low, let high):
      guard let number = Int64(value) else {
        diagnostics.error(
          at, "invalid integer '\(value)' for \(spec.name)=", hint: "between \(low) and \(high)")
        return nil
      }
      if number < low || number > high {
        diagnostics.error(
          at, "\(spec.name)=\(value) is out of range", hint: "between \(low) and \(high)")
        return nil
      }
      return .int(number)
    case .enumeration(let allowed):
      if allowed.contains(value) { return .text(value) }
      var hint = "allowed values: " + allowed.joined(separator: ", ")
      if let match = closestMatch(value, in: allowed) { hint = "did you mean \(match)? " + hint }
      diagnostics.error(at, "invalid value '\(value)' for \(spec.name)=", hint: hint)
    case .uuid:
      // As systemd's sd_id128_from_string: with or without dashes; `null` is the all-zero UUID.
      let guid = value == "null" ? GUID.zero : GUID.parseID128(value)
      if let guid, let uuid = UUID(uuidString: guid.description) { return .uuid(uuid) }
      diagnostics.error(
        at, "invalid UUID '\(value)' for \(spec.name)=",
        hint: "32 hex digits with or without dashes (8a6c3e3c-5a5b-4a4e-9c62-1f0a5c2d7e11), or null"
      )
    case .partitionType:
      if resolvePartitionType(value, architecture: architecture) != nil { return .text(value) }
      diagnostics.error(at, "unknown partition type '\(value)'", hint: typeHint(value))
    }
    return nil
  }
}

struct ReadFailure: Error {
  var text: String
}

/// A text file's contents, or why it cannot be read (the errno text, a directory, not UTF-8).
func readText(_ path: String) -> Result<String, ReadFailure> {
  let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
  guard fd >= 0 else { return .failure(ReadFailure(text: String(cString: strerror(errno)))) }
  defer { close(fd) }
  var st = stat()
  guard fstat(fd, &st) == 0 else {
    return .failure(ReadFailure(text: String(cString: strerror(errno))))
  }
  guard (st.st_mode & S_IFMT) == S_IFREG else {
    let kind = (st.st_mode & S_IFMT) == S_IFDIR ? "is a directory" : "is not a regular file"
    return .failure(ReadFailure(text: kind))
  }
  var data = Data()
  var buffer = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    if n < 0 {
      if errno == EINTR { continue }
      return .failure(ReadFailure(text: String(cString: strerror(errno))))
    }
    if n == 0 { break }
    data.append(contentsOf: buffer[0..<n])
  }
  guard let text = String(data: data, encoding: .utf8) else {
    return .failure(ReadFailure(text: "not UTF-8 text"))
  }
  return .success(text)
}

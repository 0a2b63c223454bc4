import Foundation
import RoseDisk

/// The content layers of a `[Partition]` section, in file order, and the host and image paths
/// they name.
extension LoadState {
  mutating func buildLayers(
    _ section: PartitionKeys, format: PartitionFormat, isAB: Bool,
    label: String
  ) -> [SlottedLayer] {
    var layers: [SlottedLayer] = []
    var slot = SlotSelector.both
    for entry in section.layers.all where !entry.failed {
      if entry.key == "Slot" {
        slot = entry.typed?.text.flatMap(SlotSelector.init(rawValue:)) ?? .both
        if slot != .both && !isAB {
          diagnostics.error(
            entry.valueAt, "Slot=\(entry.value) needs two Slots=",
            hint: "e.g. Slots=a b")
        }
        continue
      }
      switch format {
      case .rosefs: break
      case .swap:
        diagnostics.error(
          entry.keyAt, "\(entry.key)= is not allowed with Format=swap",
          hint: "a swap area holds no files; remove the content keys of partition '\(label)'")
        continue
      case let other where other.isForeignFileSystem: break
      default:
        diagnostics.error(
          entry.keyAt, "\(entry.key)= needs a Format= that holds files (rosefs, vfat, ext4, ...)",
          hint: "partition '\(label)' has Format=\(format.rawValue)")
        continue
      }
      if let layer = parseLayer(entry) {
        layers.append(SlottedLayer(slot: slot, layer: layer))
      }
    }
    return layers
  }

  enum Want { case file, directory, any }

  /// Resolves and checks a host path; reports and returns nil when it is missing.
  mutating func checkHostPath(_ entry: Entry, text: String, offset: Int, want: Want) -> String? {
    let at = entry.position(at: offset)
    guard !text.isEmpty else {
      diagnostics.error(at, "\(entry.key)= needs a host path")
      return nil
    }
    let path = joinPath(entry.directory, text)
    let kind = fileKind(path)
    if !kind.exists {
      diagnostics.error(
        at, "file not found: \(path)",
        hint: "relative paths are resolved against \(entry.directory)")
      return nil
    }
    if want == .file && kind.isDirectory {
      diagnostics.error(at, "\(path) is a directory, \(entry.key)= needs a file")
      return nil
    }
    if want == .directory && !kind.isDirectory {
      diagnostics.error(at, "\(path) is not a directory", hint: "use File= for single files")
      return nil
    }
    return path
  }

  /// Checks an absolute image path and normalises trailing slashes.
  mutating func imagePath(_ entry: Entry, _ text: String, offset: Int) -> String? {
    guard text.hasPrefix("/") else {
      diagnostics.error(
        entry.position(at: offset), "image path '\(text)' must be absolute",
        hint: text.isEmpty ? nil : "write /\(text)")
      return nil
    }
    var path = text
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    return path
  }

  mutating func parseLayer(_ entry: Entry) -> ContentLayer? {
    let at = entry.keyAt
    let value = entry.value
    switch entry.key {
    case "Tarball", "Directory", "CopyFiles":
      let parts = splitFields(value, on: ":", limit: 2)
      let want: Want = entry.key == "Tarball" ? .file : .any
      let source: String?
      var defaultDestination = "/"
      if entry.key == "CopyFiles" && parts[0].field.hasPrefix("/") {
        // As repart: an absolute source is under --root, and the target defaults to it.
        defaultDestination = parts[0].field
        guard let root else {
          diagnostics.error(
            entry.valueAt, "CopyFiles=\(parts[0].field) needs --root",
            hint: "absolute sources are under `rosepack build --root DIR`, as in repart (give "
              + "--root / for this machine's files); a relative source is relative to the recipe")
          return nil
        }
        source = checkHostPath(
          entry, text: ((root as NSString).standardizingPath + "/" + parts[0].field), offset: 0,
          want: want)
      } else {
        source = checkHostPath(entry, text: parts[0].field, offset: 0, want: want)
      }
      let destination =
        parts.count > 1
        ? imagePath(entry, parts[1].field, offset: parts[1].offset) : defaultDestination
      guard let source, let destination else { return nil }
      if entry.key == "Tarball" {
        return .tarball(source: source, destination: destination, at: at)
      }
      return .directory(source: source, destination: destination, at: at)
    case "File":
      let parts = splitFields(value, on: ":", limit: 3)
      guard parts.count >= 2 else {
        diagnostics.error(
          entry.valueAt, "File= expects HOSTFILE:DEST[:MODE]", hint: "e.g. File=motd:/etc/motd")
        return nil
      }
      let source = checkHostPath(entry, text: parts[0].field, offset: 0, want: .file)
      let destination = imagePath(entry, parts[1].field, offset: parts[1].offset)
      var mode: UInt16?
      if parts.count == 3 {
        mode = parseOctalMode(parts[2].field)
        if mode == nil {
          diagnostics.error(
            entry.position(at: parts[2].offset), "invalid mode '\(parts[2].field)'",
            hint: "an octal mode such as 0644")
          return nil
        }
      }
      guard let source, let destination else { return nil }
      return .file(source: source, destination: destination, mode: mode, at: at)
    case "Inline":
      let parts = splitFields(value, on: ":", limit: 2)
      guard parts.count == 2 else {
        diagnostics.error(
          entry.valueAt, "Inline= expects DEST:TEXT", hint: "e.g. Inline=/etc/hostname:rose\\n")
        return nil
      }
      guard let destination = imagePath(entry, parts[0].field, offset: 0),
        let text = unescape(entry, parts[1].field, offset: parts[1].offset)
      else { return nil }
      return .inline(destination: destination, text: text, at: at)
    case "Template":
      let parts = splitFields(value, on: ":", limit: 2)
      guard parts.count == 2 else {
        diagnostics.error(
          entry.valueAt, "Template= expects TEMPLATE:DEST",
          hint: "e.g. Template=fstab.mustache:/etc/fstab")
        return nil
      }
      var name = parts[0].field
      if !name.isEmpty && !name.contains("/") { name = "Templates/" + name }
      let source = checkHostPath(entry, text: name, offset: 0, want: .file)
      let destination = imagePath(entry, parts[1].field, offset: parts[1].offset)
      guard let source, let destination else { return nil }
      filesRead.append(source)
      do {
        _ = try TemplateRenderer().parse(templatePath: source)
      } catch let error as RecipeError {
        diagnostics.errors.append(error)
        return nil
      } catch {
        diagnostics.error(entry.position(at: 0), "cannot read template \(source): \(error)")
        return nil
      }
      return .template(source: source, destination: destination, at: at)
    case "Symlink":
      let parts = splitFields(value, on: ":", limit: 2)
      guard parts.count == 2, !parts[1].field.isEmpty else {
        diagnostics.error(
          entry.valueAt, "Symlink= expects DEST:TARGET",
          hint: "e.g. Symlink=/etc/localtime:../usr/share/zoneinfo/UTC")
        return nil
      }
      guard let path = imagePath(entry, parts[0].field, offset: 0) else { return nil }
      return .symlink(path: path, target: parts[1].field, at: at)
    case "MakeDirectories":
      let words = splitWords(value)
      guard !words.isEmpty else {
        diagnostics.error(entry.valueAt, "MakeDirectories= needs at least one path")
        return nil
      }
      var paths: [String] = []
      for word in words {
        guard let path = imagePath(entry, word.word, offset: word.offset) else { return nil }
        paths.append(path)
      }
      return .makeDirectories(paths: paths, at: at)
    case "Remove":
      guard value.hasPrefix("/") else {
        diagnostics.error(
          entry.valueAt, "Remove= pattern '\(value)' must be an absolute image path",
          hint: "e.g. Remove=/usr/share/doc/**")
        return nil
      }
      return .remove(glob: value, at: at)
    case "Ownership":
      guard let source = checkHostPath(entry, text: value, offset: 0, want: .file) else {
        return nil
      }
      filesRead.append(source)
      let text = (try? String(contentsOfFile: source, encoding: .utf8)) ?? ""
      let parsed = FSConfig.parse(text: text, file: source)
      diagnostics.errors += parsed.errors
      return .ownership(source: source, overrides: parsed.overrides, at: at)
    default:
      return nil
    }
  }

  mutating func unescape(_ entry: Entry, _ text: String, offset: Int) -> String? {
    var out = ""
    var escaping = false
    for (index, char) in text.enumerated() {
      if escaping {
        switch char {
        case "n": out.append("\n")
        case "t": out.append("\t")
        case "\\": out.append("\\")
        default:
          diagnostics.error(
            entry.position(at: offset + index - 1), "unknown escape '\\\(char)' in Inline=",
            hint: "escapes are \\n, \\t and \\\\")
          return nil
        }
        escaping = false
      } else if char == "\\" {
        escaping = true
      } else {
        out.append(char)
      }
    }
    if escaping {
      diagnostics.error(
        entry.position(at: offset + text.count - 1), "trailing '\\' in Inline=",
        hint: "write \\\\ for a backslash")
      return nil
    }
    return out
  }
}

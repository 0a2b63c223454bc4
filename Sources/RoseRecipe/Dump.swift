import Foundation

/// `rosepack build --dump-config`: the resolved recipe as one self-contained INI file
/// (includes, drop-ins and variables applied, defaults spelled out, host paths absolute), so
/// users see exactly what will be built and can re-run it: `load(dump(r)) == r`.
public func dumpConfig(_ recipe: Recipe) -> String {
  var out: [String] = [
    "# Resolved recipe written by rosepack: includes, drop-ins, variables and defaults applied."
  ]
  func put(_ key: String, _ value: String) { out.append("\(key)=\(escapeValue(value))") }
  let image = recipe.image
  out.append("[Image]")
  put("Name", image.name)
  put("Version", image.version)
  put("Architecture", image.architecture.rawValue)
  put("SectorSize", String(image.sectorSize))
  put("Alignment", String(image.alignment))
  switch image.diskSize {
  case .auto: put("DiskSize", "auto")
  case .fixed(let bytes): put("DiskSize", String(bytes))
  }
  put("Seed", image.seed)
  if recipe.image.clampsTimes { put("SourceDateEpoch", String(image.sourceDateEpoch)) }
  put("PartitionTable", image.partitionTable)
  for (name, value) in image.defines.sorted(by: { $0.key < $1.key }) {
    out.append("Define=\(name)=\(value)")
  }
  for partition in recipe.partitions {
    out.append("")
    out.append("[Partition]")
    put("Type", partition.type.name ?? partition.type.guid.uuidString)
    put("Label", partition.label)
    if let uuid = partition.uuid { put("UUID", uuid.uuidString.lowercased()) }
    put("Format", partition.format.rawValue)
    switch partition.size {
    case .fixed(let bytes):
      put("SizeMinBytes", String(bytes))
      put("SizeMaxBytes", String(bytes))
    case .auto(let minBytes, let maxBytes, let headroomBytes, let headroomPercent):
      put("SizeMinBytes", String(minBytes))
      if let maxBytes { put("SizeMaxBytes", String(maxBytes)) }
      put("HeadroomBytes", String(headroomBytes))
      put("HeadroomPercent", String(headroomPercent))
    case .grow(let minBytes, let maxBytes):
      put("Grow", "yes")
      put("SizeMinBytes", String(minBytes))
      if let maxBytes { put("SizeMaxBytes", String(maxBytes)) }
    }
    if let offset = partition.offset { put("Offset", String(offset)) }
    put("PaddingMinBytes", String(partition.paddingMinBytes))
    if let paddingMax = partition.repartSizing?.paddingMax {
      put("PaddingMaxBytes", String(paddingMax))
    }
    put("PaddingWeight", String(partition.repartSizing?.paddingWeight ?? 0))
    put("Flags", "0x" + String(partition.flags, radix: 16))
    put("ReadOnly", partition.readOnly ? "yes" : "no")
    put("NoAuto", partition.noAuto ? "yes" : "no")
    put("GrowFileSystem", partition.growFileSystem ? "yes" : "no")
    put("Weight", String(partition.weight))
    put("Minimize", partition.minimize.rawValue)
    put("SplitName", partition.splitName)
    if let copyBlocks = partition.copyBlocks { put("CopyBlocks", copyBlocks) }
    if !partition.subvolumes.isEmpty {
      put("Slots", partition.subvolumes.joined(separator: " "))
    }
    if let name = partition.defaultSubvolume { put("DefaultSlot", name) }
    if partition.isAB { put("SlotB", partition.slotB.rawValue) }
    var slot = SlotSelector.both
    for slotted in partition.layers {
      if slotted.slot != slot {
        slot = slotted.slot
        put("Slot", slot.rawValue)
      }
      let (key, value) = dumpLayer(slotted.layer)
      put(key, value)
    }
  }
  let output = recipe.output
  out.append("")
  out.append("[Output]")
  put("Formats", output.kinds.map(\.rawValue).joined(separator: " "))
  put("CompressLevel", String(output.zstdLevel))
  put("SparseCrc", output.sparseCRC ? "yes" : "no")
  put("SparseBlockSize", String(output.sparseBlockSize))
  put("BaseName", output.baseName)
  return out.joined(separator: "\n") + "\n"
}

func dumpLayer(_ layer: ContentLayer) -> (String, String) {
  switch layer {
  case .tarball(let source, let destination, _):
    return ("Tarball", "\(source):\(destination)")
  case .directory(let source, let destination, _):
    // Directory= takes absolute host paths as they are (CopyFiles= would read them under --root).
    return ("Directory", "\(source):\(destination)")
  case .file(let source, let destination, let mode, _):
    let suffix = mode.map { ":0" + String($0, radix: 8) } ?? ""
    return ("File", "\(source):\(destination)\(suffix)")
  case .inline(let destination, let text, _):
    var escaped = ""
    for char in text {
      switch char {
      case "\n": escaped += "\\n"
      case "\t": escaped += "\\t"
      case "\\": escaped += "\\\\"
      default: escaped.append(char)
      }
    }
    return ("Inline", "\(destination):\(escaped)")
  case .template(let source, let destination, _):
    return ("Template", "\(source):\(destination)")
  case .symlink(let path, let target, _):
    return ("Symlink", "\(path):\(target)")
  case .makeDirectories(let paths, _):
    return ("MakeDirectories", paths.joined(separator: " "))
  case .remove(let glob, _):
    return ("Remove", glob)
  case .ownership(let source, _, _):
    return ("Ownership", source)
  }
}

func escapeValue(_ value: String) -> String {
  value.replacingOccurrences(of: "%", with: "%%")
}

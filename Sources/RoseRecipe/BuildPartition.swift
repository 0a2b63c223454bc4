import Foundation
import RoseDisk

/// `[Partition]` sections into `PartitionSpec`s, one function per group of keys.
extension LoadState {
  // MARK: [Partition]

  mutating func buildPartition(
    _ group: Group, image: ImageSettings, index: Int, earlier: [String]
  ) -> PartitionSpec? {
    let section = PartitionKeys(group.entries)
    let format = section.format.text.flatMap(PartitionFormat.init(rawValue:)) ?? .empty
    guard let type = partitionType(section, format: format, image: image, header: group.header)
    else { return nil }
    let label = partitionLabel(section, type: type, earlier: earlier)
    // After a bad Format= value, format-dependent checks would only add noise.
    let formatKnown = section.format.entry?.failed != true
    let (size, minBytes, maxBytes) = sizeRule(section, image: image)
    let offset = partitionOffset(section, image: image)
    let flags = partitionFlags(section)
    let copyBlocks = copyBlocksSource(
      section, format: format, formatKnown: formatKnown, label: label, header: group.header)
    let (subvolumes, defaultSubvolume) = slots(section, format: format, formatKnown: formatKnown)
    let isAB = subvolumes.count == 2
    let minimize = minimizeMode(section)
    let paddingMax = paddingMaxBytes(section)
    if let entry = section.slotB.entry, !isAB {
      diagnostics.error(entry.keyAt, "SlotB= needs two Slots=")
    }

    let layers = buildLayers(
      section, format: formatKnown ? format : .rosefs, isAB: isAB, label: label)

    if format == .vfat && image.sectorSize == 4096, let entry = section.format.entry {
      diagnostics.warning(
        entry.valueAt, "vfat with 4096-byte sectors",
        hint: "the FAT is built with 4096-byte logical sectors; some firmware cannot read it")
    }

    var spec = PartitionSpec(
      label: label, type: type, uuid: section.uuid.typed?.uuid, format: format, size: size,
      offset: offset, paddingMinBytes: section.paddingMinBytes.size ?? 0, flags: flags,
      readOnly: section.readOnly.bool ?? false, noAuto: section.noAuto.bool ?? false,
      growFileSystem: section.growFileSystem.bool ?? false,
      weight: Int(section.weight.int ?? 1000),
      minimize: minimize,
      splitName: section.splitName.text, copyBlocks: copyBlocks, subvolumes: subvolumes,
      defaultSubvolume: defaultSubvolume,
      slotB: section.slotB.text.flatMap(SlotBMode.init(rawValue:)) ?? .snapshot,
      layers: layers, position: group.header)
    spec.copyBlocksPosition = section.copyBlocks.entry?.valueAt
    if formatKnown { fileSystemKeys(section, format: format, into: &spec) }
    tableKeys(section, into: &spec)
    // Who takes free space of a fixed-size disk, and by how much (RepartLayout).
    let grows =
      minimize == .off
      && (section.grow.bool == true || section.weight.isSet
        || (size != .fixed(bytes: maxBytes ?? 0) && maxBytes != nil))
    spec.repartSizing = RepartSizing(
      sizeMin: minBytes, sizeMax: maxBytes, paddingMin: section.paddingMinBytes.size ?? 0,
      paddingMax: paddingMax, weight: grows ? Int(section.weight.int ?? 1000) : 0,
      paddingWeight: Int(section.paddingWeight.int ?? 0))
    if !grows { spec.weight = 0 }
    return spec
  }

  /// `Type=`, or RoseFS's own type for a `Format=rosefs` partition without one.
  mutating func partitionType(
    _ section: PartitionKeys, format: PartitionFormat, image: ImageSettings,
    header: SourcePosition
  ) -> PartitionType? {
    if section.type.isSet {
      guard let typeText = section.type.text,
        let resolved = resolvePartitionType(typeText, architecture: image.architecture)
      else { return nil }
      return resolved
    } else if format == .rosefs {
      // RoseFS's own types: the A/B system volume, or a data volume.
      let name = (section.slots.typed?.words.count ?? 0) == 2 ? "rosefs-root" : "rosefs-data"
      guard let resolved = resolvePartitionType(name, architecture: image.architecture) else {
        return nil
      }
      return resolved
    } else {
      diagnostics.error(
        header, "[Partition] is missing required key Type=",
        hint: "e.g. Type=root, Type=esp or a GUID (only Format=rosefs has a default)")
      return nil
    }
  }

  /// `Label=`, or repart's default name for the type; checked for what GPT holds.
  mutating func partitionLabel(_ section: PartitionKeys, type: PartitionType, earlier: [String])
    -> String
  {
    // repart's default name: the type's name (or "linux" for a GUID repart does not know),
    // then -2, -3, ... while an earlier partition has it.
    var label: String
    if let explicit = section.label.text {
      label = explicit
    } else {
      let guid = (try? GUID(parsing: type.guid.uuidString)) ?? .zero
      let prefix =
        PartitionTypes.name(for: guid).map {
          $0.hasPrefix("rosefs-") ? $0 : PartitionTypes.repartLabelPrefix(for: guid)
        } ?? "linux"
      label = prefix
      var k = 1
      while earlier.contains(label) {
        k += 1
        label = "\(prefix)-\(k)"
      }
    }
    if let entry = section.label.entry, label.isEmpty || label.utf16.count > 36 {
      diagnostics.error(
        entry.valueAt, "Label= must be 1 to 36 characters long",
        hint: "GPT names hold 36 UTF-16 code units")
    } else if let entry = section.label.entry, label.contains("\t") {
      diagnostics.error(
        entry.valueAt, "Label= contains a tab", hint: "GPT names hold no control characters")
    }
    return label
  }

  /// The size rule from `SizeMinBytes=`, `SizeMaxBytes=`, `Grow=` and the headroom keys, with
  /// the minimum and maximum as given.
  mutating func sizeRule(_ section: PartitionKeys, image: ImageSettings) -> (
    SizeRule, minBytes: UInt64, maxBytes: UInt64?
  ) {
    let sector = UInt64(image.sectorSize)
    for key in [
      section.sizeMinBytes, section.sizeMaxBytes, section.paddingMinBytes, section.paddingMaxBytes,
      section.headroomBytes, section.offset,
    ] {
      if let entry = key.entry, let value = key.size, value % sector != 0 {
        diagnostics.error(
          entry.valueAt,
          "\(entry.key)=\(entry.value) is not a multiple of the sector size (\(image.sectorSize))")
      }
    }
    let minBytes = section.sizeMinBytes.size ?? 0
    let maxBytes = section.sizeMaxBytes.size
    if let maxBytes, let entry = section.sizeMaxBytes.entry, maxBytes < minBytes {
      diagnostics.error(
        entry.valueAt, "SizeMaxBytes= (\(maxBytes)) is smaller than SizeMinBytes= (\(minBytes))")
    }
    let size: SizeRule
    let headroomKeys = [section.headroomBytes.entry, section.headroomPercent.entry].compactMap {
      $0
    }
    if section.grow.bool == true {
      size = .grow(minBytes: minBytes, maxBytes: maxBytes)
      for entry in headroomKeys {
        diagnostics.error(entry.keyAt, "\(entry.key)= has no effect with Grow=yes")
      }
    } else if let maxBytes, maxBytes == minBytes {
      size = .fixed(bytes: maxBytes)
      for entry in headroomKeys {
        diagnostics.error(
          entry.keyAt, "\(entry.key)= has no effect with a fixed size",
          hint: "SizeMinBytes= equals SizeMaxBytes=")
      }
    } else {
      size = .auto(
        minBytes: minBytes, maxBytes: maxBytes,
        headroomBytes: section.headroomBytes.size ?? 0,
        headroomPercent: Int(section.headroomPercent.int ?? 0))
    }
    return (size, minBytes, maxBytes)
  }

  /// `Offset=`, nil when absent or refused.
  mutating func partitionOffset(_ section: PartitionKeys, image: ImageSettings) -> UInt64? {
    var offset = section.offset.size
    if let value = offset, let entry = section.offset.entry {
      if value % image.alignment != 0 {
        diagnostics.error(
          entry.valueAt,
          "Offset=\(entry.value) is not aligned to Alignment= (\(image.alignment) bytes)",
          hint: "lower Alignment= in [Image] if the device needs this offset")
        offset = nil
      } else if value < firstUsableByte(sectorSize: image.sectorSize) {
        diagnostics.error(
          entry.valueAt,
          "Offset=\(entry.value) is inside the GPT header area (the first usable byte is "
            + "\(firstUsableByte(sectorSize: image.sectorSize)))")
        offset = nil
      }
    }
    return offset
  }

  /// `Flags=`: the GPT attribute bits.
  mutating func partitionFlags(_ section: PartitionKeys) -> UInt64 {
    var flags: UInt64 = 0
    if let entry = section.flags.entry, !entry.failed {
      if let value = parseUnsigned(entry.value) {
        flags = value
      } else {
        diagnostics.error(
          entry.valueAt, "invalid Flags= value '\(entry.value)'",
          hint: "a 64-bit number, decimal or 0x hexadecimal")
      }
    }
    return flags
  }

  /// `CopyBlocks=`: the host file a `Format=raw` partition is copied from.
  mutating func copyBlocksSource(
    _ section: PartitionKeys, format: PartitionFormat, formatKnown: Bool, label: String,
    header: SourcePosition
  ) -> String? {
    var copyBlocks: String?
    if let entry = section.copyBlocks.entry, !entry.failed, entry.value == "auto" {
      diagnostics.error(
        entry.valueAt, "CopyBlocks=auto needs a running system",
        hint: "repart copies the partition the running system booted from; give a file to copy")
    } else if let entry = section.copyBlocks.entry, !entry.failed {
      if format != .raw && formatKnown {
        diagnostics.error(entry.keyAt, "CopyBlocks= needs Format=raw")
      }
      copyBlocks = checkHostPath(entry, text: entry.value, offset: 0, want: .file)
      // As repart (the key's origin) refuses it; a blob (InPartitionTable=no) is byte for byte
      // and takes any size.
      if format == .raw, let path = copyBlocks,
        let problem = copyBlocksSizeProblem(path, key: "CopyBlocks")
      {
        diagnostics.error(entry.valueAt, problem.message, hint: problem.hint)
      }
    } else if format == .raw && !section.copyBlocks.isSet {
      diagnostics.error(
        header, "Format=raw partition '\(label)' has no CopyBlocks=",
        hint: "add CopyBlocks=FILE with the bytes to write")
    }
    return copyBlocks
  }

  /// `Slots=` (the subvolume names) and `DefaultSlot=`.
  mutating func slots(_ section: PartitionKeys, format: PartitionFormat, formatKnown: Bool) -> (
    [String], defaultSubvolume: String?
  ) {
    var subvolumes: [String] = []
    if let entry = section.slots.entry, !entry.failed {
      let words = section.slots.typed?.words ?? []
      subvolumes = words.map(\.word)
      if format != .rosefs && formatKnown {
        diagnostics.error(entry.keyAt, "Slots= needs Format=rosefs")
      } else if words.isEmpty || words.count > 2 {
        diagnostics.error(
          entry.valueAt, "Slots= takes one or two names",
          hint: "the first is slot A, the second slot B, e.g. Slots=a b")
      } else if words.count == 2 && words[0].word == words[1].word {
        diagnostics.error(entry.position(at: words[1].offset), "duplicate subvolume name")
      }
      for word in words where word.word.contains("/") {
        diagnostics.error(
          entry.position(at: word.offset), "subvolume name '\(word.word)' contains '/'")
      }
    }
    let defaultSubvolume = section.defaultSlot.text
    if let entry = section.defaultSlot.entry, let name = defaultSubvolume,
      !subvolumes.contains(name)
    {
      diagnostics.error(
        entry.valueAt, "DefaultSlot=\(name) is not one of Slots=",
        hint: subvolumes.isEmpty
          ? "add Slots= first" : "Slots= are: " + subvolumes.joined(separator: " "))
    }
    return (subvolumes, defaultSubvolume)
  }

  /// `Minimize=`: a mode, or a boolean as repart reads it.
  mutating func minimizeMode(_ section: PartitionKeys) -> MinimizeMode {
    var minimize = MinimizeMode.off
    if let entry = section.minimize.entry, !entry.failed {
      if let mode = MinimizeMode(rawValue: entry.value) {
        minimize = mode
      } else if let b = parseBool(entry.value) {
        // repart reads a boolean as best (yes) or off (no).
        minimize = b ? .best : .off
      } else {
        diagnostics.error(
          entry.valueAt, "invalid value '\(entry.value)' for Minimize=",
          hint: "off, best, guess, or yes/no")
      }
    }
    return minimize
  }

  /// `PaddingMaxBytes=`, checked against `PaddingMinBytes=`.
  mutating func paddingMaxBytes(_ section: PartitionKeys) -> UInt64? {
    var paddingMax: UInt64?
    if let value = section.paddingMaxBytes.size {
      paddingMax = value
      if value < section.paddingMinBytes.size ?? 0, let entry = section.paddingMaxBytes.entry {
        diagnostics.error(entry.valueAt, "PaddingMaxBytes= is smaller than PaddingMinBytes=")
      }
    }
    return paddingMax
  }

  /// `MBRType=`, `Bootable=`, `Verity=`, `VerityMatchKey=` and the per-partition `Formats=`.
  mutating func tableKeys(_ section: PartitionKeys, into spec: inout PartitionSpec) {
    if let entry = section.mbrType.entry, !entry.failed {
      if let byte = parseMBRType(entry.value) {
        spec.mbrType = byte
      } else {
        diagnostics.error(
          entry.valueAt, "invalid MBRType= '\(entry.value)'",
          hint: "a type byte in hex (0x0c, 83, 0xef) or fat32, linux, esp, swap; not 0 or 0xee")
      }
    }
    spec.bootable = section.bootable.bool ?? false
    if let role = section.verity.text.flatMap(VerityRole.init(rawValue:)) {
      spec.verity = role
    }
    spec.verityMatchKey = section.verityMatchKey.text
    for entry in section.formats.all where !entry.failed {
      for word in entry.typed?.words ?? [] {
        if word.word == "simg" {
          spec.sparseImage = true
        } else {
          diagnostics.error(
            entry.position(at: word.offset),
            "unknown per-partition output format '\(word.word)'", hint: "allowed values: simg")
        }
      }
    }
  }

  /// The longest label (bytes) each format's tool accepts; nil: the format has no label.
  static func volumeLabelLimit(_ format: PartitionFormat) -> Int? {
    switch format {
    case .vfat: return 11
    case .xfs: return 12
    case .ext2, .ext3, .ext4, .swap: return 16
    case .btrfs: return 255
    case .f2fs: return 512
    case .rosefs: return 32
    default: return nil
    }
  }

  /// Compressors each tool understands (erofs-utils 1.5, squashfs-tools 4.5).
  static let compressors: [PartitionFormat: [String]] = [
    .erofs: ["lz4", "lz4hc"], .squashfs: ["gzip", "lzo", "lz4", "xz", "zstd"],
  ]

  /// `VolumeLabel=`, `Compression=`, `CompressionLevel=` and `MakeFileSystemOptions=`.
  mutating func fileSystemKeys(
    _ section: PartitionKeys, format: PartitionFormat, into spec: inout PartitionSpec
  ) {
    if let entry = section.volumeLabel.entry, let text = section.volumeLabel.text {
      if let limit = Self.volumeLabelLimit(format), format != .rosefs {
        if text.isEmpty || text.utf8.count > limit {
          diagnostics.error(
            entry.valueAt, "VolumeLabel= must be 1 to \(limit) bytes for Format=\(format.rawValue)")
        } else {
          spec.volumeLabel = text
        }
      } else {
        diagnostics.error(
          entry.keyAt, "Format=\(format.rawValue) has no volume label",
          hint: format == .erofs || format == .squashfs
            ? "the on-disk format (or erofs-utils 1.5) stores none; remove VolumeLabel="
            : "VolumeLabel= applies to vfat, ext2/3/4, xfs, btrfs, f2fs and swap")
      }
    }
    if let entry = section.compression.entry, let text = section.compression.text {
      if let known = Self.compressors[format] {
        if known.contains(text) {
          spec.compression = text
        } else {
          diagnostics.error(
            entry.valueAt, "unknown compressor '\(text)' for Format=\(format.rawValue)",
            hint: "one of " + known.joined(separator: ", "))
        }
      } else {
        diagnostics.error(entry.keyAt, "Compression= needs Format=erofs or Format=squashfs")
      }
    }
    if let entry = section.compressionLevel.entry, let level = section.compressionLevel.int {
      if !section.compression.isSet {
        diagnostics.error(entry.keyAt, "CompressionLevel= needs Compression=")
      } else {
        spec.compressionLevel = Int(level)
      }
    }
    for entry in section.makeFileSystemOptions.all where !entry.failed {
      if !format.isForeignFileSystem {
        diagnostics.error(
          entry.keyAt, "MakeFileSystemOptions= needs a Format= built by a mkfs tool",
          hint: "vfat, ext2/3/4, xfs, btrfs, erofs, squashfs, f2fs or swap")
        continue
      }
      spec.makeFileSystemOptions += splitWords(entry.value).map(\.word)
    }
  }

  /// `MBRType=`: a hex byte (with or without 0x) or a name.
  func parseMBRType(_ text: String) -> UInt8? {
    let names: [String: UInt8] = ["fat32": 0x0C, "linux": 0x83, "esp": 0xEF, "swap": 0x82]
    let lower = text.lowercased()
    if let byte = names[lower] { return byte }
    let digits = lower.hasPrefix("0x") ? String(lower.dropFirst(2)) : lower
    guard !digits.isEmpty, digits.count <= 2, let byte = UInt8(digits, radix: 16), byte != 0,
      byte != 0xEE
    else { return nil }
    return byte
  }

  func firstUsableByte(sectorSize: Int) -> UInt64 {
    // Protective MBR + header + a 16 KiB entry array.
    UInt64(2 * sectorSize + 16384)
  }
}

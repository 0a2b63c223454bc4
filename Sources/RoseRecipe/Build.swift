import Foundation
import RoseDisk

extension LoadState {
  mutating func build(
    userDefines: [String: String], sourceDateEpoch: Int64, architecture: Architecture
  ) -> Recipe? {
    let image = ImageKeys(singletons[.image].map { groups[$0].entries } ?? [])
    var settings = buildImage(
      image, defines: userDefines, sourceDateEpoch: sourceDateEpoch, architecture: architecture)
    settings.clampsTimes = epochGiven
    var partitions: [(PartitionSpec, PartitionKeys)] = []
    var blobs: [BlobSpec] = []
    for group in groups where group.kind == .partition && group.mergedInto == nil {
      let section = PartitionKeys(group.entries)
      if section.inPartitionTable.bool == false {
        if let blob = buildBlob(group) { blobs.append(blob) }
        continue
      }
      if let partition = buildPartition(
        group, image: settings, index: partitions.count, earlier: partitions.map(\.0.label))
      {
        partitions.append((partition, section))
      }
    }
    if !groups.contains(where: { $0.kind == .partition }) {
      diagnostics.error(
        SourcePosition(file: mainPath, line: 1, column: 1), "recipe has no [Partition] section",
        hint: "a disk needs at least one partition")
    }
    crossCheck(partitions, image: settings)
    checkTables(partitions, image: settings)
    let output = buildOutput(
      OutputKeys(singletons[.output].map { groups[$0].entries } ?? []),
      image: settings)
    var recipe = Recipe(
      image: settings, partitions: partitions.map(\.0), output: output,
      warnings: diagnostics.warnings.sorted(by: RecipeError.sortKey), sourceFiles: filesRead)
    recipe.blobs = blobs
    return recipe
  }

  // MARK: tables, blobs, verity (issue 9)

  /// An `InPartitionTable=no` section: a raw file at a fixed offset outside the table.
  mutating func buildBlob(_ group: Group) -> BlobSpec? {
    let section = PartitionKeys(group.entries)
    let name = section.label.text ?? "blob-\(group.header.line)"
    if let entry = section.format.entry, section.format.text != "raw" {
      diagnostics.error(
        entry.valueAt, "InPartitionTable=no needs Format=raw",
        hint: "a blob is CopyBlocks= written byte for byte at Offset=")
    }
    for key in [
      section.sizeMinBytes, section.sizeMaxBytes, section.grow, section.slots, section.mbrType,
      section.bootable, section.verity, section.type, section.uuid, section.formats,
    ] {
      if let entry = key.entry {
        diagnostics.error(
          entry.keyAt, "\(entry.key)= has no effect with InPartitionTable=no",
          hint: "a blob is not in the partition table; its size is the file's")
      }
    }
    guard let offset = section.offset.size else {
      if section.offset.entry == nil {
        diagnostics.error(
          group.header, "InPartitionTable=no section '\(name)' has no Offset=",
          hint: "give the byte offset the boot ROM reads it from, e.g. Offset=8K or Offset=32K")
      }
      return nil
    }
    guard let entry = section.copyBlocks.entry, !entry.failed else {
      if section.copyBlocks.entry == nil {
        diagnostics.error(
          group.header, "InPartitionTable=no section '\(name)' has no CopyBlocks=",
          hint: "add CopyBlocks=FILE with the bytes to write")
      }
      return nil
    }
    guard let path = checkHostPath(entry, text: entry.value, offset: 0, want: .file) else {
      return nil
    }
    return BlobSpec(name: name, source: path, offset: offset, position: group.header)
  }

  /// MBR limits that the recipe alone decides (four primaries, three hybrid mirrors), and the
  /// verity sets (one data and one hash partition per VerityMatchKey=).
  mutating func checkTables(
    _ partitions: [(PartitionSpec, PartitionKeys)], image settings: ImageSettings
  ) {
    let kind = settings.tableKind
    for (spec, section) in partitions {
      if let entry = section.mbrType.entry, kind == .gpt {
        diagnostics.error(
          entry.keyAt, "MBRType= needs PartitionTable=mbr or hybrid",
          hint: "partition '\(spec.label)' is on a GPT disk")
      }
    }
    if kind == .mbr && partitions.count > 4 {
      let (spec, _) = partitions[4]
      diagnostics.error(
        spec.position,
        "partition '\(spec.label)' would be primary partition 5: an MBR holds at most 4",
        hint: "use PartitionTable=gpt or hybrid, or InPartitionTable=no for bootloader blobs")
    }
    if kind == .hybrid {
      let mirrored = partitions.filter { $0.0.mbrType != nil }
      if mirrored.count > 3 {
        diagnostics.error(
          mirrored[3].0.position,
          "partition '\(mirrored[3].0.label)' is the 4th with MBRType=: a hybrid MBR mirrors at "
            + "most 3 partitions next to its 0xEE entry",
          hint: "remove MBRType= from the partitions that need not be in the MBR")
      }
    }
    var sparseNames: [String: PartitionSpec] = [:]
    for (spec, section) in partitions where spec.sparseImage {
      if let first = sparseNames[spec.splitName] {
        diagnostics.error(
          section.formats.entry?.valueAt ?? spec.position,
          "two partitions write the sparse image \(spec.splitName).img",
          hint: "'\(first.label)' at line \(first.position.line) has that SplitName= too; give "
            + "one a different SplitName=")
      } else {
        sparseNames[spec.splitName] = spec
      }
    }
    var sets: [String: [VerityRole: PartitionSpec]] = [:]
    for (spec, section) in partitions where spec.verity != .off {
      guard let key = spec.verityMatchKey else {
        diagnostics.error(
          section.verity.entry?.valueAt ?? spec.position,
          "Verity=\(spec.verity.rawValue) needs VerityMatchKey=",
          hint: "give the data, hash and signature partitions of one set the same key")
        continue
      }
      if let other = sets[key]?[spec.verity] {
        diagnostics.error(
          section.verity.entry?.valueAt ?? spec.position,
          "VerityMatchKey=\(key) has two Verity=\(spec.verity.rawValue) partitions",
          hint: "the other is '\(other.label)' at line \(other.position.line)")
      }
      sets[key, default: [:]][spec.verity] = spec
    }
    for (key, set) in sets.sorted(by: { $0.key < $1.key }) {
      for role in [VerityRole.data, .hash] where set[role] == nil {
        let any = set.values.first
        diagnostics.error(
          any?.position ?? SourcePosition(file: mainPath, line: 1, column: 1),
          "VerityMatchKey=\(key) has no Verity=\(role.rawValue) partition",
          hint: "a verity set needs a data and a hash partition (and optionally a signature)")
      }
      if let hash = set[.hash], hash.format != .empty {
        diagnostics.error(
          hash.position, "Verity=hash partition '\(hash.label)' must have Format=empty",
          hint: "rosepack fills it with veritysetup format")
      }
      if let sig = set[.signature], sig.format != .empty {
        diagnostics.error(
          sig.position, "Verity=signature partition '\(sig.label)' must have Format=empty",
          hint: "rosepack fills it with repart's JSON")
      }
    }
  }

  // MARK: [Image]

  mutating func buildImage(
    _ image: ImageKeys, defines: [String: String], sourceDateEpoch: Int64,
    architecture: Architecture
  ) -> ImageSettings {
    let name = image.name.text ?? defaultImageName
    if let entry = image.name.entry, name.isEmpty || name.contains("/") {
      diagnostics.error(
        entry.valueAt, "invalid image name '\(name)'", hint: "a non-empty name without '/'")
    }
    if let entry = image.version.entry, let version = image.version.text,
      version.isEmpty || version.contains("/") || version.contains("\t")
    {
      diagnostics.error(
        entry.valueAt, "invalid image version '\(version)'", hint: "a non-empty version without '/'"
      )
    }
    let sectorSize = Int(image.sectorSize.text ?? "512") ?? 512
    var alignment: UInt64 = 1 << 20
    if let entry = image.alignment.entry, let value = image.alignment.size {
      if value == 0 || value & (value - 1) != 0 || value % UInt64(sectorSize) != 0 {
        diagnostics.error(
          entry.valueAt,
          "Alignment=\(entry.value) must be a power of two and a multiple of the "
            + "sector size (\(sectorSize))")
      } else {
        alignment = value
      }
    }
    var diskSize = DiskSize.auto
    if let entry = image.diskSize.entry, let value = image.diskSize.size {
      if value == 0 || value % UInt64(sectorSize) != 0 {
        diagnostics.error(
          entry.valueAt,
          "DiskSize=\(entry.value) is not a positive multiple of the sector size (\(sectorSize))")
      } else {
        diskSize = .fixed(value)
      }
    }
    return ImageSettings(
      name: name, version: image.version.text ?? "0", architecture: architecture,
      sectorSize: sectorSize, alignment: alignment, diskSize: diskSize,
      seed: image.seed.text ?? name, sourceDateEpoch: sourceDateEpoch,
      partitionTable: image.partitionTable.text ?? "gpt", defines: defines)
  }

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

  static let vfatLayerKeys: Set<String> = [
    "Directory", "CopyFiles", "File", "Inline", "Template", "MakeDirectories",
  ]

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
      case let other where other.isForeignFileSystem && other != .vfat: break
      case .vfat where Self.vfatLayerKeys.contains(entry.key): break
      case .vfat:
        diagnostics.error(
          entry.keyAt, "\(entry.key)= is not allowed with Format=vfat",
          hint: "vfat partitions take CopyFiles=, Directory=, File=, Inline=, Template= and "
            + "MakeDirectories=")
        continue
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

  // MARK: Cross-checks

  mutating func crossCheck(_ partitions: [(PartitionSpec, PartitionKeys)], image: ImageSettings) {
    var labels: [String: PartitionSpec] = [:]
    var uuids: [UUID: PartitionSpec] = [:]
    var grower: PartitionSpec?
    let align = image.alignment
    // End of the previous partition while it is known (all sizes so far fixed).
    var cursor: UInt64? = firstUsableByte(sectorSize: image.sectorSize)
    var previousLabel = ""
    for (partition, section) in partitions {
      if partition.label == "_empty" {
        // systemd-sysupdate marks unused slots so; several partitions may carry it.
      } else if let first = labels[partition.label] {
        diagnostics.error(
          section.label.entry?.valueAt ?? partition.position,
          "duplicate partition label '\(partition.label)'",
          hint: "already used by the partition at line \(first.position.line)")
      } else {
        labels[partition.label] = partition
      }
      if let uuid = partition.uuid {
        if let first = uuids[uuid] {
          diagnostics.error(
            section.uuid.entry?.valueAt ?? partition.position,
            "duplicate partition UUID \(uuid.uuidString.lowercased())",
            hint: "already used by '\(first.label)' at line \(first.position.line)")
        } else {
          uuids[uuid] = partition
        }
      }
      if case .grow = partition.size {
        let at = section.grow.entry?.valueAt ?? partition.position
        if grower == nil {
          grower = partition
          if image.diskSize == .auto {
            diagnostics.warning(
              at, "Grow=yes has no effect with DiskSize=auto",
              hint: "set DiskSize= in [Image] to the device size")
          }
        }
      }
      var start: UInt64?
      if let offset = partition.offset {
        if let end = cursor, offset < end, !previousLabel.isEmpty {
          diagnostics.error(
            section.offset.entry?.valueAt ?? partition.position,
            "partition '\(partition.label)' at offset \(offset) overlaps '\(previousLabel)', "
              + "which ends at \(end)",
            hint: "partitions are laid out in file order")
        }
        start = offset
      } else if let end = cursor {
        start = (end + align - 1) / align * align
      }
      if let start, case .fixed(let bytes) = partition.size {
        cursor = start + bytes + partition.paddingMinBytes
      } else {
        cursor = nil
      }
      previousLabel = partition.label
      let backup = firstUsableByte(sectorSize: image.sectorSize) - UInt64(image.sectorSize)
      if case .fixed(let diskBytes) = image.diskSize, let end = cursor, end + backup > diskBytes {
        diagnostics.error(
          partition.position,
          "partition '\(partition.label)' ends at byte \(end), beyond the usable end of "
            + "DiskSize= (\(diskBytes - backup))")
      }
    }
  }

  // MARK: [Output]

  mutating func buildOutput(_ output: OutputKeys, image: ImageSettings) -> OutputSpec {
    var kinds: [OutputKind]?
    for entry in output.formats.all where !entry.failed {
      let words = entry.typed?.words ?? []
      if words.isEmpty {
        kinds = []
        continue
      }
      for word in words {
        guard let kind = OutputKind(rawValue: word.word) else {
          let allowed = OutputKind.allCases.map(\.rawValue)
          var hint = "allowed values: " + allowed.joined(separator: ", ")
          if let match = closestMatch(word.word, in: allowed) {
            hint = "did you mean \(match)? " + hint
          }
          diagnostics.error(
            entry.position(at: word.offset), "unknown output format '\(word.word)'", hint: hint)
          continue
        }
        kinds = (kinds ?? []) + [kind]
      }
    }
    if let kinds, kinds.isEmpty, let last = output.formats.entry {
      diagnostics.error(last.valueAt, "no output formats left", hint: "e.g. Formats=raw")
    }
    let chosen = Set(kinds ?? [.raw, .manifest])
    if chosen.contains(.bmap) && !chosen.contains(.raw) && !chosen.contains(.zst),
      let last = output.formats.entry
    {
      diagnostics.error(
        last.valueAt,
        "Formats=bmap needs raw or zst: a .bmap is written beside the image it "
          + "describes", hint: "add raw or zst to Formats=")
    }
    var maxDownload: UInt64?
    if let entry = output.maxDownloadSize.entry, let value = output.maxDownloadSize.size {
      if !chosen.contains(.simg) {
        diagnostics.error(entry.keyAt, "MaxDownloadSize= needs Formats=simg")
      } else if value < 64 << 10 {
        diagnostics.error(
          entry.valueAt, "MaxDownloadSize=\(entry.value) is below 64K",
          hint: "fastboot devices report hundreds of MiB (getvar max-download-size)")
      } else {
        maxDownload = value
      }
    }
    var blockSize: UInt64 = 4096
    if let entry = output.sparseBlockSize.entry, let value = output.sparseBlockSize.size {
      if value == 0 || value % 4 != 0 || value % UInt64(image.sectorSize) != 0 {
        diagnostics.error(
          entry.valueAt,
          "SparseBlockSize=\(entry.value) must be a multiple of 4 and of the sector size "
            + "(\(image.sectorSize))")
      } else {
        blockSize = value
      }
    }
    let baseName = output.baseName.text ?? "\(image.name)_\(image.version)"
    if let entry = output.baseName.entry, baseName.isEmpty || baseName.contains("/") {
      diagnostics.error(entry.valueAt, "invalid BaseName= '\(baseName)'", hint: "no '/' allowed")
    }
    var spec = OutputSpec(
      kinds: OutputKind.allCases.filter { chosen.contains($0) },
      zstdLevel: Int(output.compressLevel.int ?? 3),
      sparseCRC: output.sparseCrc.bool ?? false, sparseBlockSize: blockSize,
      baseName: baseName)
    spec.maxDownloadSize = maxDownload
    return spec
  }
}

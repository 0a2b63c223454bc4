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

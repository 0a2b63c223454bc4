import RoseSizes

/// How big a partition should be.
public enum PartitionSizeRule: Sendable, Equatable {
  /// Exactly this many bytes (a multiple of the sector size).
  case fixed(UInt64)
  /// Big enough for the content and at least `min`, rounded up to the alignment, at most `max`.
  case auto(min: UInt64 = 0, max: UInt64? = nil)
  /// Like `auto`, then takes a share of the free space of a fixed-size disk in proportion to
  /// `weight` (several grow partitions share it), capped at `max`. With automatic disk
  /// size, a grow partition gets its minimum.
  case grow(min: UInt64 = 0, max: UInt64? = nil, weight: UInt64 = 1)
}

/// One requested partition, in table order.
public struct PartitionRequest: Sendable, Equatable {
  public var label: String
  public var type: GUID
  public var uuid: GUID
  /// GPT attribute bits (0 required, 2 legacy BIOS bootable, 59 grow-fs, 60 read-only,
  /// 62 hidden, 63 no-auto).
  public var attributes: UInt64
  public var size: PartitionSizeRule
  /// Bytes the partition must hold (filesystem image, raw file).
  public var contentSize: UInt64
  /// Fixed byte offset (a multiple of the sector size); nil places it after the previous
  /// partition at the next alignment boundary.
  public var offset: UInt64?

  public init(
    label: String, type: GUID, uuid: GUID, attributes: UInt64 = 0,
    size: PartitionSizeRule = .auto(),
    contentSize: UInt64 = 0, offset: UInt64? = nil
  ) {
    self.label = label
    self.type = type
    self.uuid = uuid
    self.attributes = attributes
    self.size = size
    self.contentSize = contentSize
    self.offset = offset
  }
}

/// A placed partition.
public struct PlannedPartition: Sendable, Equatable {
  /// GPT entry number, 1-based.
  public let index: Int
  public let label: String
  public let type: GUID
  public let uuid: GUID
  public let attributes: UInt64
  public let firstLBA: UInt64
  /// Inclusive.
  public let lastLBA: UInt64
  /// Byte offset in the disk image.
  public let offset: UInt64
  /// Size in bytes.
  public let size: UInt64
  public let contentSize: UInt64
  public var end: UInt64 { offset + size }
}

/// A planned GPT disk: sizes, LBAs of the table areas and of every partition.
public struct DiskLayout: Sendable, Equatable {
  public static let maxPartitions = 128
  public static let entryCount: UInt64 = 128
  public static let entrySize: UInt64 = 128

  public let sectorSize: UInt64
  public let alignment: UInt64
  /// Total image size in bytes (a multiple of the sector size).
  public let diskSize: UInt64
  public let diskGUID: GUID
  public let partitions: [PlannedPartition]
  /// First LBA partitions may use: right after the primary entry array, or (for a table laid out
  /// as libfdisk/systemd-repart do) the first 1 MiB boundary.
  public let firstUsableLBA: UInt64

  init(
    sectorSize: UInt64, alignment: UInt64, diskSize: UInt64, diskGUID: GUID,
    partitions: [PlannedPartition], firstUsableLBA: UInt64? = nil
  ) {
    self.sectorSize = sectorSize
    self.alignment = alignment
    self.diskSize = diskSize
    self.diskGUID = diskGUID
    self.partitions = partitions
    self.firstUsableLBA = firstUsableLBA ?? (2 + DiskLayout.entryArraySectors(sectorSize))
  }

  public var totalSectors: UInt64 { diskSize / sectorSize }
  /// Sectors of one partition entry array (32 for 512-byte sectors, 4 for 4096).
  public var entryArraySectors: UInt64 { DiskLayout.entryArraySectors(sectorSize) }
  public var primaryEntriesLBA: UInt64 { 2 }
  public var lastUsableLBA: UInt64 { totalSectors - 2 - entryArraySectors }
  public var backupEntriesLBA: UInt64 { totalSectors - 1 - entryArraySectors }
  public var backupHeaderLBA: UInt64 { totalSectors - 1 }

  /// The byte ranges the GPT occupies (pMBR, primary header and entries, backup entries
  /// and header), to merge into the image's AllocationMap.
  public var tableMap: AllocationMap {
    var map = AllocationMap()
    map.insert(offset: 0, length: (2 + entryArraySectors) * sectorSize)
    map.insert(offset: backupEntriesLBA * sectorSize, length: (entryArraySectors + 1) * sectorSize)
    return map
  }

  /// Bytes wiped at each end of a partition, as systemd-repart wipes signatures.
  public static let signatureWipeBytes: UInt64 = 1 << 20

  /// The first and last MiB of every partition (all of a smaller one). Added to the image's
  /// AllocationMap, these ranges reach the bmap and the Android sparse image as explicit zeros
  /// (where nothing else is written there), so flashing with bmaptool or fastboot overwrites an
  /// old file system, LUKS or RAID signature the device held there, which blkid, an initrd or
  /// systemd-gpt-auto-generator would otherwise find.
  public var signatureAreas: AllocationMap {
    var map = AllocationMap()
    let wipe = DiskLayout.signatureWipeBytes
    for p in partitions {
      let head = min(wipe, p.size)
      map.insert(offset: p.offset, length: head)
      map.insert(offset: p.end - head, length: head)
    }
    return map
  }

  /// The same disk with some partition UUIDs replaced (by 1-based index): verity sets learn
  /// theirs from the root hash only after their data is written.
  public func replacingUUIDs(_ uuids: [Int: GUID]) -> DiskLayout {
    let replaced = partitions.map { p in
      PlannedPartition(
        index: p.index, label: p.label, type: p.type, uuid: uuids[p.index] ?? p.uuid,
        attributes: p.attributes, firstLBA: p.firstLBA, lastLBA: p.lastLBA, offset: p.offset,
        size: p.size, contentSize: p.contentSize)
    }
    return DiskLayout(
      sectorSize: sectorSize, alignment: alignment, diskSize: diskSize, diskGUID: diskGUID,
      partitions: replaced, firstUsableLBA: firstUsableLBA)
  }

  /// Finds a partition by label or 1-based index.
  public func partition(_ selector: String) -> PlannedPartition? {
    if let p = partitions.first(where: { $0.label == selector }) { return p }
    if let n = Int(selector) { return partitions.first { $0.index == n } }
    return nil
  }

  static func entryArraySectors(_ sectorSize: UInt64) -> UInt64 {
    (entryCount * entrySize + sectorSize - 1) / sectorSize
  }

  /// Plans a disk.
  /// - Parameters:
  ///   - sectorSize: logical sector size, 512 or 4096 (1024 and 2048 also accepted).
  ///   - alignment: partition start alignment in bytes (default 1 MiB).
  ///   - diskSize: fixed image size, or nil for the smallest size that fits (a 4 KiB multiple).
  ///   - diskGUID: the disk GUID (see `GUID.derived`).
  ///   - partitions: the partitions in table order.
  public static func plan(
    sectorSize: UInt64 = 512, alignment: UInt64 = 1 << 20, diskSize: UInt64? = nil, diskGUID: GUID,
    partitions specs: [PartitionRequest]
  ) throws -> DiskLayout {
    guard [512, 1024, 2048, 4096].contains(sectorSize) else {
      throw DiskError.invalidSectorSize(sectorSize)
    }
    guard alignment > 0, alignment % sectorSize == 0 else {
      throw DiskError.invalidAlignment(alignment: alignment, sectorSize: sectorSize)
    }
    guard specs.count <= maxPartitions else {
      throw DiskError.tooManyPartitions(count: specs.count, maximum: maxPartitions)
    }
    var seen = Set<String>()
    for spec in specs {
      if spec.label.utf16.count > 36 {
        throw DiskError.invalidLabel(
          label: spec.label,
          reason: "GPT labels hold at most 36 UTF-16 units, this one has \(spec.label.utf16.count)")
      }
      // "_empty" marks unused systemd-sysupdate slots; several partitions may carry it.
      if !spec.label.isEmpty && spec.label != "_empty" && !seen.insert(spec.label).inserted {
        throw DiskError.invalidLabel(
          label: spec.label, reason: "label is used by more than one partition")
      }
      if let offset = spec.offset, offset % sectorSize != 0 {
        throw DiskError.misaligned(
          label: spec.label, what: "offset", value: offset, alignment: sectorSize)
      }
    }

    let entrySectors = entryArraySectors(sectorSize)
    let firstUsableByte = (2 + entrySectors) * sectorSize
    let backupBytes = (1 + entrySectors) * sectorSize

    // Minimum size of every partition.
    var sizes: [UInt64] = []
    var growIndices: [Int] = []
    for (i, spec) in specs.enumerated() {
      sizes.append(try minimumSize(spec, sectorSize: sectorSize, alignment: alignment))
      if case .grow = spec.size {
        growIndices.append(i)
      } else if spec.offset != nil, let g = growIndices.first {
        throw DiskError.invalidSizeRule(
          label: spec.label,
          reason: "has a fixed offset but follows the grow partition '\(specs[g].label)'; "
            + "drop the offset or make '\(specs[g].label)' fixed-size")
      }
    }

    var (starts, neededEnd) = try place(
      specs, sizes, firstUsableByte: firstUsableByte, alignment: alignment)

    let finalDiskSize: UInt64
    if let diskSize {
      guard diskSize % sectorSize == 0 else {
        throw DiskError.misaligned(
          label: "(disk)", what: "disk size", value: diskSize, alignment: sectorSize)
      }
      let minimum = firstUsableByte + sectorSize + backupBytes
      guard diskSize >= minimum else {
        throw DiskError.diskTooSmall(
          needed: max(minimum, neededEnd &+ backupBytes), given: diskSize)
      }
      let usableEnd = diskSize - backupBytes
      for (i, spec) in specs.enumerated() where starts[i] + sizes[i] > usableEnd {
        throw DiskError.partitionDoesNotFit(
          label: spec.label, needed: sizes[i],
          available: usableEnd > starts[i] ? usableEnd - starts[i] : 0)
      }
      if !growIndices.isEmpty && usableEnd > neededEnd {
        let units = (usableEnd - neededEnd) / alignment
        let grants = distribute(
          units: units, among: growIndices, specs: specs, sizes: sizes, alignment: alignment)
        for (i, grant) in grants { sizes[i] += grant * alignment }
        (starts, neededEnd) = try place(
          specs, sizes, firstUsableByte: firstUsableByte, alignment: alignment)
      }
      finalDiskSize = diskSize
    } else {
      guard neededEnd <= UInt64.max - backupBytes,
        let rounded = alignUp(neededEnd + backupBytes, max(sectorSize, 4096))
      else {
        throw DiskError.diskTooSmall(needed: UInt64.max, given: 0)
      }
      finalDiskSize = rounded
    }

    let planned = specs.enumerated().map { i, spec in
      PlannedPartition(
        index: i + 1, label: spec.label, type: spec.type, uuid: spec.uuid,
        attributes: spec.attributes,
        firstLBA: starts[i] / sectorSize, lastLBA: (starts[i] + sizes[i]) / sectorSize - 1,
        offset: starts[i],
        size: sizes[i], contentSize: spec.contentSize)
    }
    return DiskLayout(
      sectorSize: sectorSize, alignment: alignment, diskSize: finalDiskSize, diskGUID: diskGUID,
      partitions: planned)
  }

  static func minimumSize(_ spec: PartitionRequest, sectorSize: UInt64, alignment: UInt64) throws
    -> UInt64
  {
    let label = spec.label
    switch spec.size {
    case .fixed(let size):
      guard size > 0 else {
        throw DiskError.invalidSizeRule(label: label, reason: "fixed size is 0")
      }
      guard size % sectorSize == 0 else {
        throw DiskError.misaligned(label: label, what: "size", value: size, alignment: sectorSize)
      }
      guard spec.contentSize <= size else {
        throw DiskError.partitionDoesNotFit(label: label, needed: spec.contentSize, available: size)
      }
      return size
    case .auto(let min, let max), .grow(let min, let max, _):
      if let max, max < min {
        throw DiskError.invalidSizeRule(
          label: label,
          reason:
            "minimum size \(formatSize(min, exact: true)) is above maximum \(formatSize(max, exact: true))"
        )
      }
      let needed = Swift.max(spec.contentSize, min, 1)
      if let max {
        let cap = alignDown(max, sectorSize)
        guard needed <= cap else {
          throw DiskError.partitionDoesNotFit(label: label, needed: needed, available: cap)
        }
        return Swift.min(alignUp(needed, alignment) ?? cap, cap)
      }
      guard let size = alignUp(needed, alignment) else {
        throw DiskError.invalidSizeRule(label: label, reason: "size \(needed) is too large")
      }
      return size
    }
  }

  static func place(
    _ specs: [PartitionRequest], _ sizes: [UInt64], firstUsableByte: UInt64, alignment: UInt64
  ) throws -> ([UInt64], UInt64) {
    var starts: [UInt64] = []
    var cursor = firstUsableByte
    for (i, spec) in specs.enumerated() {
      let start: UInt64
      if let offset = spec.offset {
        if offset < firstUsableByte {
          throw DiskError.overlap(
            label: spec.label, other: "the GPT header and partition entries", offset: offset,
            otherEnd: firstUsableByte)
        }
        if offset < cursor {
          throw DiskError.overlap(
            label: spec.label, other: "partition '\(specs[i - 1].label)'", offset: offset,
            otherEnd: cursor)
        }
        start = offset
      } else {
        guard let aligned = alignUp(cursor, alignment) else {
          throw DiskError.invalidSizeRule(label: spec.label, reason: "partition offset overflows")
        }
        start = aligned
      }
      let (end, overflow) = start.addingReportingOverflow(sizes[i])
      if overflow {
        throw DiskError.invalidSizeRule(label: spec.label, reason: "partition end overflows")
      }
      starts.append(start)
      cursor = end
    }
    return (starts, cursor)
  }

  /// Splits `units` alignment units among grow partitions by weight, honouring max sizes.
  static func distribute(
    units: UInt64, among indices: [Int], specs: [PartitionRequest], sizes: [UInt64],
    alignment: UInt64
  ) -> [(Int, UInt64)] {
    var grants = [Int: UInt64]()
    var capacity = [Int: UInt64]()
    var weights = [Int: UInt64]()
    for i in indices {
      guard case .grow(_, let max, let weight) = specs[i].size, weight > 0 else { continue }
      weights[i] = weight
      if let max { capacity[i] = (alignDown(max, 1) > sizes[i] ? max - sizes[i] : 0) / alignment }
      grants[i] = 0
    }
    var active = indices.filter { weights[$0] != nil }
    var remaining = units
    while remaining > 0 && !active.isEmpty {
      let totalWeight = active.reduce(UInt64(0)) { $0 + (weights[$1] ?? 0) }
      var shares = [Int: UInt64]()
      for i in active {
        let product = remaining.multipliedFullWidth(by: weights[i] ?? 0)
        shares[i] = totalWeight.dividingFullWidth(product).quotient
      }
      let capped = active.filter { i in capacity[i].map { (shares[i] ?? 0) >= $0 } ?? false }
      if !capped.isEmpty {
        for i in capped {
          let cap = capacity[i] ?? 0
          grants[i, default: 0] += cap
          remaining -= cap
        }
        active.removeAll { capped.contains($0) }
        continue
      }
      var given: UInt64 = 0
      for i in active {
        grants[i, default: 0] += shares[i] ?? 0
        given += shares[i] ?? 0
      }
      var leftover = remaining - given
      for i in active where leftover > 0 {
        grants[i, default: 0] += 1
        leftover -= 1
      }
      remaining = 0
    }
    return indices.compactMap { i in grants[i].map { (i, $0) } }
  }
}

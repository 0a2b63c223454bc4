/// One partition as a repart.d definition asks for it, with sizes in bytes as systemd-repart holds
/// them after parsing (`SizeMinBytes=`/`PaddingMinBytes=` rounded up to 4096, the maxima rounded
/// down; nil where the key is not set).
public struct RepartPartitionRequest: Sendable, Equatable {
  public var label: String
  public var type: GUID
  public var uuid: GUID
  public var attributes: UInt64
  public var sizeMin: UInt64?
  public var sizeMax: UInt64?
  public var paddingMin: UInt64?
  public var paddingMax: UInt64?
  public var weight: UInt64
  public var paddingWeight: UInt64
  /// Bytes the content needs (`CopyBlocks=` file, a built file system); 0 for none.
  public var contentSize: UInt64
  /// True when the partition gets a file system or copied blocks: repart then reserves at least
  /// one grain for it.
  public var hasContent: Bool

  public init(
    label: String, type: GUID, uuid: GUID, attributes: UInt64 = 0, sizeMin: UInt64? = nil,
    sizeMax: UInt64? = nil, paddingMin: UInt64? = nil, paddingMax: UInt64? = nil,
    weight: UInt64 = 1000, paddingWeight: UInt64 = 0, contentSize: UInt64 = 0,
    hasContent: Bool = false
  ) {
    self.label = label
    self.type = type
    self.uuid = uuid
    self.attributes = attributes
    self.sizeMin = sizeMin
    self.sizeMax = sizeMax
    self.paddingMin = paddingMin
    self.paddingMax = paddingMax
    self.weight = weight
    self.paddingWeight = paddingWeight
    self.contentSize = contentSize
    self.hasContent = hasContent
  }
}

/// systemd-repart's (v252) placement of new partitions on an empty disk, step for step:
/// `context_load_partition_table` (the one free area between the 1 MiB-aligned first LBA and the
/// last usable LBA, both rounded to the grain), `partition_min_size`/`partition_max_size`,
/// `context_allocate_partitions`, the four phases of `context_grow_partitions_phase`,
/// `context_grow_partition_one` and `context_place_partitions`. The grain is 4096 bytes, or the
/// sector size when larger. Free space no partition may take stays at the end of the disk.
public enum RepartLayout {
  /// repart's `DEFAULT_MIN_SIZE`: the minimum of a partition without `SizeMinBytes=`.
  public static let defaultMinSize: UInt64 = 10 << 20
  /// repart's `HARD_MIN_SIZE`.
  public static let hardMinSize: UInt64 = 4096
  /// repart's `GPT_METADATA_SIZE`, added by `--size=auto`.
  public static let gptMetadataSize: UInt64 = 1044 * 1024

  public static func grain(sectorSize: UInt64) -> UInt64 { max(4096, sectorSize) }

  public static func roundUp(_ v: UInt64, _ p: UInt64) -> UInt64 {
    let q = v / p + (v % p == 0 ? 0 : 1)
    return q > UInt64.max / p ? UInt64.max : q * p
  }

  static func roundDown(_ v: UInt64, _ p: UInt64) -> UInt64 { v / p * p }

  static func lessBy(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : 0 }

  /// `partition_min_size` for a new partition.
  public static func minSize(_ p: RepartPartitionRequest, grain: UInt64) -> UInt64 {
    var size = hardMinSize
    if p.hasContent {
      size = max(size, max(roundUp(p.contentSize, grain), grain))
    }
    return max(roundUp(p.sizeMin ?? defaultMinSize, grain), size)
  }

  /// `partition_max_size` for a new partition (`UInt64.max` without `SizeMaxBytes=`).
  public static func maxSize(_ p: RepartPartitionRequest, grain: UInt64) -> UInt64 {
    guard let sizeMax = p.sizeMax else { return UInt64.max }
    return max(minSize(p, grain: grain), roundDown(sizeMax, grain))
  }

  static func minSizeWithPadding(_ p: RepartPartitionRequest, grain: UInt64) -> UInt64 {
    let (sum, overflow) = minSize(p, grain: grain).addingReportingOverflow(p.paddingMin ?? 0)
    return overflow ? UInt64.max : roundUp(sum, grain)
  }

  /// `determine_auto_size`: the disk size `--size=auto` picks.
  public static func autoDiskSize(sectorSize: UInt64, partitions: [RepartPartitionRequest])
    -> UInt64
  {
    let grain = grain(sectorSize: sectorSize)
    var sum = gptMetadataSize
    for p in partitions {
      let (next, overflow) = sum.addingReportingOverflow(minSizeWithPadding(p, grain: grain))
      sum = overflow ? UInt64.max : next
    }
    return roundUp(sum, 4096)
  }

  /// repart's `scale_by_weight`, including its halving when `value * weight` would overflow.
  static func scaleByWeight(_ value: UInt64, _ weight: UInt64, _ weightSum: UInt64) -> UInt64 {
    var weight = weight
    var weightSum = weightSum
    while true {
      if weight == 0 { return 0 }
      if weight == weightSum { return value }
      if value <= UInt64.max / weight { return value * weight / weightSum }
      weightSum = weightSum / 2 + weightSum % 2
      weight /= 2
    }
  }

  /// The first LBA libfdisk lets partitions use on a new GPT: the 1 MiB boundary.
  public static func firstLBA(sectorSize: UInt64) -> UInt64 { max((1 << 20) / sectorSize, 34) }

  /// Plans the disk repart creates with `--empty=create --size=DISKSIZE`.
  /// - Parameters:
  ///   - grain: placement and rounding unit; repart's (4096 or the sector size) when nil, a
  ///     recipe's `Alignment=` otherwise.
  ///   - tableFirstLBA: the first usable LBA written in the GPT header; libfdisk's 1 MiB boundary
  ///     when nil, else (recipes) right after the entry array.
  public static func plan(
    sectorSize: UInt64, diskSize: UInt64, diskGUID: GUID,
    partitions specs: [RepartPartitionRequest],
    grain grainOverride: UInt64? = nil, tableFirstLBA: UInt64? = nil
  ) throws -> DiskLayout {
    guard [512, 1024, 2048, 4096].contains(sectorSize) else {
      throw DiskError.invalidSectorSize(sectorSize)
    }
    guard specs.count <= DiskLayout.maxPartitions else {
      throw DiskError.tooManyPartitions(count: specs.count, maximum: DiskLayout.maxPartitions)
    }
    for spec in specs where spec.label.utf16.count > 36 {
      throw DiskError.invalidLabel(
        label: spec.label,
        reason: "GPT labels hold at most 36 UTF-16 units, this one has \(spec.label.utf16.count)")
    }
    let grain = grainOverride ?? grain(sectorSize: sectorSize)
    guard grain % sectorSize == 0 else {
      throw DiskError.invalidAlignment(alignment: grain, sectorSize: sectorSize)
    }
    let entrySectors = DiskLayout.entryArraySectors(sectorSize)
    let totalSectors = diskSize / sectorSize
    let firstLBA = tableFirstLBA ?? firstLBA(sectorSize: sectorSize)
    guard diskSize % sectorSize == 0, totalSectors > firstLBA + 2 + entrySectors else {
      throw DiskError.diskTooSmall(
        needed: (firstLBA + 3 + entrySectors) * sectorSize, given: diskSize)
    }
    let lastLBA = totalSectors - 2 - entrySectors
    let start = roundUp(firstLBA * sectorSize, grain)
    let end = roundDown((lastLBA + 1) * sectorSize, grain)
    let areaSize = lessBy(end, start)

    // context_allocate_partitions: every partition's minimum (plus padding) must fit.
    var required: UInt64 = 0
    for spec in specs {
      let (sum, overflow) = required.addingReportingOverflow(minSizeWithPadding(spec, grain: grain))
      guard !overflow, sum <= areaSize else {
        throw DiskError.partitionDoesNotFit(
          label: spec.label, needed: minSizeWithPadding(spec, grain: grain),
          available: lessBy(areaSize, required))
      }
      required = sum
    }

    var sizes = [UInt64?](repeating: nil, count: specs.count)
    var paddings = [UInt64?](repeating: nil, count: specs.count)
    var span = areaSize
    var weightSum: UInt64 = 0
    for spec in specs {
      let (a, o1) = weightSum.addingReportingOverflow(spec.weight)
      let (b, o2) = a.addingReportingOverflow(spec.paddingWeight)
      guard !o1, !o2 else {
        throw DiskError.invalidSizeRule(
          label: spec.label, reason: "the sum of Weight= values overflows 64 bits")
      }
      weightSum = b
    }
    func charge(_ amount: UInt64) { span = lessBy(span, roundUp(amount, grain)) }
    /// One step of a phase for a size or a padding that is not assigned yet (repart's
    /// context_grow_partitions_phase treats both alike): its weighted share of what is left, held
    /// to its bounds. True when the phase must repeat.
    func settle(
      _ slot: inout UInt64?, phase: Int, weight: UInt64, low: UInt64, high: UInt64
    ) -> Bool {
      guard slot == nil else { return false }
      let share = scaleByWeight(span, weight, weightSum)
      var assigned: UInt64?
      var repeatPhase = false
      if phase == 1 && low > share {
        assigned = low
        repeatPhase = true
      } else if phase == 2 && high < share {
        assigned = high
        repeatPhase = true
      } else if phase == 3 {
        assigned = min(max(roundDown(share, grain), low), high)
      }
      if let assigned {
        slot = assigned
        charge(assigned)
        weightSum -= weight
      }
      return repeatPhase
    }

    // The overcharge, undercharge and distribute phases; a phase repeats until it assigns nothing.
    for phase in 1...3 {
      var again = true
      while again {
        again = false
        for (i, spec) in specs.enumerated() {
          if settle(
            &sizes[i], phase: phase, weight: spec.weight, low: minSize(spec, grain: grain),
            high: maxSize(spec, grain: grain))
          {
            again = true
          }
          if settle(
            &paddings[i], phase: phase, weight: spec.paddingWeight, low: spec.paddingMin ?? 0,
            high: spec.paddingMax ?? UInt64.max)
          {
            again = true
          }
        }
      }
    }
    var finalSizes = sizes.map { $0 ?? 0 }
    let finalPaddings = paddings.map { $0 ?? 0 }
    // context_grow_partition_one: what is left goes to the first partitions that can take it.
    for (i, spec) in specs.enumerated() where span > 0 {
      let current = finalSizes[i]
      var grown = max(roundDown(current &+ span, grain), current)
      grown = min(grown, maxSize(spec, grain: grain))
      charge(grown - current)
      finalSizes[i] = grown
    }

    var cursor = start
    var planned: [PlannedPartition] = []
    for (i, spec) in specs.enumerated() {
      cursor = roundUp(cursor, grain)
      let offset = cursor
      guard finalSizes[i] % sectorSize == 0, offset + finalSizes[i] <= end else {
        throw DiskError.partitionDoesNotFit(
          label: spec.label, needed: finalSizes[i], available: lessBy(end, offset))
      }
      planned.append(
        PlannedPartition(
          index: i + 1, label: spec.label, type: spec.type, uuid: spec.uuid,
          attributes: spec.attributes, firstLBA: offset / sectorSize,
          lastLBA: (offset + finalSizes[i]) / sectorSize - 1, offset: offset, size: finalSizes[i],
          contentSize: spec.contentSize))
      cursor = offset + finalSizes[i] + finalPaddings[i]
    }
    return DiskLayout(
      sectorSize: sectorSize, alignment: grain, diskSize: totalSectors * sectorSize,
      diskGUID: diskGUID, partitions: planned, firstUsableLBA: firstLBA)
  }
}

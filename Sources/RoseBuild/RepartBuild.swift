import Foundation
import RoseDisk
import RoseRecipe
import RoseSizes

extension BuildPipeline {
  /// The disk of a `--definitions` build, laid out as systemd-repart 252 lays it out.
  func planRepart(_ disk: RepartDisk) throws -> DiskLayout {
    var requests: [RepartPartitionRequest] = []
    for (i, spec) in recipe.partitions.enumerated() {
      var sizing = spec.repartSizing ?? RepartSizing()
      if spec.minimize != .off && (spec.format == .rosefs || spec.format.isForeignFileSystem) {
        // Minimize= (repart 253+): exactly the space the content needs, on repart's grain.
        let grain = RepartLayout.grain(sectorSize: UInt64(recipe.image.sectorSize))
        let needed = RepartLayout.roundUp(max(contents[i].size, grain), grain)
        sizing.sizeMin = needed
        sizing.sizeMax = needed
      }
      // No UUID only for a verity data or hash partition, named by its root hash once the hash
      // tree is built (applyVerity); until then a placeholder from the seed.
      let placeholder = GUID.derived(seed: seed, label: "verity-placeholder:" + spec.label)
      let type = GUID(spec.type.guid)
      let uuid = spec.uuid.map(GUID.init) ?? placeholder
      var hasContent = spec.format != .empty
      if case .raw = contents[i] { hasContent = true }
      requests.append(
        RepartPartitionRequest(
          label: spec.label, type: type, uuid: uuid, attributes: spec.gptAttributes,
          sizeMin: sizing.sizeMin, sizeMax: sizing.sizeMax, paddingMin: sizing.paddingMin,
          paddingMax: sizing.paddingMax, weight: UInt64(max(sizing.weight, 0)),
          paddingWeight: UInt64(max(sizing.paddingWeight, 0)), contentSize: contents[i].size,
          hasContent: hasContent))
    }
    let sectorSize = UInt64(recipe.image.sectorSize)
    let size =
      disk.diskSize ?? RepartLayout.autoDiskSize(sectorSize: sectorSize, partitions: requests)
    let minimum = RepartLayout.autoDiskSize(sectorSize: sectorSize, partitions: requests)
    if let given = disk.diskSize, given < minimum {
      throw BuildFailure.diskBelowMinimum(given: given, minimum: minimum)
    }
    guard size < 1 << 62 else {
      throw BuildFailure.unbuildable(
        label: nil,
        at: recipe.partitions.first?.position
          ?? SourcePosition(file: "definitions", line: 0, column: 0),
        message:
          "the disk would be \(formatSize(size, exact: true)), more than an image file can hold",
        hint: "lower SizeMinBytes= or PaddingMinBytes=")
    }
    do {
      return try RepartLayout.plan(
        sectorSize: sectorSize, diskSize: size, diskGUID: GUID.repartDiskGUID(seed: disk.seed),
        partitions: requests)
    } catch DiskError.partitionDoesNotFit(let label, let needed, let available) {
      guard let spec = recipe.partitions.first(where: { $0.label == label }) else {
        throw planFailure(
          DiskError.partitionDoesNotFit(label: label, needed: needed, available: available))
      }
      throw BuildFailure.noRoomOnDisk(
        label: label, at: spec.position, needed: needed, available: available)
    } catch {
      throw planFailure(error)
    }
  }

  /// A recipe's disk without `Offset=` pins: every partition at least as large as its content
  /// (plus headroom) and `SizeMinBytes=`, rounded to `Alignment=`, followed by
  /// `PaddingMinBytes=`; on a fixed-size disk the free space shared among the partitions that
  /// grow (and their padding) as systemd-repart shares it (`RepartLayout`).
  func planByWeight() throws -> DiskLayout {
    let sectorSize = UInt64(recipe.image.sectorSize)
    let grain = max(recipe.image.alignment, sectorSize)
    var requests: [RepartPartitionRequest] = []
    for (i, spec) in recipe.partitions.enumerated() {
      let sizing = spec.repartSizing ?? RepartSizing(weight: 0)
      let (type, uuid) = identifiers(of: spec)
      let content = contents[i].size
      var low: UInt64
      var high: UInt64?
      switch spec.size {
      case .fixed(let bytes):
        guard content <= bytes else { throw doesNotFit(spec, needed: content, has: bytes) }
        low = bytes
        high = bytes
      case .auto(let minBytes, let maxBytes, let headroomBytes, let headroomPercent):
        let percent = content.multipliedReportingOverflow(by: UInt64(max(headroomPercent, 0)))
        let extra = percent.overflow ? UInt64.max : percent.partialValue / 100
        let (a, o1) = content.addingReportingOverflow(headroomBytes)
        let (wanted, o2) = a.addingReportingOverflow(extra)
        low = max(minBytes, (o1 || o2) ? UInt64.max : wanted)
        if let maxBytes {
          guard content <= maxBytes else { throw doesNotFit(spec, needed: content, has: maxBytes) }
          low = min(low, maxBytes)
        }
        high = maxBytes
      case .grow(let minBytes, let maxBytes):
        low = max(minBytes, content)
        high = maxBytes
        if let maxBytes, content > maxBytes {
          throw doesNotFit(spec, needed: content, has: maxBytes)
        }
      }
      // At least one grain, on the grain, as the fixed planner always did.
      let rounded = RepartLayout.roundUp(max(low, 1), grain)
      if case .fixed = spec.size {
        guard low % sectorSize == 0 else {
          throw BuildFailure.unbuildable(
            label: spec.label, at: spec.position,
            message: "partition '\(spec.label)': size is not a multiple of the sector size",
            hint: nil)
        }
      } else {
        low = rounded
      }
      if sizing.weight == 0 { high = low }
      requests.append(
        RepartPartitionRequest(
          label: spec.label, type: type, uuid: uuid, attributes: spec.gptAttributes, sizeMin: low,
          sizeMax: high.map { max($0, low) }, paddingMin: sizing.paddingMin,
          paddingMax: sizing.paddingMax, weight: UInt64(max(sizing.weight, 0)),
          paddingWeight: UInt64(max(sizing.paddingWeight, 0)), contentSize: content))
    }
    let tableFirstLBA = 2 + (16384 + sectorSize - 1) / sectorSize
    let start = RepartLayout.roundUp(tableFirstLBA * sectorSize, grain)
    let backup = (1 + (16384 + sectorSize - 1) / sectorSize) * sectorSize
    let diskSize: UInt64
    switch recipe.image.diskSize {
    case .fixed(let bytes):
      diskSize = bytes
    case .auto:
      var end = start
      for request in requests {
        let needed = RepartLayout.roundUp(
          RepartLayout.minSize(request, grain: grain) &+ (request.paddingMin ?? 0), grain)
        let (sum, overflow) = end.addingReportingOverflow(needed)
        guard !overflow else {
          throw BuildFailure.unbuildable(
            label: nil, at: recipe.partitions[0].position,
            message: "the partitions add up to more than 2^64 bytes", hint: nil)
        }
        end = sum
      }
      diskSize = RepartLayout.roundUp(end &+ backup, RepartLayout.grain(sectorSize: sectorSize))
    }
    guard diskSize < 1 << 62 else {
      throw BuildFailure.unbuildable(
        label: nil, at: recipe.partitions.first?.position ?? recipeFilePosition,
        message:
          "the disk would be \(formatSize(diskSize, exact: true)), more than an image file can hold",
        hint: "lower SizeMinBytes=, PaddingMinBytes= or DiskSize=")
    }
    do {
      return try RepartLayout.plan(
        sectorSize: sectorSize, diskSize: diskSize,
        diskGUID: GUID.derived(seed: seed, label: "\u{0}rosepack-disk"), partitions: requests,
        grain: grain, tableFirstLBA: tableFirstLBA)
    } catch DiskError.diskTooSmall(let needed, let given) {
      throw BuildFailure.unbuildable(
        label: nil, at: recipe.partitions.first?.position ?? recipeFilePosition,
        message:
          "DiskSize= (\(formatSize(given, exact: true))) is too small: the partition table alone needs "
          + formatSize(needed, exact: true), hint: nil)
    } catch {
      throw planFailure(error)
    }
  }
}

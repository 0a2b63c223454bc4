import Foundation
import RoseDisk
import RoseRecipe

extension BuildPipeline {
  /// The disk of a `--definitions` build, laid out as systemd-repart 252 lays it out.
  func planRepart(_ disk: RepartDisk) throws -> DiskLayout {
    var requests: [RepartPartitionRequest] = []
    for (i, spec) in recipe.partitions.enumerated() {
      var sizing = spec.repartSizing ?? RepartSizing()
      if spec.minimize != .off && (spec.format == .rosefs || spec.format == .vfat) {
        // Minimize= (repart 253+): exactly the space the content needs, on the 4096 grain.
        let needed = (max(contents[i].size, 4096) + 4095) / 4096 * 4096
        sizing.sizeMin = needed
        sizing.sizeMax = needed
      }
      guard let type = try? GUID(parsing: spec.type.guid.uuidString),
        let uuid = try? GUID(parsing: (spec.uuid ?? UUID()).uuidString)
      else {
        throw BuildFailure.at(spec.position, "partition '\(spec.label)': invalid GUID")
      }
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
    do {
      return try RepartLayout.plan(
        sectorSize: sectorSize, diskSize: size, diskGUID: GUID.repartDiskGUID(seed: disk.seed),
        partitions: requests)
    } catch DiskError.partitionDoesNotFit(let label, let needed, let available) {
      guard let spec = recipe.partitions.first(where: { $0.label == label }) else {
        throw CLIError.failed(
          "partition '\(label)' needs \(formatDiskSize(needed)), has \(formatDiskSize(available))")
      }
      throw BuildFailure.at(
        spec.position,
        "partition '\(label)' needs \(formatDiskSize(needed)), the disk has "
          + "\(formatDiskSize(available)) left for it",
        hint: "give a larger --size, or lower SizeMinBytes=/PaddingMinBytes=")
    } catch let error as DiskError {
      throw BuildFailure([
        RecipeError(
          file: recipe.sourceFiles.first ?? "definitions", line: 0, column: 0, message: "\(error)")
      ])
    }
  }
}

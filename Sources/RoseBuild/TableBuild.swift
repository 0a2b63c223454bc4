import Foundation
import RoseDisk
import RoseRecipe

/// The partition table kinds, bootloader blobs and verity sets of a build (issue 9).
extension BuildPipeline {
  /// Writes the table `PartitionTable=` asks for and returns the byte ranges it occupies.
  func writeTables(_ layout: DiskLayout, to fd: Int32, path: String) throws -> AllocationMap {
    let kind = recipe.image.tableKind
    let bootable = recipe.partitions.map(\.bootable)
    do {
      switch kind {
      case .gpt:
        try GPTWriter.write(layout, to: fd, path: path)
        return layout.tableMap
      case .mbr:
        let types = recipe.partitions.map { spec in
          spec.mbrType ?? MBRWriter.defaultType(gptType: gptType(spec), isFAT: spec.format == .vfat)
        }
        let entries = try MBRWriter.entries(layout: layout, types: types, bootable: bootable)
        try MBRWriter.write(
          signature: MBRWriter.diskSignature(seed: seed), entries: entries, to: fd, path: path)
        var map = AllocationMap()
        map.insert(offset: 0, length: layout.sectorSize)
        return map
      case .hybrid:
        try GPTWriter.write(layout, to: fd, path: path)
        let entries = try MBRWriter.hybridEntries(
          layout: layout, types: recipe.partitions.map(\.mbrType), bootable: bootable)
        try MBRWriter.write(
          signature: MBRWriter.diskSignature(seed: seed), entries: entries, to: fd, path: path)
        return layout.tableMap
      }
    } catch let error as TableError {
      throw tableFailure(error)
    }
  }

  func gptType(_ spec: PartitionSpec) -> GUID {
    GUID(spec.type.guid)
  }

  /// Checks the `InPartitionTable=no` blobs against the planned disk and writes them.
  func writeBlobs(_ layout: DiskLayout, to fd: Int32, path: String) throws -> AllocationMap {
    guard !recipe.blobs.isEmpty else { return AllocationMap() }
    var placed: [PlacedBlob] = []
    for blob in recipe.blobs {
      var st = stat()
      guard stat(blob.source, &st) == 0 else {
        throw BuildFailure.unbuildable(
          label: nil, at: blob.position,
          message: "blob '\(blob.name)': \(blob.source): \(String(cString: strerror(errno)))",
          hint: nil)
      }
      placed.append(
        PlacedBlob(
          name: blob.name, source: blob.source, offset: blob.offset,
          size: UInt64(max(st.st_size, 0))))
    }
    do {
      try BlobPlacement.check(placed, layout: layout, table: recipe.image.tableKind)
      progress.update("writing bootloader blobs")
      return try BlobPlacement.write(placed, to: fd, imagePath: path)
    } catch let error as TableError {
      throw tableFailure(error)
    }
  }

  /// A table error at the line of the partition or blob it names (the recipe file when none).
  func tableFailure(_ error: TableError) -> BuildFailure {
    let subject = BuildFailure.subject(of: error)
    if let name = subject.blob, let blob = recipe.blobs.first(where: { $0.name == name }) {
      return .table(error, at: blob.position)
    }
    if let label = subject.partition,
      let spec = recipe.partitions.first(where: { $0.label == label })
    {
      return .table(error, at: spec.position)
    }
    return .table(error, at: recipeFilePosition)
  }
}

extension BuildPipeline {
  /// `Formats=simg` in a `[Partition]`: the partition alone as an Android sparse image named
  /// `SplitName=.img` (e.g. `system_a.img`), as `fastboot flash system_a` and `fastboot
  /// flashall` expect.
  func writePartitionSparseImages(_ layout: DiskLayout, rawPath: String, map: AllocationMap)
    throws -> [(file: String, format: String)]
  {
    var outputs: [(file: String, format: String)] = []
    let sparse = AndroidSparseOutput(
      blockSize: UInt32(clamping: recipe.output.sparseBlockSize),
      includeCRC: recipe.output.sparseCRC)
    for (i, spec) in recipe.partitions.enumerated() where spec.sparseImage {
      let part = layout.partitions[i]
      let name = SplitOutput.fileName(baseName: "", label: spec.splitName, index: part.index)
        .dropFirst()
      progress.update("writing \(name)")
      do {
        try sparse.writePartition(
          rawImage: rawPath, map: map, offset: part.offset, size: part.size,
          to: staging + "/" + name)
      } catch {
        throw failure(of: spec, error)
      }
      outputs.append((String(name), "android-sparse"))
    }
    return outputs
  }
}

extension BuildPipeline {
  /// The partitions of each VerityMatchKey= set, by role (the recipe checked there is one data
  /// and one hash partition per key).
  func veritySets() -> [(key: String, data: Int, hash: Int, signature: Int?)] {
    var sets: [String: [VerityRole: Int]] = [:]
    for (i, spec) in recipe.partitions.enumerated() where spec.verity != .off {
      if let key = spec.verityMatchKey { sets[key, default: [:]][spec.verity] = i }
    }
    return sets.keys.sorted().compactMap { key in
      guard let set = sets[key], let data = set[.data], let hash = set[.hash] else { return nil }
      return (key, data, hash, set[.signature])
    }
  }

  /// Reserves the hash tree's size for each hash partition (from its data partition's fixed
  /// size, or its content rounded up to the alignment) and 16 KiB for each signature partition.
  func reserveVerity() throws {
    for set in veritySets() {
      let data = recipe.partitions[set.data]
      var dataSize: UInt64
      switch data.size {
      case .fixed(let bytes): dataSize = bytes
      case .auto(let minBytes, _, let headroomBytes, let headroomPercent):
        let content = contents[set.data].size
        let percent = content.multipliedReportingOverflow(by: UInt64(max(headroomPercent, 0)))
        dataSize = max(
          content &+ headroomBytes &+ (percent.overflow ? 0 : percent.partialValue / 100), minBytes)
      case .grow:
        throw BuildFailure.unbuildable(
          label: data.label, at: data.position,
          message:
            "Verity=data partition '\(data.label)' cannot use Grow=yes: its hash partition is sized "
            + "before the disk is laid out",
          hint: "give it a fixed size (SizeMinBytes=SizeMaxBytes=)")
      }
      let grain = max(recipe.image.alignment, Verity.blockSize)
      dataSize = (dataSize + grain - 1) / grain * grain
      contents[set.hash] = .verity(reserved: Verity.hashSize(dataSize: dataSize))
      if let signature = set.signature {
        contents[signature] = .verity(reserved: Verity.signatureSize)
      }
    }
  }

  /// Builds every verity set on the written disk: `veritysetup format` over the data
  /// partition's bytes into the hash partition, the signature JSON, then the tables again with
  /// the UUIDs the root hash gives (unless UUID= set them).
  func applyVerity(_ layout: DiskLayout, rawPath: String, map: inout AllocationMap) throws
    -> DiskLayout
  {
    let sets = veritySets()
    guard !sets.isEmpty else { return layout }
    let fd = open(rawPath, O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { throw BuildFailure.io(path: rawPath, operation: "open", errno: errno) }
    defer { close(fd) }
    var uuids: [Int: GUID] = [:]
    for set in sets {
      let dataSpec = recipe.partitions[set.data]
      let hashSpec = recipe.partitions[set.hash]
      let data = layout.partitions[set.data]
      let hash = layout.partitions[set.hash]
      progress.update("\(dataSpec.label): building the verity hash tree")
      let scratch = staging + "/.verity-\(set.data)"
      try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(atPath: scratch) }
      let dataFile = try SplitOutput().write(
        rawImage: rawPath, partitions: [data], map: map, directory: scratch, baseName: "data")[0]
      let hashFile = scratch + "/hash.img"
      let rootHash: [UInt8]
      do {
        rootHash = try Verity.format(
          data: dataFile, hash: hashFile, salt: Verity.salt(seed: seed, matchKey: set.key),
          uuid: GUID.derived(seed: seed, label: "verity:" + set.key))
        try RawImageOutput.copyFile(
          hashFile, into: fd, imagePath: rawPath, offset: hash.offset, capacity: hash.size,
          label: hash.label)
      } catch {
        throw failure(of: hashSpec, error)
      }
      var st = stat()
      if stat(hashFile, &st) == 0 { map.insert(offset: hash.offset, length: UInt64(st.st_size)) }
      if let derived = Verity.partitionUUIDs(rootHash: rootHash) {
        if dataSpec.uuid == nil { uuids[data.index] = derived.data }
        if hashSpec.uuid == nil { uuids[hash.index] = derived.hash }
      }
      if let signatureIndex = set.signature {
        let signatureSpec = recipe.partitions[signatureIndex]
        let part = layout.partitions[signatureIndex]
        guard let key = verityPrivateKey, let certificate = verityCertificate else {
          throw BuildFailure.signingKeyMissing(
            label: signatureSpec.label, at: signatureSpec.position)
        }
        let json: [UInt8]
        do {
          json = try Verity.signatureJSON(
            rootHash: rootHash, privateKey: key, certificate: certificate, scratch: scratch)
        } catch {
          throw failure(of: signatureSpec, error)
        }
        guard UInt64(json.count) <= part.size else {
          throw doesNotFit(signatureSpec, needed: UInt64(json.count), has: part.size)
        }
        try Verity.writeSignature(json, to: fd, at: part.offset, path: rawPath)
        map.insert(offset: part.offset, length: UInt64(json.count))
      }
    }
    let updated = layout.replacingUUIDs(uuids)
    _ = try writeTables(updated, to: fd, path: rawPath)
    return updated
  }
}

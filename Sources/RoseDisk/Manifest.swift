import Foundation

/// `manifest.json`: what was built. Encoded with sorted keys and stable formatting, so the
/// same inputs give the same bytes.
public struct Manifest: Codable, Sendable, Equatable {
  public struct Partition: Codable, Sendable, Equatable {
    public var index: Int
    public var label: String
    public var type: GUID
    /// DPS name of the type when it has one.
    public var typeName: String?
    public var uuid: GUID
    public var attributes: UInt64
    public var firstLBA: UInt64
    public var lastLBA: UInt64
    public var offset: UInt64
    public var size: UInt64
    /// Bytes of the partition marked used in the allocation map.
    public var usedBytes: UInt64
    /// usedBytes / size in percent, two decimals.
    public var fill: Double
  }

  public struct Output: Codable, Sendable, Equatable {
    /// File name relative to the manifest's directory.
    public var file: String
    /// "raw", "zstd", "bmap", "android-sparse", "split", ...
    public var format: String
    public var size: UInt64
    public var sha256: String
    /// What `sha256` covers: absent for the whole file; `"mapped"` for a sparse output (the raw
    /// disk, a split partition image), where it is the SHA-256 of the bytes of the mapped ranges,
    /// concatenated in ascending order (the manifest's `mappedRanges`; for a split image those
    /// inside its partition, moved by the partition's offset), and every other byte is zero.
    /// A verifier hashes what was written, never the holes: a 1 TB disk costs its content.
    public var sha256Scope: String?

    public init(
      file: String, format: String, size: UInt64, sha256: String, sha256Scope: String? = nil
    ) {
      self.file = file
      self.format = format
      self.size = size
      self.sha256 = sha256
      self.sha256Scope = sha256Scope
    }
  }

  public var formatVersion: Int
  public var diskUUID: GUID
  public var sectorSize: UInt64
  public var alignment: UInt64
  public var diskSize: UInt64
  public var partitions: [Partition]
  /// The allocation map of the disk: `[offset, length]` byte ranges, ascending. Everything else
  /// is a hole (zeros). Shared with the bmap; the digests of sparse outputs cover these ranges.
  public var mappedRanges: [[UInt64]]
  public var outputs: [Output]

  /// Describes a layout, using `map` for the per-partition fill.
  public init(layout: DiskLayout, map: AllocationMap, outputs: [Output] = []) {
    formatVersion = 1
    diskUUID = layout.diskGUID
    sectorSize = layout.sectorSize
    alignment = layout.alignment
    diskSize = layout.diskSize
    partitions = layout.partitions.map { p in
      let used = map.usedBytes(inRange: p.offset, length: p.size)
      let basisPoints =
        p.size == 0 ? 0 : p.size.dividingFullWidth(used.multipliedFullWidth(by: 10000)).quotient
      let fill = Double(basisPoints) / 100
      return Partition(
        index: p.index, label: p.label, type: p.type, typeName: PartitionTypes.name(for: p.type),
        uuid: p.uuid,
        attributes: p.attributes, firstLBA: p.firstLBA, lastLBA: p.lastLBA, offset: p.offset,
        size: p.size,
        usedBytes: used, fill: fill)
    }
    mappedRanges = map.extents.map { [$0.offset, $0.length] }
    self.outputs = outputs
  }

  /// Describes an output file (size and SHA-256); `file` in the entry is its last path component.
  /// With `mapped`, the file is sparse and the digest covers only those byte ranges of it
  /// (`sha256Scope` "mapped"), so its cost follows the content, not the file's size.
  public static func describeOutput(
    path: String, format: String, mapped: [AllocationMap.Extent]? = nil
  ) throws -> Output {
    let name = URL(fileURLWithPath: path).lastPathComponent
    let size = try FileIO.size(path: path)
    guard let mapped else {
      return Output(
        file: name, format: format, size: size, sha256: try SHA256Stream.file(path: path))
    }
    return Output(
      file: name, format: format, size: size,
      sha256: try SHA256Stream.ranges(path: path, mapped), sha256Scope: "mapped")
  }

  /// The mapped ranges of partition `index` (1-based), moved to the start of its split image.
  public func mappedRanges(ofPartition index: Int) -> [AllocationMap.Extent] {
    guard let p = partitions.first(where: { $0.index == index }) else { return [] }
    var map = AllocationMap()
    for r in mappedRanges where r.count == 2 { map.insert(offset: r[0], length: r[1]) }
    return map.extents(inRange: p.offset, length: p.size).map {
      AllocationMap.Extent(offset: $0.offset - p.offset, length: $0.length)
    }
  }

  /// Deterministic JSON (sorted keys, pretty-printed, trailing newline).
  public func encoded() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    var data = try encoder.encode(self)
    data.append(0x0A)
    return data
  }

  /// Writes the manifest atomically.
  public func write(to path: String) throws {
    let bytes = [UInt8](try encoded())
    let file = try AtomicOutputFile(path: path)
    try FileIO.write(file.fd, bytes, at: 0, path: file.temporaryPath)
    try file.commit()
  }
}

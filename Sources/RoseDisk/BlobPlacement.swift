import Foundation

/// A raw file at a fixed byte offset outside the partition table (u-boot, SPL, a boot ROM
/// header), as genimage's `in-partition-table = false` partitions.
public struct PlacedBlob: Sendable, Equatable {
  public var name: String
  public var source: String
  public var offset: UInt64
  public var size: UInt64
  public var end: UInt64 { offset + size }

  public init(name: String, source: String, offset: UInt64, size: UInt64) {
    self.name = name
    self.source = source
    self.offset = offset
    self.size = size
  }
}

/// Checks blobs against the table areas, the partitions and each other, then writes them.
public enum BlobPlacement {
  /// Refuses a blob that overlaps the MBR, a GPT area (for `gpt`/`hybrid`), a partition or
  /// another blob, or that ends beyond the disk; the error names both byte ranges.
  public static func check(
    _ blobs: [PlacedBlob], layout: DiskLayout, table: PartitionTableKind
  ) throws {
    var others = MBRWriter.tableAreas(layout, kind: table)
    for p in layout.partitions {
      others.append(("partition '\(p.label)'", p.offset, p.end))
    }
    for (i, blob) in blobs.enumerated() {
      let (end, overflow) = blob.offset.addingReportingOverflow(blob.size)
      if overflow || end > layout.diskSize {
        throw TableError.blobBeyondDisk(
          blob: blob.name, end: overflow ? UInt64.max : end, diskSize: layout.diskSize)
      }
      let earlier = blobs[..<i].map { ("blob '\($0.name)'", $0.offset, $0.end) }
      for other in others + earlier where blob.offset < other.2 && other.1 < end {
        throw TableError.blobOverlap(
          blob: blob.name, start: blob.offset, end: end, other: other.0, otherStart: other.1,
          otherEnd: other.2)
      }
    }
  }

  /// Writes every blob byte for byte (zero blocks included, so the allocation map can mark the
  /// whole blob) and returns the map of their ranges.
  public static func write(_ blobs: [PlacedBlob], to fd: Int32, imagePath: String) throws
    -> AllocationMap
  {
    var map = AllocationMap()
    let buffer = FileIO.allocate(FileIO.chunkSize)
    defer { buffer.deallocate() }
    for blob in blobs {
      let input = try FileIO.open(blob.source, flags: O_RDONLY)
      defer { close(input) }
      var position: UInt64 = 0
      while position < blob.size {
        let n = try FileIO.read(input, into: buffer, at: position, path: blob.source)
        if n == 0 { break }
        let count = Int(min(UInt64(n), blob.size - position))
        try FileIO.write(
          fd, UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: blob.offset + position,
          path: imagePath)
        position += UInt64(count)
      }
      guard position == blob.size else {
        throw DiskError.invalidInput(path: blob.source, reason: "file shrank while being copied")
      }
      map.insert(offset: blob.offset, length: blob.size)
    }
    return map
  }
}

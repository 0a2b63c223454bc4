import Foundation

/// Per-partition image files `NAME.PARTLABEL.img` (like repart's `--split=yes`), each as
/// big as its partition and sparse: only the used ranges of the map are copied.
public struct SplitOutput: Sendable {
  public init() {}

  /// The file name for a partition: label with `/`, NUL and leading dots replaced; an empty
  /// label becomes `partN`.
  public static func fileName(baseName: String, label: String, index: Int) -> String {
    var safe = String(label.map { $0 == "/" || $0 == "\0" || $0.isWhitespace ? "_" : $0 })
    while safe.hasPrefix(".") { safe = "_" + safe.dropFirst() }
    if safe.isEmpty { safe = "part\(index)" }
    return "\(baseName).\(safe).img"
  }

  /// Writes one file per partition into `directory`; returns their paths in table order.
  @discardableResult
  public func write(
    rawImage: String, partitions: [PlannedPartition], map: AllocationMap, directory: String,
    baseName: String
  ) throws -> [String] {
    let input = try FileIO.open(rawImage, flags: O_RDONLY)
    defer { close(input) }
    let buffer = FileIO.allocate(FileIO.chunkSize)
    defer { buffer.deallocate() }
    var paths: [String] = []
    for partition in partitions {
      let path =
        directory + "/"
        + SplitOutput.fileName(baseName: baseName, label: partition.label, index: partition.index)
      let file = try AtomicOutputFile(path: path, size: partition.size)
      for extent in map.extents(inRange: partition.offset, length: partition.size) {
        var offset = extent.offset
        while offset < extent.end {
          let count = Int(min(UInt64(buffer.count), extent.end - offset))
          let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
          try RawImageOutput.readMapped(
            input, path: rawImage, map: nil, offset: offset, into: chunk)
          try RawImageOutput.writeSkippingZeroBlocks(
            UnsafeRawBufferPointer(chunk), to: file.fd, path: file.temporaryPath,
            at: offset - partition.offset)
          offset += UInt64(count)
        }
      }
      try file.commit()
      paths.append(path)
    }
    return paths
  }
}

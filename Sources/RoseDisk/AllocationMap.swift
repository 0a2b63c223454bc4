/// Sorted, merged list of the used byte ranges of a disk image. Everything outside the map
/// is a hole: it reads as zeros in the raw image, is skipped by bmap and becomes DON'T CARE
/// in Android sparse images. Memory is O(number of ranges).
///
/// Producers: the RoseFS builder reports its used blocks (shift them by the partition offset
/// with `insert(_:shiftedBy:)`), raw partition contents are inserted whole, and the GPT areas
/// come from `DiskLayout.tableMap`.
public struct AllocationMap: Sendable, Equatable, CustomStringConvertible {
  /// A half-open byte range `[offset, offset + length)`.
  public struct Extent: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let offset: UInt64
    public let length: UInt64
    public var end: UInt64 { offset + length }

    public init(offset: UInt64, length: UInt64) {
      self.offset = offset
      self.length = length
    }

    public var description: String { "[\(offset), \(end))" }
  }

  /// Non-overlapping, non-touching extents in ascending order.
  public private(set) var extents: [Extent] = []

  public init() {}

  /// Builds a map from extents in any order, in O(n log n).
  public init<S: Sequence>(unsorted: S) where S.Element == Extent {
    let sorted = unsorted.filter { $0.length > 0 }.sorted { $0.offset < $1.offset }
    var merged: [Extent] = []
    merged.reserveCapacity(sorted.count)
    for extent in sorted {
      let clamped = AllocationMap.clamp(extent.offset, extent.length)
      if let last = merged.last, clamped.offset <= last.end {
        if clamped.end > last.end {
          merged[merged.count - 1] = Extent(offset: last.offset, length: clamped.end - last.offset)
        }
      } else {
        merged.append(clamped)
      }
    }
    extents = merged
  }

  private static func clamp(_ offset: UInt64, _ length: UInt64) -> Extent {
    let (_, overflow) = offset.addingReportingOverflow(length)
    return Extent(offset: offset, length: overflow ? UInt64.max - offset : length)
  }

  /// Marks `[offset, offset + length)` used. Appending in ascending order is O(1);
  /// otherwise O(n) for the array shift.
  public mutating func insert(offset: UInt64, length: UInt64) {
    guard length > 0 else { return }
    let new = AllocationMap.clamp(offset, length)
    if let last = extents.last, new.offset > last.end {
      extents.append(new)
      return
    }
    if extents.isEmpty {
      extents.append(new)
      return
    }
    // First extent whose end reaches the new start (touching extents merge).
    var lo = 0
    var hi = extents.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if extents[mid].end < new.offset { lo = mid + 1 } else { hi = mid }
    }
    var j = lo
    var start = new.offset
    var end = new.end
    while j < extents.count && extents[j].offset <= end {
      start = min(start, extents[j].offset)
      end = max(end, extents[j].end)
      j += 1
    }
    extents.replaceSubrange(lo..<j, with: [Extent(offset: start, length: end - start)])
  }

  /// Marks an extent used.
  public mutating func insert(_ extent: Extent) {
    insert(offset: extent.offset, length: extent.length)
  }

  /// Adds all extents of `other`, each moved by `shift` bytes (for partition-relative maps).
  public mutating func insert(_ other: AllocationMap, shiftedBy shift: UInt64 = 0) {
    if extents.isEmpty && shift == 0 {
      extents = other.extents
      return
    }
    let moved = other.extents.map { Extent(offset: $0.offset &+ shift, length: $0.length) }
    self = AllocationMap(unsorted: extents + moved)
  }

  /// Total used bytes.
  public var usedBytes: UInt64 { extents.reduce(0) { $0 + $1.length } }

  /// Whether the byte at `offset` is used.
  public func contains(_ offset: UInt64) -> Bool {
    let i = firstIndex(endingAfter: offset)
    return i < extents.count && extents[i].offset <= offset
  }

  /// Index of the first extent with `end > offset`.
  func firstIndex(endingAfter offset: UInt64) -> Int {
    var lo = 0
    var hi = extents.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if extents[mid].end <= offset { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }

  /// The used extents inside `[offset, offset + length)`, clipped to it.
  public func extents(inRange offset: UInt64, length: UInt64) -> [Extent] {
    var result: [Extent] = []
    let end = AllocationMap.clamp(offset, length).end
    var i = firstIndex(endingAfter: offset)
    while i < extents.count && extents[i].offset < end {
      let s = max(extents[i].offset, offset)
      let e = min(extents[i].end, end)
      result.append(Extent(offset: s, length: e - s))
      i += 1
    }
    return result
  }

  /// Used bytes inside `[offset, offset + length)`.
  public func usedBytes(inRange offset: UInt64, length: UInt64) -> UInt64 {
    extents(inRange: offset, length: length).reduce(0) { $0 + $1.length }
  }

  /// The holes of an image of `size` bytes.
  public func holes(imageSize size: UInt64) -> [Extent] {
    var result: [Extent] = []
    var cursor: UInt64 = 0
    for extent in extents where extent.offset < size {
      if extent.offset > cursor {
        result.append(Extent(offset: cursor, length: extent.offset - cursor))
      }
      cursor = max(cursor, min(extent.end, size))
    }
    if cursor < size { result.append(Extent(offset: cursor, length: size - cursor)) }
    return result
  }

  /// Used block ranges `(first, last)` (inclusive block numbers) for `blockSize`, with every
  /// extent widened to whole blocks and clipped to the blocks of an image of `imageSize`.
  public func blockRanges(blockSize: UInt64, imageSize: UInt64) -> [(first: UInt64, last: UInt64)] {
    let blocks = (imageSize + blockSize - 1) / blockSize
    var result: [(first: UInt64, last: UInt64)] = []
    for extent in extents {
      let first = extent.offset / blockSize
      if first >= blocks { break }
      let last = min((extent.end - 1) / blockSize, blocks - 1)
      if let previous = result.last, first <= previous.last + 1 {
        result[result.count - 1].last = max(previous.last, last)
      } else {
        result.append((first, last))
      }
    }
    return result
  }

  public var description: String {
    extents.map(\.description).joined(separator: " ")
  }
}

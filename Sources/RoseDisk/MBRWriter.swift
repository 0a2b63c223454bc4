import Foundation

/// Which partition table a disk carries (`PartitionTable=`).
public enum PartitionTableKind: String, Sendable, Equatable, CaseIterable {
  /// GUID Partition Table with a protective MBR.
  case gpt
  /// A DOS partition table of up to four primary partitions, nothing else.
  case mbr
  /// A GPT whose MBR also lists up to three of the partitions (plus the 0xEE entry over the GPT
  /// header and entries), as genimage's `partition-table-type = "hybrid"` writes it.
  case hybrid
}

/// One 16-byte entry of a DOS partition table (at byte 446 + 16 * n of sector 0).
public struct MBREntry: Sendable, Equatable {
  public var bootable: Bool
  public var type: UInt8
  public var firstLBA: UInt32
  public var sectorCount: UInt32

  public init(bootable: Bool, type: UInt8, firstLBA: UInt32, sectorCount: UInt32) {
    self.bootable = bootable
    self.type = type
    self.firstLBA = firstLBA
    self.sectorCount = sectorCount
  }

  public static let size = 16

  /// The entry bytes: active flag, first CHS, type, last CHS, first LBA, sector count.
  public func encode() -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: MBREntry.size)
    bytes[0] = bootable ? 0x80 : 0x00
    bytes.replaceSubrange(1..<4, with: MBREntry.chs(firstLBA))
    bytes[4] = type
    let last = sectorCount == 0 ? firstLBA : firstLBA &+ sectorCount &- 1
    bytes.replaceSubrange(5..<8, with: MBREntry.chs(last))
    bytes.storeLE(firstLBA, at: 8)
    bytes.storeLE(sectorCount, at: 12)
    return bytes
  }

  /// Decodes an entry; nil for an unused one (type 0).
  public static func decode(_ bytes: ArraySlice<UInt8>) -> MBREntry? {
    let b = Array(bytes)
    guard b.count == size, b[4] != 0 else { return nil }
    func u32(_ at: Int) -> UInt32 {
      UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
    return MBREntry(bootable: b[0] & 0x80 != 0, type: b[4], firstLBA: u32(8), sectorCount: u32(12))
  }

  /// Cylinder/head/sector of an LBA for 255 heads and 63 sectors per track, as genimage computes
  /// it (`hdimage_setup_chs`): the cylinder is not clamped at 1023 (bits 8-9 go to bits 6-7 of
  /// the sector byte, higher bits are dropped), and LBA 0 gives sector 0.
  public static func chs(_ lba: UInt32) -> [UInt8] {
    let heads: UInt32 = 255
    let sectors: UInt32 = 63
    let head = UInt8(truncatingIfNeeded: (lba / sectors) % heads)
    let cylinder = lba / (sectors * heads)
    let sector = lba > 0 ? lba % sectors + 1 : 0
    return [
      head, UInt8(truncatingIfNeeded: ((cylinder & 0x300) >> 2) | (sector & 0xFF)),
      UInt8(truncatingIfNeeded: cylinder & 0xFF),
    ]
  }
}

/// Errors of the MBR, hybrid table and blob placement; each names the partition or blob.
public enum TableError: Error, CustomStringConvertible, Equatable, Sendable {
  /// A DOS table holds four primary partitions; `label` is the first one that does not fit.
  case tooManyPrimaries(label: String, count: Int)
  /// A hybrid MBR holds three partitions next to the 0xEE entry.
  case tooManyHybrid(labels: [String])
  /// A partition starts or ends beyond 2^32 sectors, which a DOS entry cannot express.
  case beyondMBRLimit(label: String, endSector: UInt64)
  /// A blob overlaps a table area, a partition or another blob.
  case blobOverlap(
    blob: String, start: UInt64, end: UInt64, other: String, otherStart: UInt64,
    otherEnd: UInt64)
  /// A blob ends beyond the end of the disk.
  case blobBeyondDisk(blob: String, end: UInt64, diskSize: UInt64)

  public var description: String {
    switch self {
    case .tooManyPrimaries(let label, let count):
      return
        "partition '\(label)' would be primary partition \(count): an MBR holds at most 4; "
        + "use PartitionTable=gpt or hybrid, or merge partitions"
    case .tooManyHybrid(let labels):
      return
        "\(labels.count) partitions have MBRType= (\(labels.map { "'\($0)'" }.joined(separator: ", "))): "
        + "a hybrid MBR mirrors at most 3 next to its 0xEE entry; remove MBRType= from the others"
    case .beyondMBRLimit(let label, let end):
      return
        "partition '\(label)' ends at sector \(end), beyond the 2^32 sectors an MBR entry can "
        + "address; use PartitionTable=gpt"
    case .blobOverlap(let blob, let start, let end, let other, let otherStart, let otherEnd):
      return
        "blob '\(blob)' at bytes [\(start), \(end)) overlaps \(other) at bytes "
        + "[\(otherStart), \(otherEnd)); move its Offset= or the partition"
    case .blobBeyondDisk(let blob, let end, let diskSize):
      return
        "blob '\(blob)' ends at byte \(end), beyond the end of the disk (\(diskSize) bytes); "
        + "raise DiskSize= or lower its Offset="
    }
  }
}

/// Writes DOS partition tables: a plain MBR of up to four primaries, or the MBR of a hybrid
/// GPT disk. Only bytes 440-511 of sector 0 are written (signature, entries, 0x55AA), as
/// genimage writes them, so boot code a blob put into bytes 0-439 survives.
public enum MBRWriter {
  public static let maxPrimaries = 4
  public static let maxHybrid = 3
  /// The protective/hybrid type of the GPT entry.
  public static let gptProtectiveType: UInt8 = 0xEE

  /// The type byte for a partition without `MBRType=`: 0xEF for an ESP, 0x82 for swap, 0x0C
  /// (FAT32 LBA) for a FAT file system, 0x83 (Linux) for everything else.
  public static func defaultType(gptType: GUID, isFAT: Bool) -> UInt8 {
    if let esp = try? GUID(parsing: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), gptType == esp {
      return 0xEF
    }
    if let swap = try? GUID(parsing: "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"), gptType == swap {
      return 0x82
    }
    return isFAT ? 0x0C : 0x83
  }

  /// The disk signature (bytes 440-443) derived from the image seed.
  public static func diskSignature(seed: String) -> UInt32 {
    let bytes = GUID.derived(seed: seed, label: "\u{0}rosepack-mbr").canonicalBytes
    return UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16
      | UInt32(bytes[3]) << 24
  }

  /// The entries of a plain MBR disk, one per planned partition in table order.
  public static func entries(
    layout: DiskLayout, types: [UInt8], bootable: [Bool]
  ) throws -> [MBREntry] {
    var result: [MBREntry] = []
    for (i, p) in layout.partitions.enumerated() {
      guard i < maxPrimaries else {
        throw TableError.tooManyPrimaries(label: p.label, count: i + 1)
      }
      result.append(
        try entry(
          p, type: i < types.count ? types[i] : 0x83, bootable: i < bootable.count && bootable[i]))
    }
    return result
  }

  /// The entries of a hybrid MBR: the partitions whose `mirror` flag is set (at most three, in
  /// table order), then the 0xEE entry over the primary GPT header and entry array (LBA 1 to
  /// the end of the entries), as genimage places it.
  public static func hybridEntries(
    layout: DiskLayout, types: [UInt8?], bootable: [Bool]
  ) throws -> [MBREntry] {
    var result: [MBREntry] = []
    var mirrored: [String] = []
    for (i, p) in layout.partitions.enumerated() {
      guard i < types.count, let type = types[i] else { continue }
      mirrored.append(p.label)
      result.append(try entry(p, type: type, bootable: i < bootable.count && bootable[i]))
    }
    guard mirrored.count <= maxHybrid else { throw TableError.tooManyHybrid(labels: mirrored) }
    result.append(
      MBREntry(
        bootable: false, type: gptProtectiveType, firstLBA: 1,
        sectorCount: UInt32(truncatingIfNeeded: 1 + layout.entryArraySectors)))
    return result
  }

  static func entry(_ p: PlannedPartition, type: UInt8, bootable: Bool) throws -> MBREntry {
    let count = p.lastLBA - p.firstLBA + 1
    guard p.lastLBA < UInt64(UInt32.max), count <= UInt64(UInt32.max) else {
      throw TableError.beyondMBRLimit(label: p.label, endSector: p.lastLBA + 1)
    }
    return MBREntry(
      bootable: bootable, type: type, firstLBA: UInt32(p.firstLBA), sectorCount: UInt32(count))
  }

  /// Bytes 440-511 of sector 0: disk signature, two zero bytes, four entries, 0x55AA.
  public static func encodeTail(signature: UInt32, entries: [MBREntry]) -> [UInt8] {
    var tail = [UInt8](repeating: 0, count: 72)
    tail.storeLE(signature, at: 0)
    for (i, e) in entries.prefix(4).enumerated() {
      tail.replaceSubrange((6 + 16 * i)..<(22 + 16 * i), with: e.encode())
    }
    tail[70] = 0x55
    tail[71] = 0xAA
    return tail
  }

  /// Writes the table tail into sector 0 of `fd`.
  public static func write(signature: UInt32, entries: [MBREntry], to fd: Int32, path: String)
    throws
  {
    try FileIO.write(fd, encodeTail(signature: signature, entries: entries), at: 440, path: path)
  }

  /// Byte ranges a table kind occupies on `layout`'s disk, for blob overlap checks and the
  /// allocation map: the MBR sector for `mbr`; pMBR, GPT headers and entry arrays otherwise.
  public static func tableAreas(_ layout: DiskLayout, kind: PartitionTableKind) -> [(
    name: String, start: UInt64, end: UInt64
  )] {
    let ss = layout.sectorSize
    switch kind {
    case .mbr:
      return [("the MBR", 0, ss)]
    case .gpt, .hybrid:
      return [
        ("the MBR", 0, ss),
        ("the primary GPT", ss, (2 + layout.entryArraySectors) * ss),
        ("the backup GPT", layout.backupEntriesLBA * ss, layout.diskSize),
      ]
    }
  }
}

/// A DOS partition table read back from sector 0.
public struct MBRTable: Sendable, Equatable {
  public let signature: UInt32
  /// Used entries with their 1-based slot number.
  public let entries: [(slot: Int, entry: MBREntry)]

  public static func == (a: MBRTable, b: MBRTable) -> Bool {
    a.signature == b.signature && a.entries.map(\.slot) == b.entries.map(\.slot)
      && a.entries.map(\.entry) == b.entries.map(\.entry)
  }

  /// Parses sector 0; nil without the 0x55AA signature.
  public static func parse(_ sector: [UInt8]) -> MBRTable? {
    guard sector.count >= 512, sector[510] == 0x55, sector[511] == 0xAA else { return nil }
    let signature =
      UInt32(sector[440]) | UInt32(sector[441]) << 8 | UInt32(sector[442]) << 16
      | UInt32(sector[443]) << 24
    var entries: [(slot: Int, entry: MBREntry)] = []
    for i in 0..<4 {
      if let e = MBREntry.decode(sector[(446 + 16 * i)..<(462 + 16 * i)]) {
        entries.append((i + 1, e))
      }
    }
    return MBRTable(signature: signature, entries: entries)
  }
}

import Foundation

/// A partition read back from a disk image's GPT.
public struct GPTPartition: Sendable, Equatable, Codable {
  /// GPT entry number, 1-based.
  public let index: Int
  public let label: String
  public let type: GUID
  /// DPS name of the type, if it is one ("esp", "root-x86-64", ...).
  public let typeName: String?
  public let uuid: GUID
  public let firstLBA: UInt64
  /// Inclusive.
  public let lastLBA: UInt64
  public let attributes: UInt64
  /// Byte offset in the image.
  public let offset: UInt64
  /// Size in bytes.
  public let size: UInt64
}

/// A validated GPT.
public struct GPTTable: Sendable, Equatable {
  public let path: String
  public let sectorSize: UInt64
  public let imageSize: UInt64
  public let diskGUID: GUID
  public let firstUsableLBA: UInt64
  public let lastUsableLBA: UInt64
  /// LBA of the backup header.
  public let alternateLBA: UInt64
  public let entryCount: UInt32
  public let entrySize: UInt32
  public let partitions: [GPTPartition]
  /// Non-fatal findings, e.g. the backup header is not in the last sector.
  public let warnings: [String]
  /// The partition table kind: "gpt", "hybrid" (a GPT with an MBR mirroring partitions, as genimage
  /// makes it) or "mbr" (a DOS table without a GPT).
  public var scheme = "gpt"

  /// Selects a partition by label or by 1-based index (`ls --partition LABEL|N`).
  public func partition(_ selector: String) throws -> GPTPartition {
    if let p = partitions.first(where: { $0.label == selector }) { return p }
    if let n = Int(selector), let p = partitions.first(where: { $0.index == n }) { return p }
    throw DiskError.partitionNotFound(
      path: path, selector: selector, available: partitions.map { "\($0.index) '\($0.label)'" })
  }
}

/// Parses and validates the GPT of a disk image: both headers (signature, size, CRC, MyLBA,
/// usable range), both entry arrays (CRC) and the partitions (inside the usable range, no
/// overlaps). Any inconsistency is an error; the backup is compared with the primary.
public enum GPTReader {
  /// Reads the GPT of the image at `path`. With `sectorSize` nil, 512 then 4096 are tried.
  /// With `recoverFromBackup`, an invalid primary GPT is reported in `warnings` and the
  /// backup GPT in the last sector is used instead (for `inspect` of damaged images).
  public static func read(path: String, sectorSize: UInt64? = nil, recoverFromBackup: Bool = false)
    throws -> GPTTable
  {
    let fd = try FileIO.open(path, flags: O_RDONLY)
    defer { close(fd) }
    return try read(
      fd: fd, path: path, sectorSize: sectorSize, recoverFromBackup: recoverFromBackup)
  }

  /// Reads the GPT of an open image.
  public static func read(
    fd: Int32, path: String, sectorSize: UInt64? = nil, recoverFromBackup: Bool = false
  ) throws -> GPTTable {
    let imageSize = try FileIO.size(fd, path: path)
    let candidates: [UInt64] = sectorSize.map { [$0] } ?? [512, 4096]
    let signature = Array("EFI PART".utf8)
    var detected: UInt64? = nil
    for ss in candidates where imageSize >= 2 * ss {
      if try readBytes(fd, path: path, offset: ss, count: 8) == signature {
        detected = ss
        break
      }
    }
    if detected == nil && recoverFromBackup {
      for ss in candidates where imageSize >= 2 * ss {
        if try readBytes(fd, path: path, offset: (imageSize / ss - 1) * ss, count: 8) == signature {
          detected = ss
          break
        }
      }
    }
    if detected == nil, let table = try readMBR(fd: fd, path: path, imageSize: imageSize) {
      return table
    }
    guard let ss = detected else {
      let tried = candidates.map { "byte \($0)" }.joined(separator: " or ")
      throw DiskError.invalidGPT(
        path: path, reason: "no 'EFI PART' signature at \(tried); not a GPT disk image")
    }
    let totalSectors = imageSize / ss
    var warnings: [String] = []

    let mbr = try readBytes(fd, path: path, offset: 0, count: 512)
    // A hybrid MBR (genimage) lists its 0xEE entry after the mirrored partitions.
    if mbr[510] != 0x55 || mbr[511] != 0xAA
      || !(0..<4).contains(where: { mbr[446 + 16 * $0 + 4] == 0xEE })
    {
      warnings.append("protective MBR is missing or has no 0xEE partition")
    }

    var primary: Header
    do {
      let header = try readHeader(
        fd, path: path, lba: 1, sectorSize: ss, totalSectors: totalSectors, name: "primary")
      primary = header
      let backup = try readHeader(
        fd, path: path, lba: primary.alternateLBA, sectorSize: ss, totalSectors: totalSectors,
        name: "backup")
      if backup.alternateLBA != 1 || backup.firstUsable != primary.firstUsable
        || backup.lastUsable != primary.lastUsable || backup.diskGUID != primary.diskGUID
        || backup.entryCount != primary.entryCount || backup.entrySize != primary.entrySize
        || backup.entriesCRC != primary.entriesCRC
      {
        throw DiskError.invalidGPT(
          path: path, reason: "backup GPT header does not match the primary header")
      }
      if primary.alternateLBA != totalSectors - 1 {
        warnings.append(
          "backup GPT header is at LBA \(primary.alternateLBA), not at the last LBA \(totalSectors - 1)"
        )
      }
    } catch let error as DiskError where recoverFromBackup {
      primary = try readHeader(
        fd, path: path, lba: totalSectors - 1, sectorSize: ss, totalSectors: totalSectors,
        name: "backup")
      warnings.append("\(error.description); using the backup GPT at LBA \(totalSectors - 1)")
    }

    var partitions: [GPTPartition] = []
    let entries = primary.entries
    let zero = [UInt8](repeating: 0, count: 16)
    for i in 0..<Int(primary.entryCount) {
      let base = i * Int(primary.entrySize)
      let typeBytes = Array(entries[base..<(base + 16)])
      if typeBytes == zero { continue }
      guard let type = GUID(gptBytes: typeBytes),
        let uuid = GUID(gptBytes: Array(entries[(base + 16)..<(base + 32)]))
      else { continue }
      let first = entries.loadLE(UInt64.self, at: base + 32)
      let last = entries.loadLE(UInt64.self, at: base + 40)
      let attributes = entries.loadLE(UInt64.self, at: base + 48)
      var units: [UInt16] = []
      for j in 0..<36 {
        let unit = entries.loadLE(UInt16.self, at: base + 56 + 2 * j)
        if unit == 0 { break }
        units.append(unit)
      }
      let label = String(decoding: units, as: UTF16.self)
      guard first <= last, first >= primary.firstUsable, last <= primary.lastUsable else {
        throw DiskError.invalidGPT(
          path: path,
          reason:
            "partition \(i + 1) '\(label)' spans LBA \(first)-\(last), outside the usable LBAs "
            + "\(primary.firstUsable)-\(primary.lastUsable)")
      }
      partitions.append(
        GPTPartition(
          index: i + 1, label: label, type: type, typeName: PartitionTypes.name(for: type),
          uuid: uuid,
          firstLBA: first, lastLBA: last, attributes: attributes, offset: first * ss,
          size: (last - first + 1) * ss))
    }
    let sorted = partitions.sorted { $0.firstLBA < $1.firstLBA }
    for (a, b) in zip(sorted, sorted.dropFirst()) where b.firstLBA <= a.lastLBA {
      throw DiskError.invalidGPT(path: path, reason: "partitions \(a.index) and \(b.index) overlap")
    }
    return GPTTable(
      path: path, sectorSize: ss, imageSize: imageSize, diskGUID: primary.diskGUID,
      firstUsableLBA: primary.firstUsable, lastUsableLBA: primary.lastUsable,
      alternateLBA: primary.alternateLBA,
      entryCount: primary.entryCount, entrySize: primary.entrySize, partitions: partitions,
      warnings: warnings,
      scheme: (0..<4).contains(where: {
        mbr[446 + 16 * $0 + 4] != 0 && mbr[446 + 16 * $0 + 4] != 0xEE
      })
        ? "hybrid" : "gpt")
  }

  /// A disk with a DOS partition table and no GPT, read as a table of 512-byte sectors whose
  /// partitions have no label, the zero type GUID and the type name `mbr-0xNN`, so that
  /// `inspect`, `ls` and `--partition N` work on MBR images too.
  static func readMBR(fd: Int32, path: String, imageSize: UInt64) throws -> GPTTable? {
    guard imageSize >= 512,
      let table = MBRTable.parse(try readBytes(fd, path: path, offset: 0, count: 512)),
      !table.entries.isEmpty,
      !table.entries.contains(where: { $0.entry.type == MBRWriter.gptProtectiveType })
    else { return nil }
    let ss: UInt64 = 512
    var partitions: [GPTPartition] = []
    for (slot, e) in table.entries {
      let first = UInt64(e.firstLBA)
      let count = UInt64(e.sectorCount)
      guard count > 0, (first + count) * ss <= imageSize else {
        throw DiskError.invalidGPT(
          path: path,
          reason: "MBR partition \(slot) spans sectors \(first)-\(first + count), beyond the "
            + "image (\(imageSize / ss) sectors)")
      }
      let hex = String(e.type, radix: 16)
      partitions.append(
        GPTPartition(
          index: slot, label: "", type: .zero,
          typeName: "mbr-0x" + (hex.count == 1 ? "0" + hex : hex), uuid: .zero, firstLBA: first,
          lastLBA: first + count - 1, attributes: e.bootable ? 1 << 2 : 0, offset: first * ss,
          size: count * ss))
    }
    return GPTTable(
      path: path, sectorSize: ss, imageSize: imageSize, diskGUID: .zero, firstUsableLBA: 1,
      lastUsableLBA: imageSize / ss - 1, alternateLBA: 0, entryCount: 4, entrySize: 16,
      partitions: partitions, warnings: ["DOS partition table (MBR), no GPT"], scheme: "mbr")
  }

  struct Header {
    var alternateLBA: UInt64
    var firstUsable: UInt64
    var lastUsable: UInt64
    var diskGUID: GUID
    var entryCount: UInt32
    var entrySize: UInt32
    var entriesCRC: UInt32
    var entries: [UInt8]
  }

  static func readBytes(_ fd: Int32, path: String, offset: UInt64, count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    try bytes.withUnsafeMutableBytes {
      try FileIO.readExactly(fd, into: $0, at: offset, path: path)
    }
    return bytes
  }

  static func readHeader(
    _ fd: Int32, path: String, lba: UInt64, sectorSize ss: UInt64, totalSectors: UInt64,
    name: String
  ) throws -> Header {
    func fail(_ reason: String) -> DiskError {
      DiskError.invalidGPT(path: path, reason: "\(name) header at LBA \(lba): \(reason)")
    }
    guard lba < totalSectors else {
      throw fail("beyond the end of the image (\(totalSectors) sectors)")
    }
    var h = try readBytes(fd, path: path, offset: lba * ss, count: Int(ss))
    guard Array(h[0..<8]) == Array("EFI PART".utf8) else { throw fail("no 'EFI PART' signature") }
    let headerSize = h.loadLE(UInt32.self, at: 12)
    guard headerSize >= 92, UInt64(headerSize) <= ss else {
      throw fail("header size \(headerSize) is invalid")
    }
    let storedCRC = h.loadLE(UInt32.self, at: 16)
    h.storeLE(UInt32(0), at: 16)
    let computedCRC = gptCRC32(h[0..<Int(headerSize)])
    guard storedCRC == computedCRC else {
      throw fail(
        "header CRC32 mismatch (stored 0x\(String(storedCRC, radix: 16)), computed 0x\(String(computedCRC, radix: 16)))"
      )
    }
    let myLBA = h.loadLE(UInt64.self, at: 24)
    guard myLBA == lba else { throw fail("MyLBA is \(myLBA)") }
    let header = Header(
      alternateLBA: h.loadLE(UInt64.self, at: 32), firstUsable: h.loadLE(UInt64.self, at: 40),
      lastUsable: h.loadLE(UInt64.self, at: 48),
      diskGUID: GUID(gptBytes: Array(h[56..<72])) ?? .zero,
      entryCount: h.loadLE(UInt32.self, at: 80), entrySize: h.loadLE(UInt32.self, at: 84),
      entriesCRC: h.loadLE(UInt32.self, at: 88), entries: [])
    let entriesLBA = h.loadLE(UInt64.self, at: 72)
    guard header.firstUsable <= header.lastUsable, header.lastUsable < totalSectors else {
      throw fail(
        "usable LBAs \(header.firstUsable)-\(header.lastUsable) do not fit a disk of \(totalSectors) sectors"
      )
    }
    guard header.entrySize >= 128, header.entrySize.nonzeroBitCount == 1 else {
      throw fail("partition entry size \(header.entrySize) is not 128 times a power of two")
    }
    let arrayBytes = UInt64(header.entryCount) * UInt64(header.entrySize)
    guard arrayBytes <= 1 << 24 else {
      throw fail("partition entry array of \(arrayBytes) bytes is too large")
    }
    let arraySectors = (arrayBytes + ss - 1) / ss
    guard entriesLBA >= 2, entriesLBA < totalSectors, arraySectors <= totalSectors - entriesLBA
    else {
      throw fail("partition entry array at LBA \(entriesLBA) lies outside the image")
    }
    let entries = try readBytes(fd, path: path, offset: entriesLBA * ss, count: Int(arrayBytes))
    let entriesCRC = gptCRC32(entries[0..<entries.count])
    guard entriesCRC == header.entriesCRC else {
      throw fail(
        "partition entry array CRC32 mismatch (stored 0x\(String(header.entriesCRC, radix: 16)), "
          + "computed 0x\(String(entriesCRC, radix: 16)))")
    }
    var result = header
    result.entries = entries
    return result
  }
}

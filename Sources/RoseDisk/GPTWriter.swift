import CChecksum

/// IEEE CRC-32 as GPT uses it.
func gptCRC32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
  rose_crc32_update(0xFFFF_FFFF, bytes.baseAddress, bytes.count) ^ 0xFFFF_FFFF
}

func gptCRC32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
  bytes.withUnsafeBytes { gptCRC32($0) }
}

/// Writes the protective MBR, the primary GPT header and entry array, and the backup entry
/// array and header of a planned layout (UEFI 2.x §5.2-5.3). Partition contents are written
/// by other code; this only writes the table sectors.
public enum GPTWriter {
  /// Writes the tables into `fd` (the open disk image, already `layout.diskSize` long or
  /// extended by these writes). `path` is for error messages.
  public static func write(_ layout: DiskLayout, to fd: Int32, path: String) throws {
    let (primary, backup) = encode(layout)
    try FileIO.write(fd, primary, at: 0, path: path)
    try FileIO.write(fd, backup, at: layout.backupEntriesLBA * layout.sectorSize, path: path)
  }

  /// The bytes of both table areas: `primary` starts at byte 0 (pMBR, header, entries),
  /// `backup` at `backupEntriesLBA * sectorSize` (entries, then header).
  public static func encode(_ layout: DiskLayout) -> (primary: [UInt8], backup: [UInt8]) {
    let ss = Int(layout.sectorSize)
    let entrySectors = Int(layout.entryArraySectors)
    let entries = encodeEntries(layout, byteCount: entrySectors * ss)
    let entriesCRC = gptCRC32(entries[0..<Int(DiskLayout.entryCount * DiskLayout.entrySize)])

    var primary = [UInt8](repeating: 0, count: (2 + entrySectors) * ss)
    // Protective MBR: one 0xEE partition covering the disk (capped at 32 bits).
    let sizeInLBA = UInt32(truncatingIfNeeded: min(layout.totalSectors - 1, UInt64(UInt32.max)))
    primary[446 + 0] = 0x00  // not bootable
    primary[446 + 1] = 0x00  // start CHS 0x000200
    primary[446 + 2] = 0x02
    primary[446 + 3] = 0x00
    primary[446 + 4] = 0xEE  // GPT protective
    primary[446 + 5] = 0xFF  // end CHS
    primary[446 + 6] = 0xFF
    primary[446 + 7] = 0xFF
    primary.storeLE(UInt32(1), at: 446 + 8)
    primary.storeLE(sizeInLBA, at: 446 + 12)
    primary[510] = 0x55
    primary[511] = 0xAA

    let primaryHeader = encodeHeader(
      layout, myLBA: 1, alternateLBA: layout.backupHeaderLBA, entriesLBA: layout.primaryEntriesLBA,
      entriesCRC: entriesCRC)
    primary.replaceSubrange(ss..<(ss + 92), with: primaryHeader)
    primary.replaceSubrange((2 * ss)..<((2 + entrySectors) * ss), with: entries)

    var backup = entries + [UInt8](repeating: 0, count: ss)
    let backupHeader = encodeHeader(
      layout, myLBA: layout.backupHeaderLBA, alternateLBA: 1, entriesLBA: layout.backupEntriesLBA,
      entriesCRC: entriesCRC)
    backup.replaceSubrange((entrySectors * ss)..<(entrySectors * ss + 92), with: backupHeader)
    return (primary, backup)
  }

  static func encodeHeader(
    _ layout: DiskLayout, myLBA: UInt64, alternateLBA: UInt64, entriesLBA: UInt64,
    entriesCRC: UInt32
  ) -> [UInt8] {
    var h = [UInt8](repeating: 0, count: 92)
    h.replaceSubrange(0..<8, with: Array("EFI PART".utf8))
    h.storeLE(UInt32(0x0001_0000), at: 8)
    h.storeLE(UInt32(92), at: 12)
    h.storeLE(myLBA, at: 24)
    h.storeLE(alternateLBA, at: 32)
    h.storeLE(layout.firstUsableLBA, at: 40)
    h.storeLE(layout.lastUsableLBA, at: 48)
    h.replaceSubrange(56..<72, with: layout.diskGUID.gptBytes)
    h.storeLE(entriesLBA, at: 72)
    h.storeLE(UInt32(DiskLayout.entryCount), at: 80)
    h.storeLE(UInt32(DiskLayout.entrySize), at: 84)
    h.storeLE(entriesCRC, at: 88)
    h.storeLE(gptCRC32(h[0..<92]), at: 16)
    return h
  }

  static func encodeEntries(_ layout: DiskLayout, byteCount: Int) -> [UInt8] {
    var array = [UInt8](repeating: 0, count: byteCount)
    for p in layout.partitions {
      let base = (p.index - 1) * Int(DiskLayout.entrySize)
      array.replaceSubrange(base..<(base + 16), with: p.type.gptBytes)
      array.replaceSubrange((base + 16)..<(base + 32), with: p.uuid.gptBytes)
      array.storeLE(p.firstLBA, at: base + 32)
      array.storeLE(p.lastLBA, at: base + 40)
      array.storeLE(p.attributes, at: base + 48)
      for (i, unit) in p.label.utf16.prefix(36).enumerated() {
        array.storeLE(unit, at: base + 56 + 2 * i)
      }
    }
    return array
  }
}

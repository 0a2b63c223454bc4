import Foundation
import Testing

@testable import RoseFS

/// Every on-disk structure is declared once (`OnDiskLayout`): its fields must tile it exactly (the
/// erofs `BUILD_BUG_ON` checks), and FORMAT.md's tables must say the same offsets, names and widths.
@Suite struct LayoutTests {
  static let layouts: [(name: String, type: any OnDiskLayout.Type, size: Int)] = [
    ("Superblock", Superblock.self, 256), ("Checkpoint", Checkpoint.self, 4096),
    ("LogHead", LogHead.self, 8), ("MetaRoot", MetaRoot.self, 16), ("Head", Head.self, 128),
    ("NatJournalEntry", NatJournalEntry.self, 12), ("BlockHeader", BlockHeader.self, 32),
    ("InodeCore", InodeCore.self, 96), ("SSAEntry", SSAEntry.self, 12),
    ("DirLeafRecord", DirLeafRecord.self, 16),
    ("ExtentRecord", ExtentRecord.self, 12), ("InlineDirent", InlineDirent.self, 8),
    ("XattrRecord", XattrRecord.self, 4), ("RollForwardRecord", RollForwardRecord.self, 4096),
    ("RollForwardEntry", RollForwardEntry.self, 24),
  ]

  @Test func fieldsTileEveryStructure() {
    for (name, layout, size) in Self.layouts {
      #expect(layout.size == size, "\(name) is \(layout.size) bytes, FORMAT.md says \(size)")
      var end = 0
      for f in layout.fields {
        #expect(f.offset == end && f.size > 0, "\(name).\(f): expected to start at \(end)")
        end = f.end
      }
      #expect(end == layout.size, "\(name): fields end at \(end), the structure is \(layout.size)")
    }
  }

  @Test func structuresFitTheirContainers() {
    // Nested structures and arrays in their hosts.
    #expect(
      Checkpoint.Offset.heads + RoseLayout.maxHeads * Head.size == Checkpoint.Offset.natJournal)
    #expect(
      Checkpoint.Offset.natJournal + Checkpoint.natJournalCapacity * NatJournalEntry.size
        == Checkpoint.reservedTail)
    #expect(
      Checkpoint.Offset.logs + RoseLayout.nrLogs * LogHead.size == Checkpoint.Offset.rfNext)
    // The core is whole 32-byte slots; `i_u` starts after it; 128 slots fill a page.
    #expect(SlotOffset.inline == InodeCore.size && InodeCore.size == 96)
    #expect(RoseLayout.minInodeSlots * RoseLayout.inodeSize == InodeCore.size)
    #expect(RoseLayout.inodesPerPage * RoseLayout.inodeSize == RoseLayout.blockSize)
    #expect(RoseLayout.maxInodeSlots * RoseLayout.inodeSize == RoseLayout.blockSize)
    // i_u of 3, 4 and 128 slots (FORMAT.md section 7).
    #expect(InodeSlots.capacity(nslots: 3) == 0 && InodeSlots.capacity(nslots: 4) == 32)
    #expect(
      InodeSlots.capacity(nslots: 128) == RoseLayout.maxInline && RoseLayout.maxInline == 4000)
    #expect(InodeSlots.slots(forInline: 0) == 3 && InodeSlots.slots(forInline: 1) == 4)
    #expect(InodeSlots.slots(forInline: 4000) == 128 && InodeSlots.slots(forInline: 4001) == 129)
    // Devices keep their numbers where other inodes keep the tail block and the tree root.
    #expect(
      SlotOffset.rdevMajor == SlotOffset.tailBlk && SlotOffset.rdevMinor == SlotOffset.treeRoot)
    #expect(SlotOffset.nslots == 0x5E && SlotOffset.treeDepth == 0x5F)
    // Record arrays after the block header.
    let body = RoseLayout.blockSize - BlockHeader.size
    #expect(RoseLayout.addressesPerBlock == body / 4)
    #expect(RoseLayout.ssaEntriesPerBlock == body / SSAEntry.size)
    #expect(TreeKind.extents.maxLeafRecords == 338 && TreeKind.extents.maxInteriorRecords == 508)
    #expect(TreeKind.directory.maxInteriorRecords == 338)
    #expect(RoseLayout.bitsPerVBMBlock == body * 8)
    #expect(Superblock.size + RoseLayout.superblockOffset <= RoseLayout.blockSize)
  }

  /// FORMAT.md's table for each structure, read as (offset, name, bytes).
  static func table(after heading: String) throws -> [FieldSpec] {
    let doc = try String(contentsOfFile: FormatExampleTests.docPath, encoding: .utf8)
    guard let at = doc.range(of: heading) else {
      Issue.record("FORMAT.md has no \(heading)")
      return []
    }
    var rows: [FieldSpec] = []
    var inTable = false
    for line in doc[at.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
      let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
        $0.trimmingCharacters(in: .whitespaces)
      }
      guard line.hasPrefix("|"), cells.count > 4 else {
        if inTable { break }
        continue
      }
      guard cells[1].hasPrefix("0x"), let offset = Int(cells[1].dropFirst(2), radix: 16) else {
        continue
      }
      inTable = true
      rows.append(FieldSpec(cells[3], offset, try Self.width(cells[2])))
    }
    return rows
  }

  static func width(_ type: String) throws -> Int {
    let base = type.split(separator: "[").first.map(String.init) ?? type
    let count = type.contains("[") ? Int(type.split(separator: "[")[1].dropLast()) ?? 0 : 1
    let sizes = [
      "u8": 1, "u16": 2, "u32": 4, "u64": 8, "i64": 8, "LogHead": LogHead.size,
      "MetaRoot": MetaRoot.size, "Head": Head.size, "NatJournalEntry": NatJournalEntry.size,
      "BlockHeader": BlockHeader.size, "RollForwardEntry": RollForwardEntry.size,
    ]
    return try #require(sizes[base], "unknown type \(type) in FORMAT.md") * count
  }

  @Test(arguments: [
    ("## 3. Superblock", "Superblock"), ("## 4. Checkpoint", "Checkpoint"),
    ("**Head** (128 bytes)", "Head"), ("## 5. Block header", "BlockHeader"),
    ("### 6.4 SSA", "SSAEntry"), ("## 7. Inodes", "InodeCore"),
    ("**RollForwardRecord** (4096 bytes)", "RollForwardRecord"),
    ("**RollForwardEntry** (24 bytes)", "RollForwardEntry"),
  ])
  func formatTablesMatchTheDeclarations(heading: String, structure: String) throws {
    let layout = try #require(Self.layouts.first { $0.name == structure }?.type)
    let documented = try Self.table(after: heading)
    #expect(documented == layout.fields, "FORMAT.md \(heading) vs \(structure).fields")
  }
}

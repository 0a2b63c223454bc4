import Foundation

/// Reads the kernel's block tracepoints (tracefs `block_rq_complete`, filtered to the loop device) and
/// the runner's trace markers ("heat op N") into a HeatLog. A request covering sectors s..s+n-1 is one
/// write of every 4 KiB block it touches.
public enum KernelTrace {
  public struct Totals: Equatable, Sendable {
    public var requests = 0
    public var sectors = 0
    public var blockWrites = 0
    public var markers = 0
  }

  /// Parses trace text into `log` (events appended) and returns the totals.
  @discardableResult
  public static func ingest(_ text: Substring, into log: inout HeatLog, kind: UInt8) -> Totals {
    var t = Totals()
    var op = 0
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
      if let r = line.range(of: "tracing_mark_write: heat op ") {
        let digits = line[r.upperBound...].prefix { $0.isNumber }
        if let n = Int(digits) {
          op = n
          t.markers += 1
        }
        continue
      }
      guard let r = line.range(of: "block_rq_complete: ") else { continue }
      // "7,0 WS () 17410 + 2 be,0,4 [0]"
      let fields = line[r.upperBound...].split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 6 else { continue }
      let rwbs = fields[1]
      guard rwbs.contains("W"), !rwbs.contains("D") else { continue }
      // The command field "(...)" may be empty "()" or hold bytes; find "+" and take its neighbours.
      guard let plus = fields.firstIndex(of: "+"), plus >= 1, plus + 1 < fields.count,
        let sector = Int(fields[plus - 1]), let count = Int(fields[plus + 1]), count > 0
      else { continue }
      t.requests += 1
      t.sectors += count
      let first = sector / 8
      let last = (sector + count - 1) / 8
      for b in first...last {
        log.record(op: op, block: UInt32(b), kind: kind)
        t.blockWrites += 1
      }
    }
    return t
  }

  /// Sectors written, field 7 of /sys/block/DEV/stat.
  public static func statSectorsWritten(_ stat: String) -> Int? {
    let f = stat.split(separator: " ", omittingEmptySubsequences: true)
    guard f.count >= 7 else { return nil }
    return Int(f[6])
  }
}

/// Structure maps of the kernel filesystems, in 4 KiB device blocks.
public enum KernelStructures {
  /// `dumpe2fs` output (superblocks, descriptors, bitmaps, inode tables) plus the journal's blocks
  /// (`debugfs -R 'blocks <8>'`: filesystem block numbers separated by spaces).
  public static func ext4(dumpe2fs: String, journalBlocks: String) -> [StructureRange] {
    var blockSize = 4096
    for line in dumpe2fs.split(separator: "\n") where line.hasPrefix("Block size:") {
      blockSize = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 4096
    }
    var out: [StructureRange] = []
    func add(_ firstFS: Int, _ lastFS: Int, _ label: String) {
      let first = firstFS * blockSize / 4096
      let last = ((lastFS + 1) * blockSize - 1) / 4096
      out.append(StructureRange(first: first, count: last - first + 1, label: label))
    }
    /// "at 259-274" or "at 259 (+258)": the range after "at".
    func range(_ s: Substring) -> (Int, Int)? {
      let parts = s.split(separator: " ", omittingEmptySubsequences: true)
      guard let at = parts.firstIndex(of: "at"), at + 1 < parts.count else { return nil }
      let r = parts[at + 1].trimmingCharacters(in: CharacterSet(charactersIn: ","))
      let ends = r.split(separator: "-").compactMap { Int($0) }
      guard let a = ends.first else { return nil }
      return (a, ends.count > 1 ? ends[1] : a)
    }
    for raw in dumpe2fs.split(separator: "\n") {
      for piece in raw.split(separator: ",") {
        let s = piece.trimmingCharacters(in: .whitespaces)
        let labels: [(String, String)] = [
          ("Primary superblock at", "superblock"), ("Backup superblock at", "backup superblock"),
          ("Group descriptors at", "group descriptors"),
          ("Reserved GDT blocks at", "reserved GDT blocks"), ("Block bitmap at", "block bitmap"),
          ("Inode bitmap at", "inode bitmap"), ("Inode table at", "inode table"),
        ]
        for (prefix, label) in labels where s.hasPrefix(prefix) {
          if let (a, b) = range(Substring(s)) { add(a, b, label) }
        }
      }
    }
    let journal = journalBlocks.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap {
      Int($0)
    }.sorted()
    var i = 0
    while i < journal.count {
      var j = i
      while j + 1 < journal.count && journal[j + 1] == journal[j] + 1 { j += 1 }
      add(journal[i], journal[j], "journal")
      i = j + 1
    }
    // The journal superblock (its first block) is rewritten at every checkpoint of the journal.
    if let first = journal.first { add(first, first, "journal superblock") }
    if blockSize < 4096 {
      // Block 0 of a 1 KiB-block ext4 is the boot block, and the superblock sits at byte 1024.
      out.append(StructureRange(first: 0, count: 1, label: "superblock"))
    }
    return out
  }

  /// `btrfs inspect-internal dump-tree -t chunk DEV`: each chunk's type and the device offsets of its
  /// stripes; plus the primary superblock at 64 KiB.
  public static func btrfs(chunkTree: String) -> [StructureRange] {
    var out = [StructureRange(first: 16, count: 1, label: "superblock")]
    var length = 0
    var type = ""
    var copy = 0
    for raw in chunkTree.split(separator: "\n") {
      let f = raw.split(whereSeparator: { $0 == " " || $0 == "\t" })
      if let i = f.firstIndex(of: "length"), i + 1 < f.count, let l = Int(f[i + 1]),
        let t = f.firstIndex(of: "type"), t + 1 < f.count
      {
        length = l
        let parts = f[t + 1].split(separator: "|").filter { $0 != "DUP" && $0 != "single" }
        type = parts.joined(separator: "+")
        copy = 0
      } else if f.first == "stripe", f.count >= 6, let off = Int(f[5]), length > 0 {
        copy += 1
        let label = "\(type) chunk" + (copy > 1 ? " (copy \(copy))" : "")
        out.append(StructureRange(first: off / 4096, count: length / 4096, label: label))
      }
    }
    return out
  }
}

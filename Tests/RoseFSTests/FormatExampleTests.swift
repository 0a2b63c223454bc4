import Foundation
import Testing

@testable import RoseFS

/// FORMAT.md section 16: the annotated dump of a tiny image, regenerated here and compared with the
/// page, so the example cannot go stale. `ROSEPACK_UPDATE_DOCS=1 swift test` rewrites it.
@Suite struct FormatExampleTests {
  static let docPath = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    .deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
      "docs/FORMAT.md"
    ).path

  @Test func workedExampleMatchesFormatMD() throws {
    let dump = try Self.exampleDump()
    let doc = try String(contentsOfFile: Self.docPath, encoding: .utf8)
    let begin = "<!-- BEGIN EXAMPLE -->\n"
    let end = "<!-- END EXAMPLE -->"
    let b = try #require(doc.range(of: begin))
    let e = try #require(doc.range(of: end))
    let current = String(doc[b.upperBound..<e.lowerBound])
    if ProcessInfo.processInfo.environment["ROSEPACK_UPDATE_DOCS"] == "1" && current != dump {
      try (String(doc[..<b.upperBound]) + dump + String(doc[e.lowerBound...])).write(
        toFile: Self.docPath, atomically: true, encoding: .utf8)
      return
    }
    #expect(
      current == dump, "docs/FORMAT.md section 16 is stale: run ROSEPACK_UPDATE_DOCS=1 swift test")
  }

  /// The example image of section 16: root, an inline file, a tail-packed file, a five-slot inline
  /// file, subvolumes a and b.
  static func exampleImage() throws -> (TempImage, BuildReport) {
    let tmp = TempImage()
    let b = try ImageBuilder(
      image: tmp.image, options: BuildOptions(label: "example", sourceDateEpoch: 1_700_000_000))
    let t = Timestamp(seconds: 1_700_000_000)
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    let hello = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
    hello.content = try b.data.store(Array("hello, rose\n".utf8), ino: hello.ino)
    let tail = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
    tail.content = try b.data.store(
      [UInt8](repeating: 0x41, count: 4096) + Array("tail".utf8), ino: tail.ino)
    // 60 bytes: inline (FORMAT.md 7: at most 64 bytes), in ceil((96 + 60) / 32) = 5 slots.
    let notes = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
    notes.content = try b.data.store(
      Array(String(repeating: "five slots. ", count: 5).utf8.prefix(60)), ino: notes.ino)
    root.children[Name("hello.txt")] = hello
    root.children[Name("tail.bin")] = tail
    root.children[Name("notes.txt")] = notes
    let report = try b.finish(subvolumes: [
      Subvolume(name: "a", root: root), Subvolume(name: "b", root: root),
    ])
    return (tmp, report)
  }

  /// R2 on the smallest image: bytes of every used block (the superblocks, the checkpoint, blocks
  /// 4-15 and every live main-area block), flipped one at a time, are reported. Every byte with
  /// ROSEPACK_LONG_TESTS=1; in the normal suite (53,248 fsck runs took minutes in a debug build) every
  /// nonzero byte, the first 256 bytes (headers) and every 13th of the zero bytes, phased by block, so
  /// each field that holds a value and each kind of zero region is flipped.
  @Test(arguments: [0, 1, 2, 3, 4, 15, 16, 17, 18, 19, 20, 21, 22])
  func everyByteOfEveryUsedBlockIsCovered(block: Int) throws {
    let (tmp, report) = try Self.exampleImage()
    #expect(report.usedRanges.map { $0[0] + $0[1] }.max() == 23)
    let img = tmp.image
    #expect(Fsck.check(image: img, verifyData: true).isEmpty)
    var missed: [Int] = []
    let base = UInt64(block) * 4096
    var original = try img.read(count: 4096, atByte: base)
    let long = ProcessInfo.processInfo.environment["ROSEPACK_LONG_TESTS"] == "1"
    let offsets = (0..<4096).filter { o in
      long || original[o] != 0 || o < 256 || o % 13 == block % 13
    }
    for o in offsets {
      let b = original[o]
      original[o] = b ^ 0x01
      try img.write([original[o]], atByte: base + UInt64(o))
      if Fsck.check(image: img, verifyData: true).isEmpty { missed.append(o) }
      original[o] = b
      try img.write([b], atByte: base + UInt64(o))
    }
    #expect(missed.isEmpty, "block \(block): undetected flips at bytes \(missed.prefix(20))")
  }

  /// Packs the example tree and renders every used block.
  static func exampleDump() throws -> String {
    let (tmp, report) = try exampleImage()
    let img = tmp.image
    var out =
      "Volume: \(report.blockCount) blocks (\(report.volumeBytes) bytes), \(report.segmentCount) segments of "
    out +=
      "\(report.blocksPerSegment) blocks, reserve \(report.reserveSegments) segments. Used blocks: "
    out += report.usedRanges.map { $0[1] == 1 ? "\($0[0])" : "\($0[0])-\($0[0] + $0[1] - 1)" }
      .joined(separator: ", ")
    out +=
      ". Blocks 4-15 are zero. Every row that is not all zero is printed; `*` stands for one or more"
    out += " rows of zeros, nothing else.\n\n"
    // SSA kinds of the main-area blocks, to tell data blocks from inode pages.
    var ssaKind: [UInt64: UInt32] = [:]
    for range in report.usedRanges {
      for blk in range[0]..<(range[0] + range[1]) {
        let r = ByteReader(try img.readBlock(UInt32(blk)))
        guard r.u32(0) == Magic.ssa else { continue }
        for e in 0..<RoseLayout.ssaEntriesPerBlock {
          ssaKind[UInt64(16 + Int(r.u32(0x14)) * RoseLayout.ssaEntriesPerBlock + e)] =
            r.u32(0x20 + 12 * e + 4) >> 28
        }
      }
    }
    for range in report.usedRanges {
      for blk in range[0]..<(range[0] + range[1]) where blk == 0 || blk == 2 || blk >= 16 {
        let block = try img.readBlock(UInt32(blk))
        let isData = ssaKind[blk] == UInt32(SSAKind.data)
        let isTail = ssaKind[blk] == UInt32(SSAKind.tail)
        let title =
          isData
          ? "data block of /tail.bin (logical block 0: 4096 x 'A')"
          : isTail
            ? "tail block (no header: the fragment of /tail.bin at bytes 0-3, the rest zero)"
            : kind(block, blk)
        out += "### Block \(blk): \(title)\n\n```\n"
        if isData {
          // 256 identical rows: one is printed and the repetition said in words.
          out += hexdump(Array(block[0..<16]), skip: [])
          out += "0010..0ff0  every row is the same as row 0000 (all 4096 bytes are 0x41)\n"
        } else {
          out += annotate(block, blk)
          out += hexdump(block, skip: blk == 0 ? [0..<1024] : [])
        }
        out += "```\n\n"
      }
    }
    out += "Block 1 holds the same superblock as block 0; block 3 (checkpoint slot 1) is zero.\n"
    return out
  }

  static func kind(_ b: [UInt8], _ blk: UInt64) -> String {
    if blk == 0 { return "superblock copy 0 (bytes 1024-1279)" }
    let magic = ByteReader(b).u32(0)
    switch magic {
    case Magic.checkpoint: return "checkpoint slot 0"
    case Magic.nat: return "NAT content block (heads a and b share it)"
    case Magic.vbm: return "VBM content block of head a (b is VBM_SAME_AS a)"
    case Magic.ssa: return "SSA content block"
    case Magic.dirNode: return "directory node"
    case Magic.mapIndex:
      return "map-index block of the SSA (level 1; the SSA has 13 content blocks, 1 stored)"
    default:
      return
        "inode page, nid 1 (ino 128 / in slots 0-4, 133 /hello.txt in 5-8, 137 /tail.bin in 9-11, 140 /notes.txt in 12-16); its NAT entry is nat[1]"
    }
  }

  static func annotate(_ b: [UInt8], _ blk: UInt64) -> String {
    let r = ByteReader(b)
    var s = ""
    func f(_ o: Int, _ name: String, _ v: Any) {
      s += "  +0x" + String(o, radix: 16).leftPadded(to: 3) + " \(name) = \(v)\n"
    }
    if blk == 0 {
      let sb = ByteReader(b, base: 1024)
      s += "superblock fields (offsets from byte 1024):\n"
      f(0x000, "magic", hex32(sb.u32(0)))
      f(0x004, "crc", hex32(sb.u32(4)))
      f(0x008, "major.minor", "\(sb.u16(8)).\(sb.u16(0xA))")
      f(0x00c, "feature_compat", hex32(sb.u32(0xC)))
      f(0x010, "feature_incompat", hex32(sb.u32(0x10)))
      f(0x014, "feature_ro_compat", hex32(sb.u32(0x14)))
      f(
        0x018, "log_block_size, log_blocks_per_seg, nr_logs, max_heads",
        "\(sb.u8(0x18)), \(sb.u8(0x19)), \(sb.u8(0x1A)), \(sb.u8(0x1B))")
      f(0x01c, "sb_size", sb.u32(0x1C))
      f(0x020, "block_count", sb.u64(0x20))
      f(
        0x028, "cp_blkaddr, cp_slot_blocks, cp_nslots",
        "\(sb.u32(0x28)), \(sb.u16(0x2C)), \(sb.u16(0x2E))")
      f(
        0x030, "main_blkaddr, segment_count, rsv_segments, op_blocks",
        "\(sb.u32(0x30)), \(sb.u32(0x34)), \(sb.u32(0x38)), \(sb.u32(0x3C))")
      f(0x040, "uuid", uuidString(sb.slice(0x40, 16)))
      f(0x050, "label", "\"example\"")
      f(
        0x070, "hash_seed",
        sb.slice(0x70, 16).map { String($0, radix: 16).leftPadded(to: 2) }.joined())
      f(
        0x080, "inode_size, inline_max, tail_max",
        "\(sb.u16(0x80)), \(sb.u16(0x82)), \(sb.u32(0x84))")
      f(0x088, "mkfs_time", sb.i64(0x88))
      return s
    }
    switch r.u32(0) {
    case Magic.checkpoint:
      f(0x008, "cp_ver", r.u64(8))
      f(0x010, "user_block_count, valid_block_count", "\(r.u64(0x10)), \(r.u64(0x18))")
      f(
        0x020, "free_segments, flags, next_free_nid",
        "\(r.u32(0x20)), \(r.u32(0x24)), \(r.u32(0x28))")
      f(0x02c, "nat_journal_count", r.u32(0x2C))
      f(
        0x030, "logs (segno, blkoff, type)",
        (0..<3).map { "(\(r.u32(0x30 + 8 * $0)), \(r.u16(0x34 + 8 * $0)), \(r.u8(0x36 + 8 * $0)))" }
          .joined(separator: " "))
      f(
        0x050, "ssa MetaRoot (root, nblocks, depth)",
        "(\(r.u32(0x50)), \(r.u32(0x54)), \(r.u8(0x58)))")
      f(0x060, "n_heads, default_head", "\(r.u8(0x60)), \(r.u8(0x61))")
      for h in 0..<2 {
        let o = 0x80 + 128 * h
        f(o, "head \(h) flags, root_ino", "\(hex32(r.u32(o))), \(r.u32(o + 4))")
        f(o + 0x08, "head \(h) created_cp_ver", r.u64(o + 0x08))
        f(
          o + 0x10, "head \(h) valid_blocks, inode_count, parent_head",
          "\(r.u64(o + 0x10)), \(r.u32(o + 0x18)), \(hex32(r.u32(o + 0x1C)))")
        f(
          o + 0x20, "head \(h) name",
          "\"\(String(decoding: r.slice(o + 0x20, 16).prefix { $0 != 0 }, as: UTF8.self))\"")
        f(
          o + 0x30, "head \(h) nat (root, nblocks, depth)",
          "(\(r.u32(o + 0x30)), \(r.u32(o + 0x34)), \(r.u8(o + 0x38)))")
        f(
          o + 0x40, "head \(h) vbm (root, nblocks, depth)",
          "(\(r.u32(o + 0x40)), \(r.u32(o + 0x44)), \(r.u8(o + 0x48)))")
      }
    case Magic.nat, Magic.vbm, Magic.ssa, Magic.dirNode, Magic.mapIndex:
      f(0x000, "magic", hex32(r.u32(0)))
      f(0x004, "crc", hex32(r.u32(4)))
      f(0x008, "cp_ver, blkaddr, owner", "\(r.u64(8)), \(r.u32(0x10)), \(r.u32(0x14))")
      f(
        0x018, "count, level, subtype, aux",
        "\(r.u16(0x18)), \(r.u8(0x1A)), \(r.u8(0x1B)), \(r.u32(0x1C))")
      if r.u32(0) == Magic.mapIndex {
        f(0x020, "child[0..1]", "\(r.u32(0x20)), \(r.u32(0x24))")
      } else if r.u32(0) == Magic.nat {
        f(0x020, "nat[0..3]", (0..<4).map { "\(r.u32(0x20 + 4 * $0))" }.joined(separator: ", "))
      } else if r.u32(0) == Magic.ssa {
        for e in 0..<Int(r.u16(0x18)) {
          let o = 0x20 + 12 * e
          let info = r.u32(o + 4)
          f(
            o, "entry \(e) (block \(16 + e)) owner, kind, index, crc",
            "\(r.u32(o)), \(info >> 28), \(info & 0x0FFF_FFFF), \(hex32(r.u32(o + 8)))")
        }
      }
    default:
      if r.u32(SlotOffset.ino) != 0 {
        var next = 0
        for slot in 0..<RoseLayout.inodesPerPage where slot >= next {
          let o = slot * RoseLayout.inodeSize
          guard slot + RoseLayout.minInodeSlots <= RoseLayout.inodesPerPage,
            r.u32(o + SlotOffset.ino) != 0
          else { continue }
          // An inode takes 3 or more slots: a 96-byte core, then its i_u.
          next = slot + max(RoseLayout.minInodeSlots, Int(r.u8(o + SlotOffset.nslots)))
          s += "slots \(slot)-\(next - 1) (block offset 0x\(String(o, radix: 16))):\n"
          f(
            o + 0x000, "mode, flags",
            "0o\(String(r.u16(o), radix: 8)), \(hex32(UInt32(r.u16(o + 2))))")
          f(o + 0x004, "uid, gid", "\(r.u32(o + 0x4)), \(r.u32(o + 0x8))")
          f(o + 0x00C, "nlink, size", "\(r.u32(o + 0xC)), \(r.u64(o + 0x10))")
          f(o + 0x018, "atime", r.i64(o + 0x18))
          f(o + 0x020, "mtime", r.i64(o + 0x20))
          f(o + 0x028, "ctime", r.i64(o + 0x28))
          f(
            o + 0x030, "atime_ns, mtime_ns, ctime_ns",
            (0..<3).map { "\(r.u32(o + 0x30 + 4 * $0))" }.joined(separator: ", "))
          f(o + 0x03C, "ino, crc", "\(r.u32(o + 0x3C)), \(hex32(r.u32(o + 0x40)))")
          f(o + 0x044, "parent, xattr_nid", "\(r.u32(o + 0x44)), \(r.u32(o + 0x48))")
          f(
            o + 0x04C, "tail_blk, tree_root, blocks",
            "\(r.u32(o + 0x4C)), \(r.u32(o + 0x50)), \(r.u32(o + 0x54))")
          f(
            o + 0x058, "inline_len, xattr_len, tail_off",
            "\(r.u16(o + 0x58)), \(r.u16(o + 0x5A)), \(r.u16(o + 0x5C))")
          f(o + 0x05E, "nslots, tree_depth", "\(r.u8(o + 0x5E)), \(r.u8(o + 0x5F))")
        }
      }
    }
    return s
  }

  static func hexdump(_ b: [UInt8], skip: [Range<Int>]) -> String {
    var s = ""
    var starred = false
    for row in stride(from: 0, to: b.count, by: 16) {
      let bytes = b[row..<row + 16]
      if skip.contains(where: { $0.contains(row) }) || bytes.allSatisfy({ $0 == 0 }) {
        if !starred { s += "*\n" }
        starred = true
        continue
      }
      starred = false
      s += String(row, radix: 16).leftPadded(to: 4) + "  "
      s += bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: " ")
      s +=
        "  |" + String(bytes.map { $0 >= 0x20 && $0 < 0x7F ? Character(Unicode.Scalar($0)) : "." })
        + "|\n"
    }
    return s
  }
}

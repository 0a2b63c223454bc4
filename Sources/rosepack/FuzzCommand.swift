import ArgumentParser
import Foundation
import RoseBuild
import RoseFS
import RoseIngest
import RoseRecipe

/// `rosepack debug-fuzz` (hidden): the driver of the mutation fuzz tests. It damages a valid input
/// in a seeded, reproducible way and runs rosepack's own commands on each variant in this process.
/// Every outcome must be success or a thrown error: a trap kills the process, and the test that
/// started it (Tests/RosepackTests/FuzzTests.swift) sees the signal, reads which mutation was
/// running from the progress file, reports it and restarts after it.
///
/// Targets:
/// - `image`: a RoseFS image; one to three fields of a metadata structure (superblock, checkpoint
///   and its heads, NAT/VBM/SSA/map blocks, directory, extent and xattr nodes, tail blocks, inode
///   slots) get a new value, then the structure's checksum is recomputed so that the damage reaches
///   the logic behind the checksum check. Runs inspect, inspect --json, ls -R -l, cat, export, fsck.
/// - `tar`: a tar archive; header fields are changed and the header checksum recomputed; runs
///   convert.
/// - `recipe`: a recipe file; lines are duplicated, cut, spliced, and values replaced with hostile
///   ones; runs the recipe loader.
struct FuzzCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "debug-fuzz", abstract: "Mutation fuzz driver for the test suite.",
    shouldDisplay: false)

  @Option var target: String
  @Option var input: String
  @Option var work: String
  @Option var seed: UInt64 = 1
  @Option var start: Int = 0
  @Option var count: Int = 100
  @Option(help: "Paths inside the image to cat.") var cat: [String] = []

  func run() throws {
    let pristine = try [UInt8](Data(contentsOf: URL(fileURLWithPath: input)))
    let progressPath = work + "/progress"
    // Command output is not the point; keep stdout for the summary.
    let savedStdout = dup(1)
    let devNull = open("/dev/null", O_WRONLY)
    dup2(devNull, 2)
    // A damaged size can make a valid sparse file of 2^40 bytes: cat and export would then spend
    // hours writing zeros. Outputs go to files capped at 256 MiB; past it a write fails (EFBIG)
    // and the command stops with an error, which is an outcome like any other.
    signal(SIGXFSZ, SIG_IGN)
    var cap = rlimit(rlim_cur: 256 << 20, rlim_max: 256 << 20)
    setrlimit(Int32(RLIMIT_FSIZE.rawValue), &cap)
    var outcomes: [String: Int] = [:]
    var executions = 0
    for index in start..<start + count {
      var rng = FuzzRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index))
      let variant: [UInt8]
      let note: String
      switch target {
      case "image": (variant, note) = ImageMutator.mutate(pristine, &rng)
      case "tar": (variant, note) = TarMutator.mutate(pristine, &rng)
      case "recipe": (variant, note) = RecipeMutator.mutate(pristine, &rng)
      default: throw CLIError.usage("--target image|tar|recipe")
      }
      let record = "\(index) \(note)\n"
      try Data(record.utf8).write(to: URL(fileURLWithPath: progressPath))
      let path = work + "/variant-\(target)"
      try writeSparse(variant, to: path)
      fflush(nil)  // every stream: print buffers in stdout
      let sink = open(work + "/stdout", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      dup2(sink, 1)
      close(sink)
      for args in commands(path) {
        executions += 1
        do {
          var command = try Rosepack.parseAsRoot(args)
          try command.run()
          outcomes["\(args[0]) ok", default: 0] += 1
        } catch {
          outcomes["\(args[0]) error", default: 0] += 1
        }
      }
      fflush(nil)  // every stream: print buffers in stdout
      dup2(savedStdout, 1)
    }
    let summary = ["executions": executions] as [String: Int]
    let data = try JSONSerialization.data(
      withJSONObject: ["summary": summary, "outcomes": outcomes], options: [.sortedKeys])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
  }

  /// Writes only the blocks that are not zero (an image is mostly free space): fast on any disk.
  func writeSparse(_ bytes: [UInt8], to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw CLIError.failed("\(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard ftruncate(fd, off_t(bytes.count)) == 0 else {
      throw CLIError.failed("\(path): \(String(cString: strerror(errno)))")
    }
    try bytes.withUnsafeBytes { all in
      var at = 0
      while at < all.count {
        let end = min(at + 4096, all.count)
        let block = UnsafeRawBufferPointer(rebasing: all[at..<end])
        if block.contains(where: { $0 != 0 }) {
          guard pwrite(fd, block.baseAddress, block.count, off_t(at)) == block.count else {
            throw CLIError.failed("\(path): \(String(cString: strerror(errno)))")
          }
        }
        at = end
      }
    }
  }

  func commands(_ path: String) -> [[String]] {
    switch target {
    case "image":
      var list: [[String]] = [
        ["inspect", path], ["inspect", "--json", path], ["ls", "-R", "-l", path, "/"],
        ["fsck", path], ["export", path, "-o", work + "/export.tar"],
      ]
      for c in cat { list.append(["cat", path, c]) }
      return list
    case "tar":
      return [["convert", path, "-o", work + "/from-tar.img", "--quiet"]]
    default:
      return [["build", path, "-o", work + "/out", "--dump-config"]]
    }
  }
}

/// SplitMix64: small, seedable, the same on every machine.
struct FuzzRandom {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
  mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

  /// A value chosen to hit edges: limits, powers of two, small counts, or anything.
  mutating func interesting(width: Int) -> UInt64 {
    let bits = UInt64(width * 8)
    let mask: UInt64 = bits == 64 ? .max : (1 << bits) - 1
    let pick: [UInt64] = [
      0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 4095, 4096, 4097, 65535, 65536, 0x7F, 0x80,
      0x7FFF, 0x8000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40, 1 << 62, 1 << 63,
      .max, .max - 1, 0x305, 0x0505,
    ]
    let v = chance(70) ? pick[below(pick.count)] : next()
    return v & mask
  }
}

/// Damages one metadata structure of a RoseFS image and makes its checksum right again.
enum ImageMutator {
  static let bs = RoseLayout.blockSize

  static func mutate(_ pristine: [UInt8], _ rng: inout FuzzRandom) -> ([UInt8], String) {
    var img = pristine
    let blocks = img.count / bs
    guard blocks > 16, let sb = try? Superblock.decode(Array(img[1024..<1280])) else {
      return (img, "not an image")
    }
    let checksum = RoseChecksum(uuid: sb.uuid)
    // Classify blocks once per mutation (cheap for the small test images).
    var headerBlocks: [Int] = []
    var inodePages: [Int] = []
    for b in 16..<blocks {
      let base = b * bs
      let magic = img.loadLE(UInt32.self, at: base)
      if magic != 0 && isHeaderMagic(magic) {
        headerBlocks.append(b)
      } else if validSlots(img, block: b, checksum).count > 0 {
        inodePages.append(b)
      }
    }
    var notes: [String] = []
    let rounds = 1 + rng.below(3)
    for _ in 0..<rounds {
      let kind = rng.below(100)
      if kind < 12 {
        // Superblock: copy 0, or both copies alike.
        let off = 8 + rng.below(RoseLayout.superblockSize - 8)
        let width = [1, 2, 4, 8][rng.below(4)]
        let o = min(off, RoseLayout.superblockSize - width)
        let value = rng.interesting(width: width)
        let both = rng.chance(50)
        for copy in both ? [0, 1] : [0] {
          let base = copy * bs + RoseLayout.superblockOffset
          put(&img, base + o, value, width)
          fixCRC(&img, base, RoseLayout.superblockSize, at: 4, checksum)
        }
        notes.append("superblock\(both ? "s" : "") +0x\(hex(o)) w\(width)=0x\(hex(value))")
      } else if kind < 40 {
        // Checkpoint: mostly the fields and the heads (0x000..0x280).
        let slot = rng.below(2)
        let base = (2 + slot) * bs
        let off = rng.chance(80) ? 8 + rng.below(0x280 - 8) : 0x280 + rng.below(bs - 0x288)
        let width = [1, 2, 4, 8][rng.below(4)]
        let value = rng.interesting(width: width)
        put(&img, base + off, value, width)
        fixCRC(&img, base, bs, at: 4, checksum)
        notes.append("checkpoint \(slot) +0x\(hex(off)) w\(width)=0x\(hex(value))")
      } else if kind < 75, !headerBlocks.isEmpty {
        let b = headerBlocks[rng.below(headerBlocks.count)]
        let base = b * bs
        let off = rng.chance(50) ? 8 + rng.below(56) : 8 + rng.below(bs - 16)
        let width = [1, 2, 4, 8][rng.below(4)]
        let value = rng.interesting(width: width)
        put(&img, base + off, value, width)
        fixCRC(&img, base, bs, at: BlockHeader.crcOffset, checksum)
        notes.append("block \(b) +0x\(hex(off)) w\(width)=0x\(hex(value))")
      } else if kind < 97, !inodePages.isEmpty {
        let b = inodePages[rng.below(inodePages.count)]
        let slots = validSlots(img, block: b, checksum)
        let slot = slots[rng.below(slots.count)]
        let base = b * bs + slot * RoseLayout.inodeSize
        // The 96-byte core mostly, else anywhere in the inode's slots (8-byte writes stay inside).
        let length = inodeLength(img, base, slot: slot)
        var off = rng.chance(70) ? rng.below(InodeCore.size - 7) : rng.below(length - 7)
        if off >= SlotOffset.crc && off < SlotOffset.crc + 4 { off = SlotOffset.size }
        let width = [1, 2, 4, 8][rng.below(4)]
        let value = rng.interesting(width: width)
        put(&img, base + off, value, width)
        fixCRC(&img, base, inodeLength(img, base, slot: slot), at: SlotOffset.crc, checksum)
        notes.append("inode block \(b) slot \(slot) +0x\(hex(off)) w\(width)=0x\(hex(value))")
      } else {
        // A data block (or anything): its checksum is left wrong, for the readers to catch.
        let b = 16 + rng.below(blocks - 16)
        let off = rng.below(bs)
        img[b * bs + off] ^= UInt8(1 + rng.below(255))
        notes.append("raw block \(b) +0x\(hex(off)) flipped")
      }
    }
    return (img, notes.joined(separator: "; "))
  }

  static func isHeaderMagic(_ m: UInt32) -> Bool {
    [
      Magic.nat, Magic.vbm, Magic.ssa, Magic.mapIndex, Magic.dirNode, Magic.extentNode,
      Magic.xattrNode,
    ].contains(m)
  }

  /// Bytes of the inode at `base` (slot `slot`): its `nslots` slots, kept inside the page.
  static func inodeLength(_ img: [UInt8], _ base: Int, slot: Int) -> Int {
    let n = Int(img[base + SlotOffset.nslots])
    return min(max(n, RoseLayout.minInodeSlots), RoseLayout.inodesPerPage - slot)
      * RoseLayout.inodeSize
  }

  static func validSlots(_ img: [UInt8], block b: Int, _ checksum: RoseChecksum) -> [Int] {
    var out: [Int] = []
    // An inode starts at least 3 slots before the end of its page.
    for s in 0...(RoseLayout.inodesPerPage - RoseLayout.minInodeSlots) {
      let base = b * bs + s * RoseLayout.inodeSize
      let stored = img.loadLE(UInt32.self, at: base + SlotOffset.crc)
      if stored == 0 { continue }
      let computed = img.withUnsafeBytes {
        checksum.checksum(
          UnsafeRawBufferPointer(rebasing: $0[base..<base + inodeLength(img, base, slot: s)]),
          zeroingFieldAt: SlotOffset.crc)
      }
      if computed == stored { out.append(s) }
    }
    return out
  }

  static func put(_ img: inout [UInt8], _ at: Int, _ value: UInt64, _ width: Int) {
    for i in 0..<width { img[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
  }

  static func fixCRC(
    _ img: inout [UInt8], _ base: Int, _ length: Int, at field: Int, _ checksum: RoseChecksum
  ) {
    let crc = img.withUnsafeBytes {
      checksum.checksum(
        UnsafeRawBufferPointer(rebasing: $0[base..<base + length]), zeroingFieldAt: field)
    }
    put(&img, base + field, UInt64(crc), 4)
  }

  static func hex(_ v: some BinaryInteger) -> String { String(v, radix: 16) }
}

/// Damages tar headers (ustar/pax) and recomputes each header's checksum.
enum TarMutator {
  static func mutate(_ pristine: [UInt8], _ rng: inout FuzzRandom) -> ([UInt8], String) {
    var tar = pristine
    // Header blocks: those whose checksum field matches their bytes.
    var headers: [Int] = []
    var at = 0
    while at + 512 <= tar.count {
      if isHeader(tar, at) { headers.append(at) }
      at += 512
    }
    guard !headers.isEmpty else { return (tar, "no header") }
    var notes: [String] = []
    for _ in 0..<1 + rng.below(3) {
      let h = headers[rng.below(headers.count)]
      // Fields: name 0, mode 100, uid 108, gid 116, size 124, mtime 136, type 156, linkname 157,
      // magic 257, uname 265, devmajor 329, devminor 337, prefix 345.
      let fields: [(Int, Int)] = [
        (0, 100), (100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (156, 1), (157, 100),
        (329, 8), (337, 8), (345, 155),
      ]
      let (off, len) = fields[rng.below(fields.count)]
      let style = rng.below(6)
      switch style {
      case 0:  // octal digits, possibly huge
        let digits = String(rng.interesting(width: 8), radix: 8)
        let text = Array(digits.utf8.prefix(len))
        for i in 0..<len { tar[h + off + i] = i < text.count ? text[i] : 0 }
      case 1:  // base-256 (GNU binary numbers)
        tar[h + off] = 0x80 | UInt8(rng.below(2) * 0x7F)
        for i in 1..<len { tar[h + off + i] = UInt8(truncatingIfNeeded: rng.next()) }
      case 2:  // type flags
        let types: [UInt8] = Array("0123456789gxLKSDAVMN\0".utf8)
        tar[h + 156] = types[rng.below(types.count)]
      case 3:  // names: dots, slashes, long, empty
        let names = ["..", "../x", "/", "", "a/../../b", String(repeating: "n", count: 99), "./."]
        let text = Array(names[rng.below(names.count)].utf8)
        for i in 0..<len { tar[h + off + i] = i < text.count ? text[i] : 0 }
      case 4:  // a pax record body, when this header is an extended header
        let body = h + 512
        if body < tar.count {
          let records = [
            "30 size=99999999999999999999\n", "27 linkpath=\n", "20 uid=4294967296\n",
            "41 SCHILY.xattr.user.x=", "9 path=\n",
            "25 GNU.sparse.size=1e20\n", "10 size=-1\n",
          ]
          let text = Array(records[rng.below(records.count)].utf8)
          for (i, c) in text.enumerated() where body + i < tar.count { tar[body + i] = c }
        }
      default:  // random bytes
        tar[h + off + rng.below(len)] = UInt8(truncatingIfNeeded: rng.next())
      }
      fixChecksum(&tar, h)
      notes.append("header @\(h) field \(off) style \(style)")
    }
    return (tar, notes.joined(separator: "; "))
  }

  static func isHeader(_ t: [UInt8], _ at: Int) -> Bool {
    guard t[at..<at + 512].contains(where: { $0 != 0 }) else { return false }
    let stored = t[at + 148..<at + 156].filter { $0 >= 0x30 && $0 <= 0x37 }
    guard let v = Int(String(decoding: stored, as: UTF8.self), radix: 8) else { return false }
    return v == sum(t, at)
  }

  static func sum(_ t: [UInt8], _ at: Int) -> Int {
    var s = 0
    for i in 0..<512 { s += (i >= 148 && i < 156) ? 0x20 : Int(t[at + i]) }
    return s
  }

  static func fixChecksum(_ t: inout [UInt8], _ at: Int) {
    let text = Array(String(sum(t, at), radix: 8).leftPadded(6).utf8) + [0, 0x20]
    for i in 0..<8 { t[at + 148 + i] = text[i] }
  }
}

/// Damages a recipe: hostile values, cut and spliced lines, NUL and CR bytes.
enum RecipeMutator {
  static func mutate(_ pristine: [UInt8], _ rng: inout FuzzRandom) -> ([UInt8], String) {
    var lines = pristine.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map
    { Array($0) }
    var notes: [String] = []
    let hostile = [
      "18446744073709551104", "9223372036854775808", "-1", "0", "1T", "99999999999999999999G",
      "", "=", "\0", "a\0b", "%", "%{", "{{", "{{#x}}", "[Image]", "yes", "/", "../..", "\r",
      String(repeating: "x", count: 5000),
    ]
    for _ in 0..<1 + rng.below(3) {
      guard !lines.isEmpty else { break }
      let i = rng.below(lines.count)
      switch rng.below(5) {
      case 0:
        if let eq = lines[i].firstIndex(of: UInt8(ascii: "=")) {
          lines[i] = Array(lines[i][...eq]) + Array(hostile[rng.below(hostile.count)].utf8)
        }
        notes.append("line \(i) value")
      case 1:
        lines.insert(lines[i], at: rng.below(lines.count))
        notes.append("line \(i) duplicated")
      case 2:
        lines[i] = Array(lines[i].prefix(rng.below(lines[i].count + 1)))
        notes.append("line \(i) cut")
      case 3:
        let j = rng.below(lines.count)
        lines[i] = Array(
          lines[i].prefix(rng.below(lines[i].count + 1))
            + lines[j].suffix(rng.below(lines[j].count + 1)))
        notes.append("lines \(i)+\(j) spliced")
      default:
        lines.remove(at: i)
        notes.append("line \(i) removed")
      }
    }
    return (Array(lines.joined(separator: [UInt8(ascii: "\n")])), notes.joined(separator: "; "))
  }
}

extension String {
  fileprivate func leftPadded(_ n: Int) -> String {
    String(repeating: "0", count: max(0, n - count)) + self
  }
}

extension Array where Element == UInt8 {
  fileprivate func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
    withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
  }
}

/// Streams file data from an input straight into the image while the tree is being read, so memory is
/// O(entries), never O(data). Each file becomes inline bytes (small files), contiguous extents of full
/// blocks, and a tail: the last partial block either packed into a shared tail block (`TailPacker`) or,
/// when larger than the tail limit, a block of its own.
///
/// Use: `beginFile`, then `write` chunks at increasing offsets (a gap is a hole), then `finishFile`.
public final class DataWriter {
  let stream: BlockStream
  let tails: TailPacker
  public let tailMax: Int

  // State of the file being written.
  private var ino: UInt32 = 0
  private var size: UInt64 = 0
  private var bodyEnd: UInt64 = 0
  private var nextOffset: UInt64 = 0
  private var open = false
  private var inlineFile = false
  private var extents: [Extent] = []
  private var small: [UInt8] = []  // inline bytes or the tail bytes
  /// The tail or inline bytes, when they came in one piece: placed (or copied) as they arrived,
  /// without passing through `small`. Most small files arrive so, as one block of the input.
  private var placedTail: TailRef?
  private var placedInline: [UInt8]?
  private var curLogical: UInt64 = .max
  private var curFill = 0
  private var dead: [(UInt32, UInt32)] = []  // released block ranges (start, count)

  init(stream: BlockStream, tails: TailPacker, tailMax: Int) {
    self.stream = stream
    self.tails = tails
    self.tailMax = tailMax
  }

  /// Whether a file of `size` bytes is kept whole in its inode (`InodeSlots.fileIsInline`).
  public func isInline(size: UInt64) -> Bool { InodeSlots.fileIsInline(size: size) }

  public func beginFile(ino: UInt32, size: UInt64) throws {
    if open { _ = try finishFile() }
    self.ino = ino
    self.size = size
    open = true
    nextOffset = 0
    extents = []
    // The buffer is reused file after file (a tail is copied out by `TailPacker.place`, inline
    // bytes by `finishFile`): no allocation per small file.
    small.removeAll(keepingCapacity: true)
    placedTail = nil
    placedInline = nil
    curLogical = .max
    curFill = 0
    let bs = UInt64(RoseLayout.blockSize)
    inlineFile = isInline(size: size)
    if inlineFile {
      bodyEnd = 0
    } else if size % bs != 0 && Int(size % bs) <= tailMax {
      bodyEnd = size - size % bs
    } else {
      bodyEnd = size
    }
  }

  /// Bytes at `offset` (not before the end of the previous write). Data past the declared size is
  /// an error: the caller (ingest) names the entry.
  public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
    guard open, offset >= nextOffset, offset + UInt64(bytes.count) <= size else {
      throw RoseFSError.invalidOption(
        "data written out of order or past the declared size (\(offset)+\(bytes.count) of \(size))")
    }
    var pos = offset
    var src = 0
    let bs = UInt64(RoseLayout.blockSize)
    while src < bytes.count {
      if pos < bodyEnd {
        let logical = pos / bs
        if logical != curLogical {
          try flushCurrent()
          curLogical = logical
          curFill = 0
          let dst = stream.reserveNext()
          dst.initializeMemory(as: UInt8.self, repeating: 0)
        }
        let inBlock = Int(pos % bs)
        let blockEnd = min((logical + 1) * bs, bodyEnd)
        let n = min(bytes.count - src, Int(blockEnd - pos))
        let dst = stream.reserveNext()
        (dst.baseAddress! + inBlock).copyMemory(from: bytes.baseAddress! + src, byteCount: n)
        curFill = inBlock + n
        pos += UInt64(n)
        src += n
        if pos == blockEnd { try flushCurrent() }
      } else if pos == bodyEnd && small.isEmpty && bytes.count - src == Int(size - bodyEnd) {
        // The whole tail (or the whole inline file) in this one piece. The body's last block is
        // written first, as `finishFile` would before placing the tail: the same block order.
        let piece = UnsafeRawBufferPointer(rebasing: bytes[src..<bytes.count])
        if inlineFile {
          placedInline = Array(piece)
        } else {
          try flushCurrent()
          placedTail = try tails.place(piece, nid: ino / UInt32(RoseLayout.inodesPerPage))
        }
        pos += UInt64(piece.count)
        src = bytes.count
      } else {
        let at = Int(pos - bodyEnd)
        if small.count < at { small.append(contentsOf: repeatElement(0, count: at - small.count)) }
        let n = bytes.count - src
        small.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[src..<src + n]))
        pos += UInt64(n)
        src += n
      }
    }
    nextOffset = pos
  }

  public func write(_ bytes: [UInt8], at offset: UInt64) throws {
    try bytes.withUnsafeBytes { try write($0, at: offset) }
  }

  private func flushCurrent() throws {
    guard curLogical != .max else { return }
    // A block of zeros is stored as a hole (the format reads holes as zeros): a zero-filled or
    // sparse input stays sparse, whatever it claims to be.
    if isAllZero(UnsafeRawBufferPointer(stream.reserveNext())) {
      curLogical = .max
      return
    }
    let phys = try stream.commit(dataChecksum: true)
    let logical = UInt32(curLogical)
    if var last = extents.last, last.logical + last.count == logical,
      last.physical + last.count == phys
    {
      last.count += 1
      extents[extents.count - 1] = last
    } else {
      extents.append(Extent(logical: logical, physical: phys, count: 1))
    }
    curLogical = .max
  }

  private func isAllZero(_ block: UnsafeRawBufferPointer) -> Bool {
    var acc: UInt64 = 0
    let words = block.count / 8
    for i in 0..<words { acc |= block.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) }
    for i in words * 8..<block.count { acc |= UInt64(block[i]) }
    return acc == 0
  }

  public func finishFile() throws -> FileContent {
    guard open else { return .empty }
    open = false
    try flushCurrent()
    if inlineFile {
      if let placedInline { return FileContent(size: size, inline: placedInline) }
      if small.count < Int(size) {
        small.append(contentsOf: repeatElement(0, count: Int(size) - small.count))
      }
      // A copy of exactly the file's length (`Array(small)` would share the reused buffer, and
      // the tree would keep its whole capacity): the reused buffer stays here.
      return FileContent(size: size, inline: small.withUnsafeBufferPointer { Array($0) })
    }
    var content = FileContent(size: size, extents: extents)
    let tailLen = Int(size - bodyEnd)
    if let placedTail {
      content.tail = placedTail
    } else if tailLen > 0 {
      if small.count < tailLen {
        small.append(contentsOf: repeatElement(0, count: tailLen - small.count))
      }
      content.tail = try tails.place(small, nid: ino / UInt32(RoseLayout.inodesPerPage))
    }
    return content
  }

  /// A whole file from memory (symlink targets, inline text, templates).
  public func store(_ bytes: [UInt8], ino: UInt32) throws -> FileContent {
    try beginFile(ino: ino, size: UInt64(bytes.count))
    try write(bytes, at: 0)
    return try finishFile()
  }

  private var releasesFrozen = false

  /// After a snapshot, data may be shared by subvolumes: `release` then does nothing.
  public func freezeReleases() { releasesFrozen = true }

  /// The content of a replaced or removed file: its blocks become free space in the image.
  public func release(_ content: FileContent) {
    guard !releasesFrozen else { return }
    for e in content.extents { dead.append((e.physical, e.count)) }
    if let t = content.tail { tails.release(t) }
  }

  /// Released block ranges, sorted.
  var deadRanges: [(UInt32, UInt32)] { dead.sorted { $0.0 < $1.0 } }

  /// Reads back what was stored (tests, and `cat` of a tree not yet packed).
  public func readBack(_ content: FileContent) throws -> [UInt8] {
    if let inline = content.inline { return inline }
    var out = [UInt8](repeating: 0, count: Int(content.size))
    let bs = RoseLayout.blockSize
    for e in content.extents {
      for i in 0..<Int(e.count) {
        let block = try stream.readBack(e.physical + UInt32(i))
        let start = (Int(e.logical) + i) * bs
        let n = min(bs, out.count - start)
        if n > 0 { out.replaceSubrange(start..<start + n, with: block[0..<n]) }
      }
    }
    if let t = content.tail {
      let bytes = try tails.readBack(t)
      let start = out.count - bytes.count
      out.replaceSubrange(start..<out.count, with: bytes)
    }
    return out
  }
}

/// Packs the last partial blocks of files into shared tail blocks (FORMAT.md 9.3): 4096 bytes of
/// fragment data with no header, each fragment named only by its inode's `tail_off`/`tail_len`.
/// Fragments fill a block from byte 0 up. A few blocks stay open for best-fit placement; the
/// address of a tail block is known only when it is written, so a `TailRef` holds the tail block's
/// sequence number until `resolve` maps it. The block's checksum goes to the SSA (kind TAIL) like a
/// data block's.
///
/// A tail block's SSA entry names the inode pages of its fragments' inodes (`owner ... owner +
/// index`); the engine keeps that range within `maxPageRange` pages (FORMAT.md 13.2) so that the
/// cleaner's scan of a block reads at most 65 pages, and so does the packer: a fragment joins an open
/// block only when the block's range stays within the bound. At ingest the range is in provisional
/// inode numbers; `ImageBuilder.boundTailPageRanges` checks it again in the final numbers.
///
/// `place` runs once per small file (most of a tarball of small files): the open blocks are values
/// in one array (no reference counting in the best-fit scan), and a written block's payload buffer
/// is reused by the next block without being zeroed, because only the `used` bytes are ever read
/// (`flush` zero-fills the rest of the block as it writes it).
final class TailPacker {
  struct OpenBlock {
    let id: UInt32
    /// `RoseLayout.blockSize` bytes; those from `used` on are stale and never read.
    var payload: [UInt8]
    var used = 0
    /// Lowest and highest inode page (nid) among the block's fragments.
    var lowNid: UInt32
    var highNid: UInt32
    init(id: UInt32, nid: UInt32, payload: [UInt8]) {
      self.id = id
      self.payload = payload
      lowNid = nid
      highNid = nid
    }
    func free(adding n: Int) -> Int { RoseLayout.blockSize - used - n }
    /// Whether a fragment of an inode in page `nid` keeps the block's page range within `bound`.
    func accepts(nid: UInt32, bound: UInt32) -> Bool {
      max(highNid, nid) - min(lowNid, nid) <= bound
    }
    /// Copies `bytes` to the end of the fragments; returns where they start.
    mutating func append(_ bytes: UnsafeRawBufferPointer, nid: UInt32) -> Int {
      let at = used
      if let src = bytes.baseAddress, bytes.count > 0 {
        payload.withUnsafeMutableBytes { dst in
          (dst.baseAddress! + at).copyMemory(from: src, byteCount: bytes.count)
        }
      }
      used += bytes.count
      lowNid = min(lowNid, nid)
      highNid = max(highNid, nid)
      return at
    }
  }

  /// The most a tail block's inode page range (`index` of its SSA entry) may span (FORMAT.md 13.2).
  static let maxPageRange: UInt32 = 64

  let stream: BlockStream
  let cpVer: UInt64
  private var open: [OpenBlock] = []
  /// Payload buffers of written blocks, for the next blocks to open.
  private var spare: [[UInt8]] = []
  private var nextID: UInt32 = 0
  /// The page of the last scan for blocks to write (`place`).
  private var retiredThrough: UInt32 = .max
  private(set) var addresses: [UInt32] = []  // by tail block id
  private let maxOpen = 32

  init(stream: BlockStream, cpVer: UInt64) {
    self.stream = stream
    self.cpVer = cpVer
    open.reserveCapacity(maxOpen)
  }

  /// A new open block, on a reused payload buffer when there is one.
  private func makeBlock(nid: UInt32) -> OpenBlock {
    let payload = spare.popLast() ?? [UInt8](repeating: 0, count: RoseLayout.blockSize)
    let b = OpenBlock(id: nextID, nid: nid, payload: payload)
    nextID += 1
    addresses.append(0)
    return b
  }

  /// Places the last partial block of a file whose inode is in page `nid`.
  func place(_ bytes: [UInt8], nid: UInt32) throws -> TailRef {
    try bytes.withUnsafeBytes { try place($0, nid: nid) }
  }

  /// Places the last partial block of a file whose inode is in page `nid` (at most a block).
  func place(_ bytes: UnsafeRawBufferPointer, nid: UInt32) throws -> TailRef {
    let n = bytes.count
    guard n <= RoseLayout.blockSize else { throw RoseFSError.corrupt("tail packer: \(n) bytes") }
    let bound = Self.maxPageRange
    // Inode numbers grow with the input: a block whose range can no longer take this page will
    // take no later one either, so it is written now and its open slot freed (in open order).
    // Files of one inode page (most calls) find nothing new to write: a block opened since the
    // last scan starts at that page, and a fragment only lowers a block's low page.
    if nid != retiredThrough {
      var i = 0
      while i < open.count {
        if nid > open[i].lowNid && nid - open[i].lowNid > bound {
          try flush(open.remove(at: i))
        } else {
          i += 1
        }
      }
      retiredThrough = nid
    }
    var best = -1
    var bestFree = Int.max
    for j in open.indices {
      let f = open[j].free(adding: n)
      if f >= 0 && f < bestFree && open[j].accepts(nid: nid, bound: bound) {
        best = j
        bestFree = f
      }
    }
    if best < 0 {
      if open.count >= maxOpen {
        // Write out the fullest block (the first of the fullest) to make room.
        var fullest = 0
        for j in open.indices where open[j].used > open[fullest].used { fullest = j }
        try flush(open.remove(at: fullest))
      }
      open.append(makeBlock(nid: nid))
      best = open.count - 1
    }
    let at = open[best].append(bytes, nid: nid)
    let ref = TailRef(block: open[best].id, offset: UInt16(at), length: UInt16(n))
    if open[best].free(adding: 1) < 0 {
      // Full: nothing more fits, write it now.
      try flush(open.remove(at: best))
    }
    return ref
  }

  /// Places fragments moved out of blocks whose final page range is too wide, in the order given
  /// (final inode order), into new blocks of their own: each starts when the fragment does not fit
  /// or the range would pass the bound. Returns the new references, in the same order.
  func placeMoved(_ fragments: [(bytes: [UInt8], nid: UInt32)]) throws -> [TailRef] {
    var refs: [TailRef] = []
    var current: OpenBlock?
    for f in fragments {
      if let c = current,
        c.free(adding: f.bytes.count) < 0 || !c.accepts(nid: f.nid, bound: Self.maxPageRange)
      {
        try flush(c)
        current = nil
      }
      // Taken out of `current`, so that the payload is not shared when it is written to.
      var b = current.take() ?? makeBlock(nid: f.nid)
      let at = f.bytes.withUnsafeBytes { b.append($0, nid: f.nid) }
      refs.append(TailRef(block: b.id, offset: UInt16(at), length: UInt16(f.bytes.count)))
      current = b
    }
    if let c = current { try flush(c) }
    return refs
  }

  /// A fragment whose file was replaced: its bytes are zeroed if its block is still open (the
  /// space is not reused; a written block keeps the dead bytes).
  func release(_ t: TailRef) {
    guard let i = open.firstIndex(where: { $0.id == t.block }) else { return }
    open[i].payload.replaceSubrange(
      Int(t.offset)..<Int(t.offset) + Int(t.length), with: repeatElement(0, count: Int(t.length)))
  }

  func flushAll() throws {
    let blocks = open.sorted { $0.id < $1.id }
    open = []
    for b in blocks { try flush(b) }
  }

  /// Writes `b` (its fragments, then zeros) and keeps its payload buffer for a later block.
  private func flush(_ b: OpenBlock) throws {
    let addr = stream.nextBlock
    let dst = stream.reserveNext()
    b.payload.withUnsafeBytes {
      dst.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: b.used)
    }
    (dst.baseAddress! + b.used).initializeMemory(
      as: UInt8.self, repeating: 0, count: RoseLayout.blockSize - b.used)
    spare.append(b.payload)
    try stream.commit(dataChecksum: true)
    addresses[Int(b.id)] = addr
  }

  /// Final address of tail block `id` (valid after it was written).
  func resolve(_ id: UInt32) -> UInt32 { addresses[Int(id)] }

  func readBack(_ t: TailRef) throws -> [UInt8] {
    if let b = open.first(where: { $0.id == t.block }) {
      return Array(b.payload[Int(t.offset)..<Int(t.offset) + Int(t.length)])
    }
    let block = try stream.readBack(addresses[Int(t.block)])
    return Array(block[Int(t.offset)..<Int(t.offset) + Int(t.length)])
  }
}

extension ImageBuilder {
  /// Keeps every tail block's inode page range within `TailPacker.maxPageRange` pages in the final
  /// inode numbers (after `assignInodeNumbers`, before the tail blocks are all written). At ingest
  /// the bound held in provisional numbers; inodes of several slots can spread pages apart, and then
  /// the fragments past the bound move to new tail blocks. Their old bytes stay as dead bytes, like
  /// a replaced file's (FORMAT.md 9.3): another head's copy of the inode may still name them.
  /// Deterministic: the moved fragments are placed in final inode number order.
  func boundTailPageRanges(_ views: [HeadView]) throws {
    let perPage = UInt32(RoseLayout.inodesPerPage)
    // Two passes over the views rather than a list of inodes per block: memory follows the tail
    // blocks (4 bytes each, indexed by the block's sequence number: a dictionary cost 5 % of
    // packing 200,000 small files), not the files (issue 10).
    var lowestPage = [UInt32](repeating: .max, count: tails.addresses.count)
    for view in views {
      for inode in view.inodes.values {
        guard inode.content.inline == nil, let tail = inode.content.tail,
          Int(tail.block) < lowestPage.count
        else { continue }
        let page = inode.ino / perPage
        lowestPage[Int(tail.block)] = min(lowestPage[Int(tail.block)], page)
      }
    }
    var moving: [Inode] = []
    var movingObjects = Set<ObjectIdentifier>()
    for view in views {
      for inode in view.inodes.values {
        guard inode.content.inline == nil, let tail = inode.content.tail,
          Int(tail.block) < lowestPage.count,
          inode.ino / perPage - lowestPage[Int(tail.block)] > TailPacker.maxPageRange,
          movingObjects.insert(ObjectIdentifier(inode)).inserted
        else { continue }
        moving.append(inode)
      }
    }
    guard !moving.isEmpty else { return }
    moving.sort { $0.ino < $1.ino }
    var fragments: [(bytes: [UInt8], nid: UInt32)] = []
    for inode in moving {
      guard let t = inode.content.tail else { continue }
      fragments.append((try tails.readBack(t), inode.ino / perPage))
    }
    let refs = try tails.placeMoved(fragments)
    for (inode, ref) in zip(moving, refs) { inode.content.tail = ref }
  }
}

/// Options of one pack. Everything that affects the bytes of the image is here (R9).
public struct BuildOptions: Sendable {
  /// Volume size in bytes; nil packs the smallest volume that holds the content plus the reserve.
  public var size: UInt64?
  public var label: String
  /// 16 bytes; nil derives it from a digest of the content and SOURCE_DATE_EPOCH (FORMAT.md section 3),
  /// so rebuilds are identical and different images differ.
  public var uuid: [UInt8]?
  public var sourceDateEpoch: Int64
  public var tailMax: Int
  /// Extra hidden slack for the runtime cleaner, in blocks (0: the segment reserve alone).
  public var overprovisionBlocks: UInt32

  public init(
    size: UInt64? = nil, label: String = "", uuid: [UInt8]? = nil, sourceDateEpoch: Int64 = 0,
    tailMax: Int = RoseLayout.defaultTailMax, overprovisionBlocks: UInt32 = 0
  ) {
    self.size = size
    self.label = label
    self.uuid = uuid
    self.sourceDateEpoch = sourceDateEpoch
    self.tailMax = tailMax
    self.overprovisionBlocks = overprovisionBlocks
  }
}

/// Something that can hand out a file's bytes: the `DataWriter` before the image is finished, the
/// `ImageReader` after. Chunks come at increasing offsets; holes are not reported.
public protocol ContentSource: AnyObject {
  func readContent(_ content: FileContent, _ body: (UnsafeRawBufferPointer, UInt64) throws -> Void)
    throws
}

extension DataWriter: ContentSource {
  public func readContent(
    _ content: FileContent, _ body: (UnsafeRawBufferPointer, UInt64) throws -> Void
  ) throws {
    // Block by block, so that exporting a tree before it is packed never holds a whole file.
    if let inline = content.inline {
      if !inline.isEmpty { try inline.withUnsafeBytes { try body($0, 0) } }
      return
    }
    let bs = UInt64(RoseLayout.blockSize)
    for e in content.extents {
      for i in 0..<UInt64(e.count) {
        let offset = (UInt64(e.logical) + i) * bs
        guard offset < content.size else { break }
        let block = try stream.readBack(e.physical + UInt32(i))
        let n = Int(min(bs, content.size - offset))
        try block.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n]), offset) }
      }
    }
    if let t = content.tail {
      let bytes = try tails.readBack(t)
      try bytes.withUnsafeBytes { try body($0, content.size - UInt64(bytes.count)) }
    }
  }
}

/// Packs a tree into a fresh RoseFS volume in one sequential pass: file data streams in through
/// `data` while ingest reads its inputs, then `finish` writes the metadata after it, then the
/// checkpoint and superblocks at their fixed places.
public final class ImageBuilder {
  public internal(set) var options: BuildOptions
  public internal(set) var image: ImageFile
  /// The volume UUID: the one given, or (until `finish` derives it from the content) all zero.
  public internal(set) var uuid: [UInt8]
  /// Checksums under `uuid`. The data phase checksums under the provisional UUID; `finish` corrects
  /// those values once the real one is known (`RoseChecksum.correction`).
  var checksum: RoseChecksum
  let uuidIsGiven: Bool
  /// Xor onto the data checksums spooled during the data phase (0 when the UUID was given).
  var dataChecksumCorrection: UInt32 = 0
  let stream: BlockStream
  let tails: TailPacker
  public let data: DataWriter
  /// Where ingest keeps small files' bytes until their inode pages are written (Tree.swift).
  public let inlinePool = InlineBytesPool()
  var nextIno: UInt32 = UInt32(RoseLayout.inodesPerPage)  // nid 0 is never used
  public let cpVer: UInt64 = 1
  /// Where the data phase ended, set by the first `finish` (see Repack.swift).
  var sealedDataEnd: UInt32?

  public init(image: ImageFile, options: BuildOptions) throws {
    if let s = options.size {
      if s < RoseLayout.minVolumeBytes {
        throw RoseFSError.volumeBelowMinimum(bytes: s)
      }
      if s > (UInt64(UInt32.max) + 1) << RoseLayout.blockShift {
        throw RoseFSError.volumeTooLarge(bytes: s)
      }
    }
    if options.tailMax < 0 || options.tailMax > RoseLayout.blockSize - 64 {
      throw RoseFSError.invalidOption("tail limit must be between 0 and 4032 bytes")
    }
    self.options = options
    self.image = image
    if let given = options.uuid, given.count == 16 {
      uuid = given
      uuidIsGiven = true
    } else {
      uuid = [UInt8](repeating: 0, count: 16)
      uuidIsGiven = false
    }
    checksum = RoseChecksum(uuid: uuid)
    stream = try BlockStream(image: image, checksum: checksum, firstBlock: RoseLayout.mainStart)
    tails = TailPacker(stream: stream, cpVer: cpVer)
    data = DataWriter(
      stream: stream, tails: tails, tailMax: options.tailMax)
  }

  /// A new inode with the next inode number. Ingest calls this for every file it creates, in input
  /// order, so numbering is deterministic.
  public func makeInode(
    kind: FileKind, permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0, mtime: Timestamp,
    atime: Timestamp? = nil, ctime: Timestamp? = nil, xattrs: [Xattr] = []
  ) -> Inode {
    let inode = Inode(
      kind: kind, permissions: permissions, uid: uid, gid: gid, mtime: mtime, atime: atime,
      ctime: ctime, xattrs: xattrs)
    inode.ino = nextIno
    nextIno += 1
    return inode
  }

  /// A snapshot of a tree for another subvolume (B of A): every directory is copied (same inode
  /// numbers), every other inode is shared, so the snapshot's directories can be edited freely while
  /// unchanged parts still pack to shared blocks. From now on, replaced files no longer free their
  /// data, because the other subvolume may still use it.
  public func snapshot(_ root: Inode) -> Inode {
    data.freezeReleases()
    func copy(_ dir: Inode) -> Inode {
      let c = dir.clone()
      for (name, child) in dir.children where child.kind == .directory {
        c.children[name] = copy(child)
      }
      return c
    }
    return copy(root)
  }

  var allocatedInoLimit: UInt32 { nextIno }
}

/// Block helpers shared by the packer phases.
extension ImageBuilder {
  func deriveSeed(_ purpose: String) -> [UInt8] {
    var out: [UInt8] = []
    for i in 0..<4 {
      let c = crc32c(uuid + Array(purpose.utf8) + [UInt8(i)])
      appendLE(&out, c)
    }
    return out
  }

  /// Fills in `blkaddr` and the checksum of a block that starts with a block header.
  func sealHeader(_ bytes: inout [UInt8], blkaddr: UInt32) {
    bytes.withUnsafeMutableBytes { buf in
      buf.storeBytes(
        of: blkaddr.littleEndian, toByteOffset: BlockHeader.Offset.blkaddr, as: UInt32.self)
      let crc = checksum.checksum(
        UnsafeRawBufferPointer(buf), zeroingFieldAt: BlockHeader.crcOffset)
      buf.storeBytes(of: crc.littleEndian, toByteOffset: BlockHeader.crcOffset, as: UInt32.self)
    }
  }

  func writeHeader(
    _ bytes: inout [UInt8], magic: UInt32, addr: UInt32, owner: UInt32, count: UInt16, level: UInt8,
    subtype: UInt8, aux: UInt32
  ) {
    bytes.withUnsafeMutableBytes { buf in
      var w = ByteWriter(buf)
      BlockHeader(
        magic: magic, cpVer: cpVer, blkaddr: addr, owner: owner, count: count, level: level,
        subtype: subtype, aux: aux
      ).encode(into: &w)
    }
  }
}

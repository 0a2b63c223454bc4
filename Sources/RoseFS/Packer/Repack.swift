#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Packing the same ingested tree again at another size, into another image, without reading the
/// inputs again: an automatically sized or growing partition is first packed at its smallest size
/// (to learn it), then at the size the disk plan gives it (issue 10: every input is read once).
///
/// The data phase wrote blocks `mainStart..<dataEnd` at volume-relative addresses that do not
/// depend on the volume size; only the metadata after them and the fixed area do. So the data
/// blocks are copied as they are, the stream continues at `dataEnd` in the new image, and `finish`
/// writes the metadata for the new geometry. Memory: the tree (already held), one copy buffer.
extension ImageBuilder {
  /// Packs the tree again as a volume of `size` bytes in `target`, after `finish` ran once (the
  /// same `subvolumes`). The volume UUID must have been given (`BuildOptions.uuid`): a derived one
  /// depends on the size.
  public func finish(
    into target: ImageFile, size: UInt64, subvolumes: [Subvolume], defaultSubvolume: Int = 0
  ) throws -> BuildReport {
    guard let dataEnd = sealedDataEnd else {
      throw RoseFSError.invalidOption("repacking needs a finished volume (call finish first)")
    }
    guard uuidIsGiven else {
      throw RoseFSError.invalidOption("repacking at another size needs a given volume UUID")
    }
    if size < RoseLayout.minVolumeBytes {
      throw RoseFSError.invalidOption(
        "--size \(size) is below the RoseFS minimum of 16 MiB (16777216 bytes)")
    }
    if size > (UInt64(UInt32.max) + 1) << RoseLayout.blockShift {
      throw RoseFSError.volumeTooLarge(bytes: size)
    }
    try stream.flush()
    let bs = RoseLayout.blockSize
    let batch = 256
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: batch * bs, alignment: 4096)
    defer { buffer.deallocate() }
    var block = RoseLayout.mainStart
    while block < dataEnd {
      let n = Int(min(UInt32(batch), dataEnd - block))
      let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n * bs])
      let at = UInt64(block) << RoseLayout.blockShift
      try image.read(into: chunk, atByte: at)
      try target.write(UnsafeRawBufferPointer(chunk), atByte: at)
      block += UInt32(n)
    }
    image = target
    options.size = size
    try stream.retarget(target, at: dataEnd)
    return try finish(subvolumes: subvolumes, defaultSubvolume: defaultSubvolume)
  }
}

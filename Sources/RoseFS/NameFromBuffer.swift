extension Name {
  /// A name from bytes in a buffer (a path component being split, an entry's name in libarchive's
  /// memory): a name of up to `inlineCapacity` bytes is packed straight from the buffer, with no
  /// array made and freed on the way (ingest splits one path per archive entry).
  public init(_ bytes: UnsafeRawBufferPointer) {
    if bytes.count <= Name.inlineCapacity, !bytes.contains(0) {
      var packed: (UInt64, UInt32, UInt16, UInt8) = (0, 0, 0, 0)
      withUnsafeMutableBytes(of: &packed) { raw in
        if let src = bytes.baseAddress {
          raw.baseAddress?.copyMemory(from: src, byteCount: bytes.count)
        }
      }
      storage = .short(packed.0, packed.1, packed.2, packed.3)
    } else {
      storage = .long(Array(bytes))
    }
  }
}

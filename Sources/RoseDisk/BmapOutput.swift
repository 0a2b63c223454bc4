import Foundation
import RoseSizes

/// bmaptool block map, format 2.0, sha256, block size 4096, written from the AllocationMap
/// (not by probing holes, so it is correct before compression and on any filesystem).
///
/// Checksums follow bmaptool 3.x: every `<Range chksum="...">` is the SHA-256 of the image
/// bytes of blocks `first...last` (cut at the end of the image), and `BmapFileChecksum` is
/// the SHA-256 of the whole bmap file with that element's text replaced by 64 ASCII `0`s.
public struct BmapOutput: Sendable {
  public static let blockSize: UInt64 = 4096

  public init() {}

  /// Writes the bmap for `rawImage` to `output`; `map` lists the used byte ranges.
  /// Returns the number of mapped blocks.
  @discardableResult
  /// `describes` names the image files (raw, `.zst`) the bmap is written for; they go into a
  /// comment, since the format has no field for them.
  public func write(
    rawImage: String, map: AllocationMap, to output: String, describes: [String] = []
  ) throws -> UInt64 {
    let input = try FileIO.open(rawImage, flags: O_RDONLY)
    defer { close(input) }
    let imageSize = try FileIO.size(input, path: rawImage)
    guard imageSize > 0 else {
      throw DiskError.invalidInput(path: rawImage, reason: "image is empty")
    }
    let bs = BmapOutput.blockSize
    let blocks = (imageSize + bs - 1) / bs
    let ranges = map.blockRanges(blockSize: bs, imageSize: imageSize)
    let mapped = ranges.reduce(UInt64(0)) { $0 + $1.last - $1.first + 1 }

    let buffer = FileIO.allocate(FileIO.chunkSize)
    defer { buffer.deallocate() }
    let hash = SHA256Stream()
    var body = ""
    for range in ranges {
      let start = range.first * bs
      let end = min((range.last + 1) * bs, imageSize)
      var offset = start
      while offset < end {
        let count = Int(min(UInt64(buffer.count), end - offset))
        let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
        try RawImageOutput.readMapped(input, path: rawImage, map: nil, offset: offset, into: chunk)
        hash.update(UnsafeRawBufferPointer(chunk))
        offset += UInt64(count)
      }
      let digest = hash.finalizeHex()
      let span = range.first == range.last ? "\(range.first)" : "\(range.first)-\(range.last)"
      body += "        <Range chksum=\"\(digest)\"> \(span) </Range>\n"
    }

    let describedComment =
      describes.isEmpty
      ? ""
      : "\n<!-- Describes: "
        + describes.map { $0.replacingOccurrences(of: "--", with: "-") }
        .joined(separator: ", ") + " -->"
    let zeros = String(repeating: "0", count: 64)
    let percent = blocks == 0 ? 0 : (mapped * 1000 / blocks)
    var text = """
      <?xml version="1.0" ?>
      <!-- Block map written by rosepack from its allocation map (bmaptool format 2.0). -->\(describedComment)
      <bmap version="2.0">
          <!-- Image size in bytes: \(formatSize(imageSize, exact: true)) -->
          <ImageSize> \(imageSize) </ImageSize>

          <!-- Size of a block in bytes -->
          <BlockSize> \(bs) </BlockSize>

          <!-- Count of blocks in the image file -->
          <BlocksCount> \(blocks) </BlocksCount>

          <!-- Count of mapped blocks: \(formatSize(mapped * bs, exact: true)) or \(percent / 10).\(percent % 10)% -->
          <MappedBlocksCount> \(mapped) </MappedBlocksCount>

          <!-- Type of checksum used in this file -->
          <ChecksumType> sha256 </ChecksumType>

          <!-- The checksum of this bmap file. When it is calculated, the value of
               the checksum has be zero (all ASCII "0" symbols).  -->
          <BmapFileChecksum> \(zeros) </BmapFileChecksum>

          <!-- The block map which consists of elements which may either be a
               range of blocks or a single block. The 'chksum' attribute
               (if present) is the checksum of this blocks range. -->
          <BlockMap>

      """
    text += body
    text += "    </BlockMap>\n</bmap>\n"
    var bytes = Array(text.utf8)
    let fileDigest = SHA256Stream.hex(SHA256Stream.digest(bytes))
    let marker = Array("<BmapFileChecksum> ".utf8)
    guard let position = firstIndex(of: marker, in: bytes) else {
      throw DiskError.invalidInput(path: output, reason: "internal error: checksum field missing")
    }
    let start = position + marker.count
    bytes.replaceSubrange(start..<(start + 64), with: Array(fileDigest.utf8))

    let file = try AtomicOutputFile(path: output)
    try FileIO.write(file.fd, bytes, at: 0, path: file.temporaryPath)
    try file.commit()
    return mapped
  }

  func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard needle.count <= haystack.count else { return nil }
    for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
      if Array(haystack[i..<(i + needle.count)]) == needle { return i }
    }
    return nil
  }
}

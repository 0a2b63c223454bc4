import CChecksum
import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

@Suite struct GPTFuzzTests {
  /// Headers with random fields but valid CRCs must be rejected with a DiskError (or
  /// accepted), never crash the reader.
  @Test func randomHeaderFieldsNeverCrash() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image.path)).prefix(4096))
    var rng = SplitMix(seed: 7)
    let fd = open(image.path, O_RDWR)
    defer { close(fd) }
    let interesting: [UInt64] = [0, 1, 2, 33, 34, 4095, 4096, 1 << 32, UInt64.max, UInt64.max - 1]
    for round in 0..<300 {
      var header = Array(original[512..<604])
      // Pick a field and set it to an edge or random value.
      let fields: [(Int, Int)] = [
        (24, 8), (32, 8), (40, 8), (48, 8), (72, 8), (80, 4), (84, 4), (12, 4),
      ]
      let (offset, width) = fields[Int(rng.next() % UInt64(fields.count))]
      let value =
        round % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))] : rng.next()
      for i in 0..<width {
        header[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))
      }
      header.replaceSubrange(16..<20, with: [0, 0, 0, 0])
      let crc = header.withUnsafeBytes {
        rose_crc32_update(0xFFFF_FFFF, $0.baseAddress, 92) ^ 0xFFFF_FFFF
      }
      header.storeLE(crc, at: 16)
      _ = header.withUnsafeBytes { pwrite(fd, $0.baseAddress, 92, 512) }
      do {
        _ = try GPTReader.read(path: image.path)
        _ = try GPTReader.read(path: image.path, recoverFromBackup: true)
      } catch is DiskError {
        // expected for most mutations
      }
    }
  }
}

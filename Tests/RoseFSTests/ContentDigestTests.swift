import Foundation
import Testing

@testable import RoseFS

/// `ContentDigest` is SHA-256 fed in pieces; checked against coreutils' `sha256sum` on the same bytes.
@Suite struct ContentDigestTests {
  static func sha256sum(_ bytes: [UInt8]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    // Write on another thread: a large input would fill the pipe before sha256sum's output is read.
    let writer = Thread {
      input.fileHandleForWriting.write(Data(bytes))
      try? input.fileHandleForWriting.close()
    }
    writer.start()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(String(decoding: data, as: UTF8.self).prefix(64))
  }

  static func hex(_ b: [UInt8]) -> String {
    b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
      .joined()
  }

  @Test(arguments: [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 70_001])
  func matchesSha256sum(length: Int) throws {
    var rng = SystemRandomNumberGenerator()
    let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
    // Fed in pieces of 0 to 150 bytes, crossing the 64-byte buffer at every offset.
    var d = ContentDigest()
    var at = 0
    while at < bytes.count {
      let n = min(Int.random(in: 0...150), bytes.count - at)
      d.update(Array(bytes[at..<at + n]))
      at += n
    }
    #expect(Self.hex(d.finalize()) == (try Self.sha256sum(bytes)))
  }

  /// Pieces up to 10,000 bytes: some fill the 4 KiB gathering buffer, some bypass it.
  @Test func largePiecesMatchSha256sum() throws {
    var rng = SystemRandomNumberGenerator()
    let bytes = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
    var d = ContentDigest()
    var at = 0
    while at < bytes.count {
      let n = min(Int.random(in: 0...10_000), bytes.count - at)
      d.update(Array(bytes[at..<at + n]))
      at += n
    }
    #expect(Self.hex(d.finalize()) == (try Self.sha256sum(bytes)))
  }

  @Test func integersAndFieldsFeedTheirBytes() throws {
    var d = ContentDigest()
    d.update(UInt32(0x0102_0304))
    d.update(field: [9, 8, 7])
    d.update(UInt8(5))
    let expected: [UInt8] = [4, 3, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 9, 8, 7, 5]
    #expect(Self.hex(d.finalize()) == (try Self.sha256sum(expected)))
  }
}

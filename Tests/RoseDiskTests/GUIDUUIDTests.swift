import Foundation
import Testing

@testable import RoseDisk

/// GUID and Foundation's UUID convert byte for byte (no text round trip): the canonical order of
/// both, checked against the text form and against GPT's mixed-endian bytes of a known type.
@Suite struct GUIDUUIDTests {
  @Test func convertsByteForByte() throws {
    let text = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"  // the ESP type
    let uuid = try #require(UUID(uuidString: text))
    let guid = GUID(uuid)
    #expect(guid == (try GUID(parsing: text)))
    #expect(guid.description == text)
    #expect(guid.uuid == uuid)
    // GPT stores the first three fields little-endian: 28 73 2A C1 1F F8 D2 11 BA 4B ...
    #expect(
      guid.gptBytes == [
        0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9,
        0x3B,
      ])
    let random = UUID()
    #expect(GUID(random).uuid == random)
    #expect(GUID(random).description == random.uuidString.lowercased())
    #expect(GUID.zero.uuid == UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
  }
}

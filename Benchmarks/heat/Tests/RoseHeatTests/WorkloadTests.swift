import Testing

@testable import RoseHeat

@Suite struct WorkloadTests {
  @Test func placeholder() { #expect(true) }
}

import XCTest

@testable import RoseBuild

final class BuildPipelineTests: XCTestCase {
  func testLibraryLinks() {
    XCTAssertEqual(CLIError.failed("x").description, "x")
  }
}

// Helpers shared by the test targets that check our outputs with tools we did not write.
import Foundation

public struct TestFailure: Error, CustomStringConvertible {
  public let description: String
  public init(_ message: String) { description = message }
}

/// A unique temporary directory, removed by `remove()`.
public final class TempDir {
  public let path: String

  /// `prefix` names the test target in the directory name (`rosedisk-test-...`).
  public init(prefix: String = "rose") throws {
    let base = FileManager.default.temporaryDirectory.path
    path = base + "/" + prefix + "-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  public func file(_ name: String) -> String { path + "/" + name }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}

public struct ToolResult {
  public let status: Int32
  public let output: String
}

/// Runs an external checker. A missing tool fails the test naming the apt package to install.
@discardableResult
public func runTool(
  _ name: String, package: String, _ arguments: [String], expectSuccess: Bool = true
)
  throws -> ToolResult
{
  let candidates = ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].map { $0 + name }
  guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) })
  else {
    throw TestFailure("required tool '\(name)' is missing: apt-get install \(package)")
  }
  let process = Process()
  process.executableURL = URL(fileURLWithPath: path)
  process.arguments = arguments
  var environment = ProcessInfo.processInfo.environment
  environment["LC_ALL"] = "C"
  environment["MTOOLS_SKIP_CHECK"] = "1"
  process.environment = environment
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = pipe
  process.standardInput = FileHandle.nullDevice
  try process.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  let result = ToolResult(
    status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
  if expectSuccess && result.status != 0 {
    throw TestFailure(
      "\(name) \(arguments.joined(separator: " ")) exited \(result.status): \(result.output)")
  }
  return result
}

public func filesEqual(_ a: String, _ b: String) throws -> Bool {
  let da = try Data(contentsOf: URL(fileURLWithPath: a))
  let db = try Data(contentsOf: URL(fileURLWithPath: b))
  return da == db
}

/// Deterministic pseudo-random bytes (xorshift64*).
public func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
  var state = seed | 1
  var out = [UInt8](repeating: 0, count: count)
  out.withUnsafeMutableBytes { raw in
    let words = count / 8
    for i in 0..<words {
      state ^= state >> 12
      state ^= state << 25
      state ^= state >> 27
      raw.storeBytes(of: state &* 0x2545_F491_4F6C_DD1D, toByteOffset: i * 8, as: UInt64.self)
    }
  }
  return out
}

public let mib: UInt64 = 1 << 20

import Foundation
import Testing

/// The scale benchmark's harness works end to end on tiny datasets (no timing is asserted):
/// `Benchmarks/scale/bench.py --smoke` with the built binary writes results.json, results.md and
/// the scaling figures, and every rosepack row and the floor succeeded.
@Suite("Benchmarks/scale smoke run")
struct BenchmarkSmokeTests {
  @Test func smokeRunWritesResultsAndFigures() throws {
    guard let binary = CLI.binary else { throw TestFailure("rosepack binary not found") }
    for tool in ["python3", "bsdtar"] {
      guard (try? CLI.tool("which", [tool]))?.status == 0 else {
        print("skipped: \(tool) is not installed")
        return
      }
    }
    let out = try CLI.temporaryDirectory("bench-smoke")
    defer { try? FileManager.default.removeItem(atPath: out) }
    let run = try CLI.run(
      "/usr/bin/env",
      [
        "python3", CLI.repo + "/Benchmarks/scale/bench.py", "--smoke", "--rosepack", binary,
        "--out", out, "--work", out,
      ],
      environment: [:])
    #expect(run.status == 0, "\(run.stderr)")
    let json =
      try JSONSerialization.jsonObject(with: CLI.bytes(out + "/results.json")) as? [String: Any]
    let datasets = json?["datasets"] as? [[String: Any]] ?? []
    let names = datasets.compactMap { $0["name"] as? String }
    #expect(
      names.contains("scale-100") && names.contains("scale-1000") && names.contains("disk-1G"))
    var roseRows = 0
    for dataset in datasets {
      for row in dataset["rows"] as? [[String: Any]] ?? [] {
        let tool = row["tool"] as? String ?? ""
        if tool.hasPrefix("rosepack") || tool.hasPrefix("floor") {
          #expect(row["ok"] as? Bool == true, "\(tool) on \(dataset["name"] ?? ""): \(row)")
          #expect((row["rss"] as? Double ?? 0) > 0)
          roseRows += 1
        }
      }
    }
    #expect(roseRows >= 8)
    #expect((json?["headline"] as? [[String: Any]])?.isEmpty == false)
    for figure in ["entries-time.svg", "entries-memory.svg", "disk-time.svg", "disk-memory.svg"] {
      let text = try String(contentsOfFile: out + "/" + figure, encoding: .utf8)
      #expect(text.hasPrefix("<svg") && text.contains("rosepack"), "\(figure)")
    }
    let markdown = try String(contentsOfFile: out + "/results.md", encoding: .utf8)
    #expect(markdown.contains("| rosepack convert (tarball) |"))
  }
}

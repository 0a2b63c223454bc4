import Foundation

/// Errors of the command-line layer itself (bad arguments the parser cannot see).
public enum CLIError: Error, CustomStringConvertible {
  case usage(String)
  case failed(String)
  public var description: String {
    switch self {
    case .usage(let m), .failed(let m): return m
    }
  }
}

/// Progress on stderr when it is a terminal; silent in pipes and CI logs.
public final class Progress {
  public let enabled: Bool
  private var lastDraw = Date.distantPast
  private var drawn = false

  public init(quiet: Bool = false) { enabled = !quiet && isatty(2) == 1 }

  public func update(_ text: @autoclosure () -> String) {
    guard enabled else { return }
    let now = Date()
    guard now.timeIntervalSince(lastDraw) > 0.1 else { return }
    lastDraw = now
    var line = text()
    if line.count > 100 { line = String(line.prefix(100)) }
    FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    drawn = true
  }

  public func done() {
    guard enabled, drawn else { return }
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    drawn = false
  }
}

public func isDirectory(_ path: String) -> Bool {
  var st = stat()
  return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

import Foundation

/// Where the pipeline says what it is doing ("root: reading inputs"); the CLI draws it on a
/// terminal, a library caller may log it or drop it.
public protocol BuildProgress: AnyObject {
  func update(_ text: @autoclosure () -> String)
  /// The build is over (its last line may be cleared).
  func done()
}

/// Progress nobody sees.
public final class SilentProgress: BuildProgress {
  public init() {}
  public func update(_ text: @autoclosure () -> String) {}
  public func done() {}
}

public func isDirectory(_ path: String) -> Bool {
  var st = stat()
  return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

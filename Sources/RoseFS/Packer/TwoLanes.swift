import Foundation

/// Runs a pure, chunked computation of the metadata phase on both cores, with its results consumed
/// in order on the calling thread, so the bytes written are those of a single-threaded run.
///
/// Why (issue 10): the metadata phase (`finish`) ran on one thread while the archive reader's core
/// sat idle; encoding inode pages and building directory trees are independent per chunk, and only
/// writing them must keep its order. Each round computes two chunks at once (one here, one on a
/// second thread), then hands both to `consume` in order. Memory: two chunks of results at a time.
///
/// The second lane is one `Thread` with an `NSCondition`, as `StagingWriter` uses, not Dispatch:
/// `concurrentPerform` brought up Dispatch's worker pool (two threads, each with its own malloc
/// arena, and code not otherwise run), 1.8 MiB more peak RSS on 200,000 small files.
enum TwoLanes {
  /// `work(range)` for consecutive ranges of `chunk` indices of `0..<count`, two at a time; each
  /// result goes to `consume` in index order. The first error (in index order) is thrown, after which
  /// nothing more is computed. `work` must not touch state that `consume` or the other lane changes.
  static func run<T>(
    count: Int, chunk: Int, work: (Range<Int>) throws -> T, consume: (T) throws -> Void
  ) throws {
    let chunk = max(chunk, 1)
    guard count > chunk else {
      if count > 0 { try consume(try work(0..<count)) }
      return
    }
    try withoutActuallyEscaping(work) { work in
      // The lane lives until `finish()` below returns, so `work` outlives every use on it.
      let lane = SecondLane<T>(work: work)
      defer { lane.finish() }
      var start = 0
      while start < count {
        let first = start..<min(start + chunk, count)
        let second = first.upperBound..<min(first.upperBound + chunk, count)
        if !second.isEmpty { lane.begin(second) }
        let mine = Result { try work(first) }
        let theirs = second.isEmpty ? nil : lane.result()
        try consume(try mine.get())
        if let theirs { try consume(try theirs.get()) }
        start = second.upperBound
      }
    }
  }
}

/// The second thread of `TwoLanes.run`: computes one range at a time, handed over under `cond`.
private final class SecondLane<T>: @unchecked Sendable {
  private let cond = NSCondition()
  /// Dropped by `finish`: the thread may outlive `run` by a moment, and `work` must not (it is
  /// `run`'s non-escaping closure; Swift checks that nothing holds it when `run` returns).
  private var work: ((Range<Int>) throws -> T)?
  private var pending: Range<Int>?
  private var done: Result<T, any Error>?
  private var stopping = false
  private var stopped = false

  init(work: @escaping (Range<Int>) throws -> T) {
    self.work = work
    let thread = Thread { [self] in self.loop() }
    thread.stackSize = 256 << 10
    thread.start()
  }

  func begin(_ range: Range<Int>) {
    cond.lock()
    pending = range
    done = nil
    cond.broadcast()
    cond.unlock()
  }

  func result() -> Result<T, any Error> {
    cond.lock()
    defer { cond.unlock() }
    while true {
      if let r = done {
        done = nil
        return r
      }
      cond.wait()
    }
  }

  /// Stops the thread and waits for it, so nothing runs `work` after `run` returns.
  func finish() {
    cond.lock()
    stopping = true
    cond.broadcast()
    while !stopped { cond.wait() }
    work = nil
    cond.unlock()
  }

  private func compute(_ range: Range<Int>) -> Result<T, any Error> {
    guard let work else {
      return .failure(
        RoseFSError.internalInvariant("a lane of the metadata phase ran after its end"))
    }
    return Result { try work(range) }
  }

  private func loop() {
    cond.lock()
    while true {
      while pending == nil && !stopping { cond.wait() }
      guard let range = pending else { break }
      pending = nil
      cond.unlock()
      // Only `compute` holds `work`, so once `finish` has dropped it nothing does.
      let r = compute(range)
      cond.lock()
      done = r
      cond.broadcast()
    }
    stopped = true
    cond.broadcast()
    cond.unlock()
  }
}

// The heap in use, for tests that bound what a structure costs per entry (issue 10).
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

public enum HeapMeter {
  /// The C heap's bytes in use, from glibc's `malloc_info` report: for each arena (`<heap>`), the
  /// bytes it obtained from the system minus its free chunks; and the chunks too large for an
  /// arena, which are mmapped one by one and reported for the process only. nil where there is no
  /// glibc `malloc_info`.
  public struct Usage {
    /// In-use bytes of each arena, by its number.
    public var arenas: [Int: Int]
    /// Bytes of mmapped chunks, process-wide.
    public var mmapped: Int
    /// Everything in use.
    public var total: Int { arenas.values.reduce(0, +) + mmapped }

    /// What `self` grew by since `before`, counting only the arena that grew most: glibc gives each
    /// thread an arena of its own while there are fewer than 8 per core, so a test measuring work
    /// on its own thread is not charged for what tests on other threads allocate at the same time
    /// (the mmapped chunks are shared and still are).
    public func growth(since before: Usage) -> Int {
      let arena = arenas.map { $0.value - (before.arenas[$0.key] ?? 0) }.max() ?? 0
      return arena + mmapped - before.mmapped
    }
  }

  public static func usage() -> Usage? {
    #if canImport(Glibc)
      typealias MallocInfo = @convention(c) (Int32, UnsafeMutablePointer<FILE>?) -> Int32
      guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_info") else {
        return nil
      }
      let mallocInfo = unsafeBitCast(symbol, to: MallocInfo.self)
      var buffer: UnsafeMutablePointer<CChar>?
      var length = 0
      guard let stream = open_memstream(&buffer, &length) else { return nil }
      let status = mallocInfo(0, stream)
      fclose(stream)
      defer { free(buffer) }
      guard status == 0, let buffer else { return nil }
      let text = String(cString: buffer)
      func size(_ tag: String, _ type: String, in part: Substring) -> Int? {
        guard let r = part.range(of: "<\(tag) type=\"\(type)\"") else { return nil }
        let rest = part[r.upperBound...]
        guard let s = rest.range(of: "size=\"") else { return nil }
        return Int(rest[s.upperBound...].prefix { $0.isNumber })
      }
      // Each arena's report is a <heap nr="N">...</heap>; the process-wide totals follow the last.
      var arenas: [Int: Int] = [:]
      var rest = text[...]
      while let open = rest.range(of: "<heap nr=\""), let close = rest.range(of: "</heap>") {
        let part = rest[open.upperBound..<close.lowerBound]
        guard let number = Int(part.prefix { $0.isNumber }),
          let current = size("system", "current", in: part),
          let fast = size("total", "fast", in: part), let free = size("total", "rest", in: part)
        else { return nil }
        arenas[number] = current - fast - free
        rest = rest[close.upperBound...]
      }
      guard let mmapped = size("total", "mmap", in: rest) else { return nil }
      return Usage(arenas: arenas, mmapped: mmapped)
    #else
      return nil
    #endif
  }

  /// Bytes the C heap holds in use, all arenas and mmapped chunks. nil where there is no glibc
  /// `malloc_info`.
  public static func bytesInUse() -> Int? { usage()?.total }

  /// The smallest growth of the heap over up to twelve runs of `body`, per entry of `entries`;
  /// what `prepare` makes (outside the measurement) and what `body` returns are held while
  /// measuring. Growth is counted in the arena that grew most (`Usage.growth`), but tests running
  /// beside the caller can still share its arena or allocate large chunks, so one run can read
  /// high: it stops at the first run under `limit`, and a regression (which reads high every
  /// time) still fails. Between runs it waits a little for the neighbours' churn to pass. nil
  /// where the heap cannot be measured.
  public static func smallestGrowthPerEntry<S, T>(
    entries: Int, under limit: Double, prepare: () throws -> S, measure body: (S) throws -> T
  ) rethrows -> Double? {
    var best: Int?
    for attempt in 0..<12 {
      if attempt > 0 { usleep(250_000) }
      let prepared = try prepare()
      guard let before = usage() else { return nil }
      let kept = try body(prepared)
      guard let after = usage() else { return nil }
      withExtendedLifetime((prepared, kept)) {}
      best = min(best ?? Int.max, after.growth(since: before))
      if let best, Double(best) / Double(entries) < limit { break }
    }
    return best.map { Double($0) / Double(entries) }
  }

  /// `smallestGrowthPerEntry` with nothing to prepare.
  public static func smallestGrowthPerEntry<T>(
    entries: Int, under limit: Double, _ body: () throws -> T
  ) rethrows -> Double? {
    try smallestGrowthPerEntry(
      entries: entries, under: limit, prepare: {}, measure: { _ in try body() })
  }
}

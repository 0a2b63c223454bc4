// The heap in use, for tests that bound what a structure costs per entry (issue 10).
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

public enum HeapMeter {
  /// Bytes the C heap holds in use, from glibc's `malloc_info` report (the last, process-wide
  /// totals): arena bytes obtained from the system plus mmapped chunks, minus the free chunks. nil
  /// where there is no glibc `malloc_info`.
  public static func bytesInUse() -> Int? {
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
      // The process-wide totals follow the last </heap>.
      guard
        let totals = text.range(of: "</heap>", options: .backwards).map({ text[$0.upperBound...] })
      else { return nil }
      func size(_ tag: String, _ type: String) -> Int? {
        guard let r = totals.range(of: "<\(tag) type=\"\(type)\"") else { return nil }
        let rest = totals[r.upperBound...]
        guard let s = rest.range(of: "size=\"") else { return nil }
        return Int(rest[s.upperBound...].prefix { $0.isNumber })
      }
      guard let current = size("system", "current"), let fast = size("total", "fast"),
        let rest = size("total", "rest"), let mmapped = size("total", "mmap")
      else { return nil }
      return current + mmapped - fast - rest
    #else
      return nil
    #endif
  }

  /// The smallest growth of the heap over up to twelve runs of `body`, per entry of `entries`;
  /// what `prepare` makes (outside the measurement) and what `body` returns are held while
  /// measuring. Tests running beside the caller allocate into the same heap, so one run can read
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
      guard let before = bytesInUse() else { return nil }
      let kept = try body(prepared)
      guard let after = bytesInUse() else { return nil }
      withExtendedLifetime((prepared, kept)) {}
      best = min(best ?? Int.max, after - before)
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

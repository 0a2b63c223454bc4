import Foundation
import Testing

@testable import RoseFS

/// `TwoLanes.run` computes chunks on two threads; what it hands to `consume` must be what one
/// thread computing them in order would hand over, and errors must surface in index order.
struct TwoLanesTests {
  struct Boom: Error, Equatable { let at: Int }

  @Test func resultsArriveInIndexOrderOnTheCallingThread() throws {
    for (count, chunk) in [(0, 4), (3, 4), (4, 4), (5, 4), (1000, 7), (1000, 1), (64, 32)] {
      var seen: [Int] = []
      let caller = Thread.current
      try TwoLanes.run(
        count: count, chunk: chunk,
        work: { range -> [Int] in
          // Uneven work, so the two lanes finish in either order.
          if range.lowerBound % 3 == 0 { usleep(200) }
          return Array(range)
        },
        consume: { part in
          #expect(Thread.current == caller)
          seen += part
        })
      #expect(seen == Array(0..<count), "count \(count), chunk \(chunk)")
    }
  }

  @Test func bothLanesRun() throws {
    let lock = NSLock()
    var threads = Set<ObjectIdentifier>()
    try TwoLanes.run(
      count: 64, chunk: 1,
      work: { _ in
        usleep(500)
        lock.lock()
        threads.insert(ObjectIdentifier(Thread.current))
        lock.unlock()
      }, consume: { _ in })
    #expect(threads.count == 2)
  }

  @Test func theFirstErrorInIndexOrderStopsTheRun() {
    for failing in [0, 1, 6, 7, 20, 99] {
      var consumed: [Int] = []
      var computed = 0
      let lock = NSLock()
      #expect(throws: Boom(at: failing)) {
        try TwoLanes.run(
          count: 100, chunk: 1,
          work: { range -> Int in
            lock.lock()
            computed += 1
            lock.unlock()
            // The second lane fails later in time than an error after it in index order.
            if range.lowerBound == failing + 1 { throw Boom(at: failing + 1) }
            if range.lowerBound == failing {
              usleep(2000)
              throw Boom(at: failing)
            }
            return range.lowerBound
          },
          consume: { consumed.append($0) })
      }
      #expect(consumed == Array(0..<failing))
      // Nothing past the failing round was computed.
      #expect(computed <= failing + 2)
    }
  }
}

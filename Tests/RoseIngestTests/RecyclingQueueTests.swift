import Dispatch
import Foundation
import Testing

@testable import RoseIngest

/// The queue under the two reading threads (`PrefetchQueue`, `ArchivePipeline`): items arrive in
/// the order put, only the items given at the start are ever used, the producer's ending reaches a
/// consumer that is waiting for it, and a consumer that stops frees a producer blocked on a full
/// queue. Every case that could hang runs on a thread of its own and is waited for with a deadline,
/// so that a deadlock fails the test instead of stopping the suite.
@Suite struct RecyclingQueueTests {
  /// A reusable item: which of the initial items it is, and what the producer last wrote in it.
  final class Slot: @unchecked Sendable {
    let id: Int
    var value = -1
    init(id: Int) { self.id = id }
  }

  enum Ending: Equatable {
    case done(Int)
    case failed(String)
    case stopped
  }

  typealias Queue = RecyclingQueue<Slot, Ending>

  /// Runs `body` on a new thread; true if it returned within `seconds`.
  static func finishes(within seconds: Double, _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
      body()
      done.signal()
    }
    thread.stackSize = 1 << 20
    thread.start()
    return done.wait(timeout: .now() + seconds) == .success
  }

  /// 10,000 values through 3 slots: the consumer sees them in order, then the ending; no slot but
  /// the three is ever seen, and each of them is.
  @Test func itemsArriveInOrderThroughTheSameFewSlots() {
    let count = 10_000
    let slots = (0..<3).map { Slot(id: $0) }
    let queue = Queue(items: slots)
    queue.start(stackSize: 1 << 20) {
      for v in 0..<count {
        guard let slot = queue.take() else { return .stopped }
        slot.value = v
        queue.put(slot)
      }
      return .done(count)
    }
    nonisolated(unsafe) var values: [Int] = []
    nonisolated(unsafe) var seen = Set<ObjectIdentifier>()
    nonisolated(unsafe) var ending: Ending?
    let finished = Self.finishes(within: 20) {
      while true {
        switch queue.next() {
        case .item(let slot):
          values.append(slot.value)
          seen.insert(ObjectIdentifier(slot))
          queue.recycle(slot)
        case .end(let e):
          ending = e
          return
        }
      }
    }
    #expect(finished, "the consumer did not finish within 20 s (deadlock)")
    guard finished else { return }
    let firstWrong = values.indices.first { values[$0] != $0 }
    #expect(
      values.count == count && firstWrong == nil, "out of order from index \(firstWrong ?? -1)")
    #expect(seen == Set(slots.map { ObjectIdentifier($0) }))
    #expect(ending == .done(count))
    // Asked again after the end, the queue answers the end again rather than waiting.
    if case .end(let again) = queue.next() {
      #expect(again == .done(count))
    } else {
      Issue.record("an item after the end")
    }
  }

  /// The consumer holds every slot: the producer's next `take` waits until one is recycled, so no
  /// more than the slots given are ever filled at once.
  @Test func theProducerWaitsWhileTheConsumerHoldsEverySlot() {
    let queue = Queue(items: [Slot(id: 0), Slot(id: 1)])
    let taken = DispatchSemaphore(value: 0)
    queue.start(stackSize: 1 << 20) {
      var v = 0
      while let slot = queue.take() {
        slot.value = v
        v += 1
        queue.put(slot)
        taken.signal()
      }
      return .stopped
    }
    #expect(taken.wait(timeout: .now() + 10) == .success)
    #expect(taken.wait(timeout: .now() + 10) == .success)
    guard case .item(let first) = queue.next(), case .item(let second) = queue.next() else {
      Issue.record("two items expected")
      return
    }
    // Both slots are with the consumer: a third value cannot be produced.
    #expect(taken.wait(timeout: .now() + 0.3) == .timedOut, "a third slot was filled")
    queue.recycle(first)
    #expect(taken.wait(timeout: .now() + 10) == .success)
    // One slot came back: one value more, not two.
    #expect(taken.wait(timeout: .now() + 0.3) == .timedOut, "a recycled slot was filled twice")
    guard case .item(let third) = queue.next() else {
      Issue.record("a third item expected")
      return
    }
    #expect(third === first && third.value == 2)
    queue.recycle(second)
    queue.recycle(third)
    #expect(Self.finishes(within: 10) { queue.stop() }, "stop did not return (deadlock)")
  }

  /// The producer fails while the consumer is waiting for an item: the consumer gets the items put
  /// before the failure, then the failure.
  @Test func aFailureReachesAWaitingConsumer() {
    let queue = Queue(items: [Slot(id: 0), Slot(id: 1)])
    let consumerWaits = DispatchSemaphore(value: 0)
    queue.start(stackSize: 1 << 20) {
      guard let slot = queue.take() else { return .stopped }
      slot.value = 7
      queue.put(slot)
      // Fail only once the consumer has taken the item and gone back to wait.
      consumerWaits.wait()
      Thread.sleep(forTimeInterval: 0.1)
      return .failed("read failed")
    }
    nonisolated(unsafe) var got: [Int] = []
    nonisolated(unsafe) var ending: Ending?
    let finished = Self.finishes(within: 10) {
      guard case .item(let slot) = queue.next() else { return }
      got.append(slot.value)
      queue.recycle(slot)
      consumerWaits.signal()
      if case .end(let e) = queue.next() { ending = e }
    }
    #expect(finished, "the consumer did not receive the failure within 10 s (deadlock)")
    guard finished else { return }
    #expect(got == [7])
    #expect(ending == .failed("read failed"))
  }

  /// The consumer stops while the producer is blocked on a full queue (every slot put, none
  /// recycled): `stop` wakes it, `take` answers nil, and `stop` returns once it has ended.
  @Test func stopFreesAProducerBlockedOnAFullQueue() {
    let queue = Queue(items: [Slot(id: 0), Slot(id: 1), Slot(id: 2)])
    let full = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var puts = 0
    queue.start(stackSize: 1 << 20) {
      while let slot = queue.take() {
        queue.put(slot)
        puts += 1
        if puts == 3 { full.signal() }
      }
      return .stopped
    }
    #expect(full.wait(timeout: .now() + 10) == .success)
    Thread.sleep(forTimeInterval: 0.1)  // the producer is now waiting in `take`
    let stopped = Self.finishes(within: 10) { queue.stop() }
    #expect(stopped, "stop did not return within 10 s: the blocked producer was not woken")
    guard stopped else { return }
    #expect(puts == 3)
    // The items put before the stop are still delivered, then the producer's ending.
    var delivered = 0
    while case .item = queue.next() { delivered += 1 }
    #expect(delivered == 3)
    if case .end(let e) = queue.next() { #expect(e == .stopped) }
  }

  /// The consumer stops while the producer waits for it to recycle everything (`ArchivePipeline`'s
  /// in-place hand-over): the wait ends, reporting the stop.
  @Test func stopFreesAProducerWaitingForTheQueueToDrain() {
    let queue = Queue(items: [Slot(id: 0)])
    let waiting = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var drained: Bool?
    queue.start(stackSize: 1 << 20) {
      guard let slot = queue.take() else { return .stopped }
      queue.put(slot)
      waiting.signal()
      drained = queue.waitUntilDrained()
      return .stopped
    }
    #expect(waiting.wait(timeout: .now() + 10) == .success)
    guard case .item(let slot) = queue.next() else {
      Issue.record("an item expected")
      return
    }
    Thread.sleep(forTimeInterval: 0.1)
    #expect(drained == nil, "the drain wait ended while the consumer held the item")
    let stopped = Self.finishes(within: 10) { queue.stop() }
    #expect(stopped, "stop did not return within 10 s: the draining producer was not woken")
    #expect(drained == false)
    queue.recycle(slot)
  }

  /// Recycling the last item put ends the producer's drain wait (reporting no stop).
  @Test func recyclingEverythingEndsTheDrainWait() {
    let queue = Queue(items: [Slot(id: 0), Slot(id: 1)])
    let drainedSignal = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var drained: Bool?
    queue.start(stackSize: 1 << 20) {
      for _ in 0..<2 {
        guard let slot = queue.take() else { return .stopped }
        queue.put(slot)
      }
      drained = queue.waitUntilDrained()
      drainedSignal.signal()
      return .done(2)
    }
    var held: [Slot] = []
    for _ in 0..<2 {
      if case .item(let s) = queue.next() { held.append(s) }
    }
    guard held.count == 2 else {
      Issue.record("two items expected")
      queue.cancel()
      return
    }
    queue.recycle(held[0])
    #expect(drainedSignal.wait(timeout: .now() + 0.2) == .timedOut, "drained with an item held")
    queue.recycle(held[1])
    #expect(drainedSignal.wait(timeout: .now() + 10) == .success)
    #expect(drained == true)
  }
}

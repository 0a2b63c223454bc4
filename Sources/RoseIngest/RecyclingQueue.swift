import Foundation

/// A fixed set of reusable items (buffers, batches) passed in order from a producer running on a
/// Foundation `Thread` of its own to one consumer, and handed back for reuse: memory is bounded by
/// the items given at the start, whatever the input's size. The producer takes a free item, fills
/// it and puts it; the consumer takes the next ready item and recycles it when done with it. The
/// producer ends by returning an `Ending` (the end, or an error), which the consumer receives after
/// every item put before it. The consumer may stop at any time: a producer waiting for a free item
/// (or for the queue to drain) is woken and told so, and `stop` waits until it has returned.
///
/// `PrefetchQueue` (file bytes ahead of libarchive) and `ArchivePipeline` (libarchive's entries
/// ahead of the packing thread) are built on it; each keeps only what its items hold.
final class RecyclingQueue<Item, Ending>: @unchecked Sendable {
  /// What the consumer gets from `next`.
  enum Next {
    case item(Item)
    /// The producer returned this; nothing follows (every later `next` returns it again).
    case end(Ending)
  }

  private let cond = NSCondition()
  private var free: [Item]
  /// Items put and not yet taken, oldest first from `readyStart` (removing from the front of an
  /// array would move the rest; the array is emptied whenever it drains).
  private var ready: [Item] = []
  private var readyStart = 0
  /// Items put and not yet recycled (ready or held by the consumer).
  private var outstanding = 0
  private var ending: Ending?
  private var stopped = false
  private var producerWaiting = false
  private var consumerWaiting = false

  /// The queue with `items` free; no other item is ever made.
  init(items: [Item]) {
    free = items
    free.reserveCapacity(items.count)
  }

  /// Runs `produce` on a new thread (with a stack of `stackSize` bytes) and delivers what it
  /// returns as the end, after every item it put.
  func start(stackSize: Int, _ produce: @escaping @Sendable () -> Ending) {
    let thread = Thread { [self] in
      let ending = produce()
      cond.lock()
      self.ending = ending
      cond.broadcast()
      cond.unlock()
    }
    thread.stackSize = stackSize
    thread.start()
  }

  // MARK: producer

  /// A free item, waiting while the consumer holds them all; nil once the consumer has stopped
  /// (the producer should then return at once).
  func take() -> Item? {
    cond.lock()
    defer { cond.unlock() }
    while free.isEmpty && !stopped {
      producerWaiting = true
      cond.wait()
      producerWaiting = false
    }
    return stopped ? nil : free.removeLast()
  }

  /// Hands `item` to the consumer, after every item put before it.
  func put(_ item: Item) {
    cond.lock()
    defer { cond.unlock() }
    ready.append(item)
    outstanding += 1
    if consumerWaiting { cond.broadcast() }
  }

  /// Waits until the consumer has recycled every item put; false when it stopped instead.
  func waitUntilDrained() -> Bool {
    cond.lock()
    defer { cond.unlock() }
    while outstanding > 0 && !stopped {
      producerWaiting = true
      cond.wait()
      producerWaiting = false
    }
    return !stopped
  }

  /// Whether the consumer has stopped.
  var isStopped: Bool {
    cond.lock()
    defer { cond.unlock() }
    return stopped
  }

  // MARK: consumer

  /// The next item put, or the producer's ending once every item has been taken; waits for the
  /// producer when neither is there.
  func next() -> Next {
    cond.lock()
    defer { cond.unlock() }
    while readyStart == ready.count {
      if let ending { return .end(ending) }
      consumerWaiting = true
      cond.wait()
      consumerWaiting = false
    }
    let item = ready[readyStart]
    readyStart += 1
    if readyStart == ready.count {
      ready.removeAll(keepingCapacity: true)
      readyStart = 0
    }
    return .item(item)
  }

  /// Gives a taken item back for the producer to fill again.
  func recycle(_ item: Item) {
    cond.lock()
    defer { cond.unlock() }
    free.append(item)
    outstanding -= 1
    if producerWaiting { cond.broadcast() }
  }

  /// Tells the producer to stop at its next `take` or `waitUntilDrained` (whatever it is waiting
  /// for) without waiting for it; safe to call more than once.
  func cancel() {
    cond.lock()
    stopped = true
    cond.broadcast()
    cond.unlock()
  }

  /// `cancel`, then waits until the producer has returned (so that whatever it uses can be freed).
  /// Call only after `start`.
  func stop() {
    cancel()
    waitUntilEnded()
  }

  /// Waits until the producer has returned. Call only after `start`.
  func waitUntilEnded() {
    cond.lock()
    while ending == nil { cond.wait() }
    cond.unlock()
  }
}

import Foundation
import RoseFS

/// One entry's header as the reading thread took it from libarchive: everything the packing
/// thread needs, copied out of libarchive's memory (which the next header reuses).
struct ArchiveEntryHeader {
  enum Kind {
    /// Another name of the inode at this path (as the archive stores it, before the prefix).
    case hardLink([UInt8])
    case directory
    case regular
    case symlink(target: [UInt8])
    case device(FileKind, major: UInt32, minor: UInt32)
    case fifo
    case socket
  }
  /// The entry's path as the archive stores it (errors name it so).
  var name: [UInt8]
  var kind: Kind
  var meta: EntryMetadata
  /// The data size libarchive reports (0 when unset).
  var size: Int64
}

/// What the reading thread hands the packing thread, in archive order. An entry's data items
/// follow its `.entry` item; anything else ends them.
enum ArchiveItem {
  case entry(ArchiveEntryHeader)
  /// `count` bytes of the current entry's data for file offset `offset`, at `start` in the batch's
  /// bytes. `streamOffset`: where libarchive was in its input (for errors that name a position).
  case data(offset: UInt64, start: Int, count: Int, streamOffset: Int64)
  /// A large block of the current entry's data, left in libarchive's memory, valid until the next
  /// call of `next`/`nextIsData`: the reading thread waits until the packing thread has moved past
  /// it (copying it would cost more than the wait, and for large files the reading thread has
  /// little else to do).
  case dataInPlace(offset: UInt64, bytes: UnsafeRawBufferPointer, streamOffset: Int64)
  /// A progress report inside a large file's data.
  case dataProgress(bytesRead: Int64, entries: Int)
  /// Reading failed inside the current entry's data; nothing follows.
  case dataFailure(any Error)
  /// A progress report after an entry.
  case progress(bytesRead: Int64, entries: Int)
  case warning(ArchiveWarning)
  /// Reading stopped with this error; nothing follows.
  case failure(any Error)
  /// The archive ended after `entries` entries; nothing follows.
  case end(bytesRead: Int64, entries: Int)
}

/// A batch of items and the data bytes they refer to, filled by the reading thread and read by the
/// packing thread, then reused.
final class ArchiveBatch {
  var items: [ArchiveItem] = []
  let bytes: UnsafeMutableRawBufferPointer
  var used = 0

  init(byteCount: Int) {
    bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
    items.reserveCapacity(ArchivePipeline.maxItems)
  }

  deinit { bytes.deallocate() }

  func reset() {
    items.removeAll(keepingCapacity: true)
    used = 0
  }
}

/// Runs libarchive on a thread of its own, a few batches ahead of the packing thread: on two cores,
/// parsing the archive (headers, names, libarchive's own per-entry work) overlaps with building
/// the tree and placing the data, instead of adding to it (issue 10: on a tarball of 200,000 small
/// files they cost about the same). The packing thread sees exactly the sequence of entries,
/// warnings, progress reports and errors it would see reading the archive itself, so the image and
/// every message are the same. Memory is bounded: `depth` batches of `batchBytes` data bytes and
/// at most `maxItems` items each (a `RecyclingQueue` of them); a file larger than a batch arrives
/// in pieces. Batches of 64 KiB (about 120 small files) cost the same time as 256 KiB ones and
/// about 0.5 MiB less peak RSS.
final class ArchivePipeline: @unchecked Sendable {
  static let batchBytes = 64 << 10
  static let maxItems = 256
  static let depth = 3
  /// Data blocks at least this large are handed over in place (`ArchiveItem.dataInPlace`).
  static let inPlaceMinimum = 64 << 10

  /// The reading thread always ends its items with `.failure` or `.end`, so the queue's own end
  /// carries nothing.
  private let queue = RecyclingQueue<ArchiveBatch, Void>(
    items: (1..<ArchivePipeline.depth).map { _ in
      ArchiveBatch(byteCount: ArchivePipeline.batchBytes)
    })

  // Reading thread only.
  private var filling = ArchiveBatch(byteCount: ArchivePipeline.batchBytes)

  // Packing thread only.
  private var reading: ArchiveBatch?
  private var index = 0

  private let produce: (ArchivePipeline) -> Void

  /// Starts `produce` on a new thread; it emits items through `emit`/`emitData`, which return false
  /// once the packing side has stopped (then `produce` should return at once).
  init(produce: @escaping (ArchivePipeline) -> Void) {
    self.produce = produce
    // libarchive's readers and filters keep their state on the heap; 1 MiB is ample.
    queue.start(stackSize: 1 << 20) { [self] in
      self.produce(self)
      if !self.filling.items.isEmpty { self.queue.put(self.filling) }
    }
  }

  // MARK: reading thread

  /// Appends `item`; false when the packing side has stopped.
  @discardableResult
  func emit(_ item: ArchiveItem) -> Bool {
    if filling.items.count >= Self.maxItems && !handOver() { return false }
    filling.items.append(item)
    return true
  }

  /// Copies `bytes`, the current entry's data for file offset `offset`, into batches (splitting it
  /// where a batch fills); false when the packing side has stopped.
  func emitData(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, streamOffset: Int64) -> Bool {
    if bytes.count >= Self.inPlaceMinimum {
      return emitInPlace(bytes, at: offset, streamOffset: streamOffset)
    }
    var done = 0
    while done < bytes.count {
      var room = filling.bytes.count - filling.used
      if room == 0 || filling.items.count >= Self.maxItems {
        guard handOver() else { return false }
        room = filling.bytes.count
      }
      let n = min(room, bytes.count - done)
      guard let src = bytes.baseAddress, let dst = filling.bytes.baseAddress else { return false }
      (dst + filling.used).copyMemory(from: src + done, byteCount: n)
      filling.items.append(
        .data(
          offset: offset + UInt64(done), start: filling.used, count: n, streamOffset: streamOffset))
      filling.used += n
      done += n
    }
    return true
  }

  /// Hands `bytes` over where they are, as the last item of a batch, and waits until the packing
  /// thread has moved past that batch (it has then written them).
  private func emitInPlace(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, streamOffset: Int64)
    -> Bool
  {
    if filling.items.count >= Self.maxItems && !handOver() { return false }
    filling.items.append(.dataInPlace(offset: offset, bytes: bytes, streamOffset: streamOffset))
    return handOver() && queue.waitUntilDrained()
  }

  /// Queues the batch being filled and takes a free one (waiting while all are queued). False
  /// when the packing side has stopped.
  private func handOver() -> Bool {
    if queue.isStopped { return false }
    queue.put(filling)
    guard let batch = queue.take() else { return false }
    filling = batch
    filling.reset()
    return true
  }

  // MARK: packing thread

  /// The next item, waiting for the reading thread when needed. After `.failure` or `.end` there
  /// is none: do not call again.
  func next() -> ArchiveItem {
    while true {
      if let batch = reading, index < batch.items.count {
        // Moved out, not copied: the names and metadata change owner without reference counting.
        var item = ArchiveItem.end(bytesRead: 0, entries: 0)
        swap(&item, &batch.items[index])
        index += 1
        return item
      }
      nextBatch()
    }
  }

  /// Whether the next item is one of the current entry's data items (without taking it).
  func nextIsData() -> Bool {
    while true {
      if let batch = reading, index < batch.items.count {
        switch batch.items[index] {
        case .data, .dataInPlace, .dataProgress, .dataFailure: return true
        default: return false
        }
      }
      nextBatch()
    }
  }

  /// The bytes of a `.data` item just taken: valid until the next call of `next`/`nextIsData`.
  func bytes(start: Int, count: Int) -> UnsafeRawBufferPointer {
    guard let batch = reading else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(rebasing: batch.bytes[start..<start + count])
  }

  private func nextBatch() {
    if let old = reading {
      // The items (names, metadata) are freed here rather than on the reading thread, which
      // has libarchive's share of the work.
      old.reset()
      reading = nil
      queue.recycle(old)
    }
    switch queue.next() {
    case .item(let batch):
      reading = batch
    case .end:
      // The reading thread always ends with `.failure` or `.end`, which the caller stops at; an
      // empty queue after its end would be a bug: report it rather than hang.
      let b = ArchiveBatch(byteCount: 0)
      b.items = [
        .failure(
          IngestError.invalid(input: "archive", detail: "the reading thread stopped unexpectedly"))
      ]
      reading = b
    }
    index = 0
  }

  /// Stops the reading thread (at its next hand-over) and waits until it has returned, so that
  /// the libarchive handle it used can be freed. Whatever is on its way to libarchive's read
  /// callback must be cancelled too, or the thread may wait for input forever.
  func stop(cancelling cancel: () -> Void) {
    queue.cancel()
    cancel()
    queue.waitUntilEnded()
  }
}

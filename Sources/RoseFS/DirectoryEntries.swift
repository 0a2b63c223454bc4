/// A directory's children: (name, inode) pairs in one array, 24 bytes an entry.
///
/// Memory (issue 10): a `[Name: Inode]` took about 50 bytes an entry (a 16-byte key and an 8-byte
/// value per bucket at a load factor of 0.375-0.75). Ingest fills directories in archive order and
/// looks names up as it goes; the packer reads them in name order, several times. So the array is
/// appended to while ingesting and kept sorted for free when names arrive in order (`isSorted`);
/// a directory that received names out of order is sorted once by `sort()` (the packer's first pass),
/// and until then looks names up through `index`, a small hash table of positions built only for a
/// large unsorted directory (dropped when sorting). Order is `Name.<`: by bytes.
///
/// Iteration (`for (name, inode) in children`, `keys`, `values`) is in name order: a sorted directory
/// is iterated in place, an unsorted one through a sorted copy.
public struct DirectoryEntries: Sequence, ExpressibleByDictionaryLiteral {
  public typealias Element = (key: Name, value: Inode)

  struct Entry {
    var name: Name
    var inode: Inode
  }
  private(set) var entries: [Entry] = []
  /// Whether `entries` is in name order (true for an empty or in-order-filled directory).
  public private(set) var isSorted = true
  /// Open addressing, positions + 1 (0: empty), a power of two at least twice `entries.count`.
  /// Empty when sorted or small.
  private var index: [Int32] = []
  /// Up to this many entries an unsorted directory is searched linearly.
  static let linearLimit = 16

  public init() {}
  public init(dictionaryLiteral elements: (Name, Inode)...) {
    for (name, inode) in elements { self[name] = inode }
  }

  public var count: Int { entries.count }
  public var isEmpty: Bool { entries.isEmpty }

  /// The inode named `name`, or nil. Setting nil removes the entry; setting an existing name replaces
  /// its inode in place.
  public subscript(name: Name) -> Inode? {
    get {
      guard let i = position(of: name) else { return nil }
      return entries[i].inode
    }
    set {
      if let inode = newValue {
        // In-order appends (sorted archives, loading an image) skip the search.
        if isSorted, let last = entries.last, last.name < name {
          entries.append(Entry(name: name, inode: inode))
          return
        }
        if let i = position(of: name) {
          entries[i].inode = inode
          return
        }
        if isSorted, let last = entries.last, name < last.name { isSorted = false }
        entries.append(Entry(name: name, inode: inode))
        if !isSorted { addToIndex(entries.count - 1) }
      } else if let i = position(of: name) {
        entries.remove(at: i)
        index = []  // positions moved; rebuilt on the next lookup that needs it
      }
    }
  }

  /// Sorts by name (once; a no-op when already sorted) and drops the lookup index.
  public mutating func sort() {
    guard !isSorted else { return }
    entries.sort { $0.name < $1.name }
    isSorted = true
    index = []
  }

  /// Names in name order.
  public var keys: [Name] { map(\.key) }
  /// Inodes in name order of their names.
  public var values: [Inode] { map(\.value) }

  public struct Iterator: IteratorProtocol {
    var base: IndexingIterator<[Entry]>
    public mutating func next() -> Element? {
      guard let e = base.next() else { return nil }
      return (e.name, e.inode)
    }
  }
  public func makeIterator() -> Iterator {
    if isSorted { return Iterator(base: entries.makeIterator()) }
    return Iterator(base: entries.sorted { $0.name < $1.name }.makeIterator())
  }
  public var underestimatedCount: Int { entries.count }

  // MARK: lookup

  private func position(of name: Name) -> Int? {
    if isSorted {
      // Archive order: a new name sorts after the last one, a parent looked up again is the last.
      guard let last = entries.last, !(last.name < name) else { return nil }
      if last.name == name { return entries.count - 1 }
      var lo = 0
      var hi = entries.count
      while lo < hi {
        let mid = (lo + hi) / 2
        if entries[mid].name < name { lo = mid + 1 } else { hi = mid }
      }
      return lo < entries.count && entries[lo].name == name ? lo : nil
    }
    // Small, or the index was dropped by a removal (the next insertion rebuilds it): linear.
    if entries.count <= Self.linearLimit || index.isEmpty {
      return entries.firstIndex { $0.name == name }
    }
    let mask = index.count - 1
    var slot = name.hashValue & mask
    while true {
      let p = Int(index[slot])
      if p == 0 { return nil }
      if entries[p - 1].name == name { return p - 1 }
      slot = (slot + 1) & mask
    }
  }

  /// Records `entries[i]` in the index, building or growing the index when needed.
  private mutating func addToIndex(_ i: Int) {
    guard entries.count > Self.linearLimit else { return }
    if index.isEmpty || entries.count * 2 > index.count {
      var capacity = 64
      while capacity < entries.count * 4 { capacity *= 2 }
      index = [Int32](repeating: 0, count: capacity)
      for p in entries.indices { insertPosition(p) }
      return
    }
    insertPosition(i)
  }

  private mutating func insertPosition(_ p: Int) {
    let mask = index.count - 1
    var slot = entries[p].name.hashValue & mask
    while index[slot] != 0 { slot = (slot + 1) & mask }
    index[slot] = Int32(p + 1)
  }
}

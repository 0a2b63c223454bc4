/// Sorted block ranges `(start, count)`: the live sets of the packer.

func mergeRanges(_ r: [(UInt32, UInt32)]) -> [(UInt32, UInt32)] {
  let sorted = r.filter { $0.1 > 0 }.sorted { $0.0 < $1.0 }
  var out: [(UInt32, UInt32)] = []
  for (s, c) in sorted {
    if let last = out.last, last.0 + last.1 >= s {
      let end = max(last.0 + last.1, s + c)
      out[out.count - 1] = (last.0, end - last.0)
    } else {
      out.append((s, c))
    }
  }
  return out
}

func rangeIntersects(_ ranges: [(UInt32, UInt32)], _ start: UInt32, _ count: UInt32) -> Bool {
  var lo = 0
  var hi = ranges.count
  while lo < hi {
    let mid = (lo + hi) / 2
    if ranges[mid].0 + ranges[mid].1 <= start { lo = mid + 1 } else { hi = mid }
  }
  return lo < ranges.count && ranges[lo].0 < start + count
}

/// Blocks that two sorted, merged range lists have in common (one linear pass over both).
func rangeOverlapCount(_ a: [(UInt32, UInt32)], _ b: [(UInt32, UInt32)]) -> Int {
  var n = 0
  var i = 0
  var j = 0
  while i < a.count && j < b.count {
    let lo = max(a[i].0, b[j].0)
    let aEnd = a[i].0 + a[i].1
    let bEnd = b[j].0 + b[j].1
    if lo < min(aEnd, bEnd) { n += Int(min(aEnd, bEnd) - lo) }
    if aEnd < bEnd { i += 1 } else { j += 1 }
  }
  return n
}

extension Array where Element == (UInt32, UInt32) {
  static func == (a: [(UInt32, UInt32)], b: [(UInt32, UInt32)]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
  }
}

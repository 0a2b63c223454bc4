// One renderer for every block picture of the project: `rosepack map` (a block map of one image,
// coloured by owner) and the heat benchmark (writes per block against time, per filesystem). Both
// describe a figure as panels of cells on a grid; this file draws them as SVG or as HTML (the same SVG
// plus a hover read-out). Knows nothing of RoseFS: callers pass colours, labels and per-cell text.

/// An sRGB colour.
public struct RGB: Equatable, Hashable, Sendable {
  public var r: UInt8
  public var g: UInt8
  public var b: UInt8
  public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
    self.r = r
    self.g = g
    self.b = b
  }
  public var hex: String {
    let digits = Array("0123456789abcdef")
    var s = "#"
    for v in [r, g, b] {
      s.append(digits[Int(v >> 4)])
      s.append(digits[Int(v & 15)])
    }
    return s
  }
  /// Linear interpolation from `self` to `other` at `t` in 0...1.
  public func mixed(with other: RGB, _ t: Double) -> RGB {
    let u = min(1, max(0, t))
    func m(_ a: UInt8, _ b: UInt8) -> UInt8 {
      UInt8((Double(a) + (Double(b) - Double(a)) * u).rounded())
    }
    return RGB(m(r, other.r), m(g, other.g), m(b, other.b))
  }
}

/// A sequential colour scale for counts (writes per cell): 0 is the background, 1 the first stop,
/// `maximum` the last; logarithmic because write counts span four orders of magnitude.
public struct HeatScale: Equatable, Sendable {
  public var maximum: UInt64
  /// Inferno-like stops, dark to bright; readable on white and in greyscale.
  public static let stops: [RGB] = [
    RGB(0x1b, 0x0c, 0x41), RGB(0x4a, 0x0c, 0x6b), RGB(0x78, 0x1c, 0x6d), RGB(0xa5, 0x2c, 0x60),
    RGB(0xcf, 0x44, 0x46), RGB(0xed, 0x69, 0x25), RGB(0xfb, 0x9b, 0x06), RGB(0xf7, 0xd1, 0x3d),
    RGB(0xfc, 0xff, 0xa4),
  ]
  public init(maximum: UInt64) { self.maximum = max(1, maximum) }

  /// Position of `count` on the scale, 0...1 (log(count) / log(maximum)).
  public func fraction(_ count: UInt64) -> Double {
    guard count > 0 else { return 0 }
    guard maximum > 1 else { return 1 }
    return min(1, log(Double(count)) / log(Double(maximum)))
  }

  public func color(_ count: UInt64) -> RGB {
    let f = fraction(count) * Double(Self.stops.count - 1)
    let i = min(Self.stops.count - 2, Int(f))
    return Self.stops[i].mixed(with: Self.stops[i + 1], f - Double(i))
  }
}

/// A labelled range of columns (a structure: "journal", "inode table", "NAT"), drawn as a coloured bar
/// under the grid with its label.
public struct Band: Equatable, Sendable {
  public var first: Int
  public var count: Int
  public var label: String
  public var color: RGB
  public init(first: Int, count: Int, label: String, color: RGB) {
    self.first = first
    self.count = count
    self.label = label
    self.color = color
  }
}

/// One grid of cells. `colors[row * columns + column]` is nil for the background. `marked` cells get a
/// diagonal stroke (blocks shared by several subvolumes). `info` (dictionary-coded: `infoIndex` per cell
/// into `infoTexts`, -1 for none) is what the HTML shows when the pointer is over a cell.
public struct Panel: Equatable, Sendable {
  public var title: String
  public var columns: Int
  public var rows: Int
  public var colors: [RGB?]
  public var marked: [Bool]
  public var infoIndex: [Int32]
  public var infoTexts: [String]
  public var bands: [Band]
  public var xLabel: String
  public var yLabel: String
  /// Axis annotations: the value at the first and last column/row (e.g. "block 0", "block 16383").
  public var xRange: (String, String)
  public var yRange: (String, String)

  public init(
    title: String, columns: Int, rows: Int, xLabel: String = "", yLabel: String = "",
    xRange: (String, String) = ("", ""), yRange: (String, String) = ("", "")
  ) {
    self.title = title
    self.columns = max(1, columns)
    self.rows = max(1, rows)
    let n = self.columns * self.rows
    colors = Array(repeating: nil, count: n)
    marked = Array(repeating: false, count: n)
    infoIndex = Array(repeating: -1, count: n)
    infoTexts = []
    bands = []
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.xRange = xRange
    self.yRange = yRange
  }

  public static func == (a: Panel, b: Panel) -> Bool {
    a.title == b.title && a.columns == b.columns && a.rows == b.rows && a.colors == b.colors
      && a.marked == b.marked && a.infoIndex == b.infoIndex && a.infoTexts == b.infoTexts
      && a.bands == b.bands && a.xLabel == b.xLabel && a.yLabel == b.yLabel
      && a.xRange == b.xRange && a.yRange == b.yRange
  }
}

/// What the colours mean: named swatches (owners) and/or a heat scale with its unit.
public struct Legend: Equatable, Sendable {
  public var swatches: [(label: String, color: RGB)]
  public var scale: HeatScale?
  public var scaleLabel: String
  public init(
    swatches: [(label: String, color: RGB)] = [], scale: HeatScale? = nil, scaleLabel: String = ""
  ) {
    self.swatches = swatches
    self.scale = scale
    self.scaleLabel = scaleLabel
  }
  public static func == (a: Legend, b: Legend) -> Bool {
    a.swatches.map(\.label) == b.swatches.map(\.label)
      && a.swatches.map(\.color) == b.swatches.map(\.color) && a.scale == b.scale
      && a.scaleLabel == b.scaleLabel
  }
}

/// Panels side by side, one legend, notes under them.
public struct Figure: Equatable, Sendable {
  public var title: String
  public var panels: [Panel]
  public var legend: Legend
  public var notes: [String]
  /// Size of one cell in pixels.
  public var cellWidth: Double
  public var cellHeight: Double
  public init(
    title: String, panels: [Panel], legend: Legend, notes: [String] = [], cellWidth: Double = 4,
    cellHeight: Double = 4
  ) {
    self.title = title
    self.panels = panels
    self.legend = legend
    self.notes = notes
    self.cellWidth = cellWidth
    self.cellHeight = cellHeight
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Draws a `Figure` as SVG (a file a person opens, or a README shows) or HTML (the SVG plus a read-out
// of the cell under the pointer). Output is deterministic: the same figure gives the same bytes.

public enum FigureRenderer {
  static let margin = 16.0
  static let titleHeight = 28.0
  static let panelTitleHeight = 18.0
  static let axisLabelWidth = 18.0
  static let bandHeight = 10.0
  static let panelGap = 28.0
  static let fontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"

  struct PanelBox {
    var x: Double
    var y: Double
    var width: Double
    var height: Double
  }

  /// Where each panel's grid sits, and the size of the whole picture.
  static func layout(_ f: Figure) -> (
    boxes: [PanelBox], width: Double, height: Double, legendY: Double
  ) {
    var x = margin + axisLabelWidth
    let y = margin + titleHeight + panelTitleHeight
    var boxes: [PanelBox] = []
    var maxHeight = 0.0
    for p in f.panels {
      let w = Double(p.columns) * f.cellWidth
      let h = Double(p.rows) * f.cellHeight
      boxes.append(PanelBox(x: x, y: y, width: w, height: h))
      x += w + panelGap + axisLabelWidth
      maxHeight = max(maxHeight, h)
    }
    let width = max(x - panelGap - axisLabelWidth + margin, 420)
    // Below the grids: the x range line, the band bar, then the legend.
    let legendY = y + maxHeight + 16 + bandHeight + 14
    let perRow = legendColumns(width)
    let swatchRows = Double((f.legend.swatches.count + bandSwatchCount(f) + perRow - 1) / perRow)
    var height = legendY + swatchRows * 16 + (f.legend.scale == nil ? 0 : 34)
    height += Double(f.notes.count) * 15 + margin
    return (boxes, width, height, legendY)
  }

  static let legendColumnWidth = 215.0

  /// Legend swatches per row: as many as fit the picture's width, at most four.
  static func legendColumns(_ width: Double) -> Int {
    max(1, min(4, Int((width - 2 * margin) / legendColumnWidth)))
  }

  static func bandSwatches(_ f: Figure) -> [(label: String, color: RGB)] {
    var seen = Set<String>()
    var out: [(label: String, color: RGB)] = []
    let legendLabels = Set(f.legend.swatches.map(\.label))
    for p in f.panels {
      for b in p.bands where !legendLabels.contains(b.label) && seen.insert(b.label).inserted {
        out.append((b.label, b.color))
      }
    }
    return out
  }

  static func bandSwatchCount(_ f: Figure) -> Int { bandSwatches(f).count }

  public static func svg(_ f: Figure) -> String {
    svgBody(f, interactive: false)
  }

  static func svgBody(_ f: Figure, interactive: Bool) -> String {
    let (boxes, width, height, legendY) = layout(f)
    var s = ""
    s.reserveCapacity(1 << 16)
    s +=
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(num(width))\" height=\"\(num(height))\" viewBox=\"0 0 \(num(width)) \(num(height))\" font-family=\"\(fontFamily)\" font-size=\"11\"\(interactive ? " id=\"figure\"" : "")>\n"
    s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
    s += text(margin, margin + 14, f.title, size: 15, weight: "bold")
    for (i, p) in f.panels.enumerated() {
      let b = boxes[i]
      s += text(b.x, b.y - 5, p.title, size: 12, weight: "bold")
      s +=
        "<rect x=\"\(num(b.x))\" y=\"\(num(b.y))\" width=\"\(num(b.width))\" height=\"\(num(b.height))\" fill=\"#f2f2f2\" stroke=\"#999999\" stroke-width=\"0.5\"/>\n"
      s += cells(p, b, f)
      // Axes: ranges at the corners, labels along the sides.
      s += text(b.x, b.y + b.height + 11, p.xRange.0, size: 9)
      s += text(b.x + b.width, b.y + b.height + 11, p.xRange.1, size: 9, anchor: "end")
      if !p.xLabel.isEmpty {
        s += text(b.x + b.width / 2, b.y + b.height + 11, p.xLabel, size: 9, anchor: "middle")
      }
      if !p.yLabel.isEmpty {
        let cx = b.x - 6
        let cy = b.y + b.height / 2
        s +=
          "<text x=\"\(num(cx))\" y=\"\(num(cy))\" font-size=\"9\" text-anchor=\"middle\" transform=\"rotate(-90 \(num(cx)) \(num(cy)))\">\(xml(p.yLabel))</text>\n"
      }
      s += text(b.x - 2, b.y + 8, p.yRange.0, size: 8, anchor: "end")
      s += text(b.x - 2, b.y + b.height, p.yRange.1, size: 8, anchor: "end")
      // Structure bands under the grid.
      let by = b.y + b.height + 15
      for band in p.bands {
        let bx = b.x + Double(band.first) * f.cellWidth
        let bw = max(1, Double(band.count) * f.cellWidth)
        s +=
          "<rect x=\"\(num(bx))\" y=\"\(num(by))\" width=\"\(num(bw))\" height=\"\(num(bandHeight))\" fill=\"\(band.color.hex)\"><title>\(xml(band.label))</title></rect>\n"
      }
    }
    // Legend: swatches (owners, then band structures), then the heat scale.
    var ly = legendY
    let items = f.legend.swatches + bandSwatches(f)
    let perRow = legendColumns(width)
    for (k, item) in items.enumerated() {
      let col = Double(k % perRow)
      if k > 0 && k % perRow == 0 { ly += 16 }
      let lx = margin + col * legendColumnWidth
      s +=
        "<rect x=\"\(num(lx))\" y=\"\(num(ly))\" width=\"11\" height=\"11\" fill=\"\(item.color.hex)\" stroke=\"#666666\" stroke-width=\"0.5\"/>\n"
      s += text(lx + 15, ly + 9.5, item.label, size: 10)
    }
    if !items.isEmpty { ly += 16 }
    if let scale = f.legend.scale {
      let steps = 64
      let bw = 256.0
      for k in 0..<steps {
        // Evenly spaced in log(count): the colour at each step's count.
        let count = UInt64(pow(Double(scale.maximum), Double(k) / Double(steps - 1)).rounded())
        s +=
          "<rect x=\"\(num(margin + Double(k) * bw / Double(steps)))\" y=\"\(num(ly + 4))\" width=\"\(num(bw / Double(steps) + 0.3))\" height=\"10\" fill=\"\(scale.color(max(1, count)).hex)\"/>\n"
      }
      s += text(margin, ly + 26, "1", size: 9)
      s += text(margin + bw, ly + 26, "\(scale.maximum)", size: 9, anchor: "end")
      s += text(margin + bw + 10, ly + 13, f.legend.scaleLabel + " (log scale)", size: 10)
      ly += 34
    }
    for (k, note) in f.notes.enumerated() {
      s += text(margin, ly + 11 + Double(k) * 15, note, size: 10, fill: "#333333")
    }
    s += "</svg>\n"
    return s
  }

  /// The grid: runs of equal colour in a row become one rectangle; marked cells one path.
  static func cells(_ p: Panel, _ b: PanelBox, _ f: Figure) -> String {
    var s = ""
    var marks = ""
    for row in 0..<p.rows {
      var col = 0
      while col < p.columns {
        let i = row * p.columns + col
        guard let c = p.colors[i] else {
          col += 1
          continue
        }
        var end = col + 1
        while end < p.columns, p.colors[row * p.columns + end] == c { end += 1 }
        s +=
          "<rect x=\"\(num(b.x + Double(col) * f.cellWidth))\" y=\"\(num(b.y + Double(row) * f.cellHeight))\" width=\"\(num(Double(end - col) * f.cellWidth))\" height=\"\(num(f.cellHeight))\" fill=\"\(c.hex)\"/>\n"
        col = end
      }
      for c in 0..<p.columns where p.marked[row * p.columns + c] {
        marks +=
          "M\(num(b.x + Double(c) * f.cellWidth)) \(num(b.y + Double(row + 1) * f.cellHeight))l\(num(f.cellWidth)) -\(num(f.cellHeight))"
      }
    }
    if !marks.isEmpty {
      s +=
        "<path d=\"\(marks)\" stroke=\"#ffffff\" stroke-opacity=\"0.6\" stroke-width=\"0.7\" fill=\"none\"/>\n"
    }
    return s
  }

  /// The SVG in a page that says, under the figure, what the cell under the pointer is.
  public static func html(_ f: Figure) -> String {
    let (boxes, _, _, _) = layout(f)
    var s = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>\(xml(f.title))</title>\n"
    s +=
      "<style>body{margin:0;font-family:\(fontFamily);background:#fff}#info{position:fixed;left:0;right:0;bottom:0;padding:6px 12px;background:#222;color:#eee;font-size:13px;min-height:18px;white-space:pre}</style>\n"
    s += "</head><body>\n"
    s += svgBody(f, interactive: true)
    s += "<div id=\"info\">point at a block</div>\n<script>\n"
    s += "const panels = [\n"
    for (i, p) in f.panels.enumerated() {
      let b = boxes[i]
      s +=
        "{x:\(num(b.x)),y:\(num(b.y)),cw:\(num(f.cellWidth)),ch:\(num(f.cellHeight)),cols:\(p.columns),rows:\(p.rows),title:\(js(p.title)),\n"
      s += "idx:[" + p.infoIndex.map { String($0) }.joined(separator: ",") + "],\n"
      s += "txt:[" + p.infoTexts.map(js).joined(separator: ",") + "]},\n"
    }
    s += "];\n"
    s += """
      const svg = document.getElementById('figure');
      const info = document.getElementById('info');
      svg.addEventListener('mousemove', ev => {
        const pt = svg.createSVGPoint(); pt.x = ev.clientX; pt.y = ev.clientY;
        const q = pt.matrixTransform(svg.getScreenCTM().inverse());
        for (const p of panels) {
          const c = Math.floor((q.x - p.x) / p.cw), r = Math.floor((q.y - p.y) / p.ch);
          if (c >= 0 && c < p.cols && r >= 0 && r < p.rows) {
            const k = p.idx[r * p.cols + c];
            info.textContent = p.title + ': ' + (k >= 0 ? p.txt[k] : 'cell ' + (r * p.cols + c));
            return;
          }
        }
      });

      """
    s += "</script>\n</body></html>\n"
    return s
  }

  // MARK: Text helpers

  static func text(
    _ x: Double, _ y: Double, _ t: String, size: Double, weight: String = "normal",
    anchor: String = "start", fill: String = "#000000"
  ) -> String {
    guard !t.isEmpty else { return "" }
    return
      "<text x=\"\(num(x))\" y=\"\(num(y))\" font-size=\"\(num(size))\" font-weight=\"\(weight)\" text-anchor=\"\(anchor)\" fill=\"\(fill)\">\(xml(t))</text>\n"
  }

  /// A coordinate with at most two decimals and no trailing zeros (stable, compact output).
  static func num(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    if r == r.rounded() { return String(Int(r)) }
    var s = String(r)
    while s.hasSuffix("0") { s.removeLast() }
    return s
  }

  public static func xml(_ t: String) -> String {
    var out = ""
    for ch in t.unicodeScalars {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      default:
        if ch.value < 0x20 && ch != "\t" { out += "?" } else { out.unicodeScalars.append(ch) }
      }
    }
    return out
  }

  /// A JavaScript string literal (also safe inside a <script> element).
  static func js(_ t: String) -> String {
    var out = "\""
    for ch in t.unicodeScalars {
      switch ch {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "<": out += "\\u003c"
      case ">": out += "\\u003e"
      case "&": out += "\\u0026"
      default:
        if ch.value < 0x20 || ch.value == 0x2028 || ch.value == 0x2029 {
          let hex = String(ch.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
          out.unicodeScalars.append(ch)
        }
      }
    }
    return out + "\""
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Byte sizes as users write them (recipe keys, command-line options) and as rosepack prints them:
// one grammar and one format, shared by every module, so that a size a message prints can be pasted
// back into a recipe or an option.

/// The one size grammar of rosepack, for recipe keys and command-line options alike (systemd's
/// `parse_size` spelling): a number of bytes with an optional upper-case K, M, G or T suffix.
public let sizeSyntaxHint =
  "a number of bytes with an optional K, M, G or T suffix (powers of 1024), e.g. 64M"

/// `value`'s bytes in the grammar of `sizeSyntaxHint`; nil when it is not a size.
public func parseSize(_ text: String) -> UInt64? {
  guard !text.isEmpty else { return nil }
  var digits = Substring(text)
  var multiplier: UInt64 = 1
  if let last = digits.last, !last.isNumber {
    switch last {
    case "K": multiplier = 1 << 10
    case "M": multiplier = 1 << 20
    case "G": multiplier = 1 << 30
    case "T": multiplier = 1 << 40
    default: return nil
    }
    digits = digits.dropLast()
  }
  guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
    let number = UInt64(digits)
  else { return nil }
  let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
  return overflow ? nil : product
}

/// The hint for a value `parseSize` refused: the grammar, or the upper-case spelling when only the
/// suffix's case is wrong.
public func sizeHint(for value: String) -> String {
  if let last = value.last, "kmgt".contains(last), parseSize(value.uppercased()) != nil {
    return "suffixes are upper case: \(value.dropLast())\(last.uppercased())"
  }
  return sizeSyntaxHint
}

/// "412 MiB" when `value` is a whole number of the unit, "1.5 GiB" (rounded to a tenth) otherwise,
/// "512 bytes" below 1 KiB. `exact` adds the byte count to a rounded value, for messages whose reader
/// must act on the number: "65.0 MiB (68177920 bytes)".
public func formatSize(_ value: UInt64, exact: Bool = false) -> String {
  let units: [(UInt64, String)] = [
    (1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"),
  ]
  for (unit, name) in units where value >= unit {
    if value % unit == 0 { return "\(value / unit) \(name)" }
    let tenths = UInt64((Double(value) / Double(unit) * 10).rounded())
    let rounded = "\(tenths / 10).\(tenths % 10) \(name)"
    return exact ? rounded + " (\(value) bytes)" : rounded
  }
  return "\(value) bytes"
}

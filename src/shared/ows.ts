/**
 * HTTP's optional whitespace (RFC 9110 §5.6.3: SP and HTAB), trimmed in
 * linear time. A regex such as `/^[ \t]+|[ \t]+$/g` retries its second branch
 * at every position of an inner run of blanks: quadratic, seconds of CPU for
 * a 100 KB header a caller controls. `String#trim` would also drop NBSP, BOM,
 * VT or U+3000, and let `abc\u00a0` alias `abc`.
 *
 * @module
 */

/**
 * A header value without leading and trailing SP and HTAB.
 *
 * @param value - the raw value
 * @returns the value trimmed (the same string when nothing is trimmed)
 * @example
 * trimOws(' \t"abc" ') // '"abc"'
 * trimOws('abc\u00a0') // 'abc\u00a0' (not HTTP whitespace)
 */
export function trimOws(value: string): string {
  let start = 0
  let end = value.length
  while (start < end && isOws(value.charCodeAt(start))) start++
  while (end > start && isOws(value.charCodeAt(end - 1))) end--
  return start === 0 && end === value.length ? value : value.slice(start, end)
}

/** SP (0x20) or HTAB (0x09). */
function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09
}

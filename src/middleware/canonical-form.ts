const encoder = new TextEncoder()
const CRLF_DASHES = encoder.encode('\r\n--')

/**
 * A `multipart/form-data` body with its boundary taken out, for
 * fingerprinting: what a browser or `fetch` sends again for the same
 * `FormData` differs only in its (random) boundary.
 *
 * The body is cut at every delimiter (`CRLF--boundary`, or `--boundary` at
 * the very start); the pieces between (preamble, each part's header lines
 * and bytes, the closing `--` and epilogue) are kept byte for byte, in
 * order, each with its length. Two bodies with the same form are then the
 * same pieces joined by two boundaries, and nothing else: every name,
 * filename, content type, header and byte is compared, so no two different
 * forms are ever merged. A body this cannot cut cleanly gives undefined and
 * is compared as bytes: no usable boundary, no delimiter, or a boundary
 * string that also occurs where it does not delimit (followed by anything
 * but `--` or optional padding and CRLF).
 *
 * @param body - the request body
 * @param contentType - its `Content-Type` header
 * @returns the canonical bytes, or undefined
 * @example
 * canonicalMultipart(bytes, 'multipart/form-data; boundary=----x1') // the same for boundary=----y2
 */
export function canonicalMultipart(body: Uint8Array, contentType: string): Uint8Array | undefined {
  const boundary = boundaryOf(contentType)
  if (boundary === undefined) return undefined
  const delimiter = concat([CRLF_DASHES, encoder.encode(boundary)])
  // A virtual CRLF in front, so a delimiter at the very start reads like the others.
  const text = concat([CRLF_DASHES.subarray(0, 2), body])
  const pieces: Uint8Array[] = []
  let from = 0
  for (let at = indexOf(text, delimiter, 0); at !== -1; at = indexOf(text, delimiter, from)) {
    pieces.push(text.subarray(from, at))
    from = at + delimiter.byteLength
    if (!delimits(text, from)) return undefined
  }
  if (pieces.length === 0) return undefined
  pieces.push(text.subarray(from))
  return lengthPrefixed(pieces)
}

/**
 * An `application/x-www-form-urlencoded` body as its list of name/value
 * pairs, in order, each as the bytes the WHATWG URL standard's parser
 * yields (`+` is a space, `%41` is `A`, empty pieces between `&`s are
 * skipped), before any UTF-8 decoding, so two bodies with different bytes
 * never merge. `a=%20` and `a=+` are the same form; `a=1&b=2` and
 * `b=2&a=1` are not (order is kept).
 *
 * @param body - the request body
 * @returns the canonical bytes
 * @example
 * canonicalUrlEncoded(encoder.encode('a=x+y')) // same as for 'a=x%20y'
 */
export function canonicalUrlEncoded(body: Uint8Array): Uint8Array {
  const pieces: Uint8Array[] = []
  let start = 0
  for (let i = 0; i <= body.byteLength; i++) {
    if (i < body.byteLength && body[i] !== 0x26) continue // &
    if (i > start) {
      const sequence = body.subarray(start, i)
      const eq = sequence.indexOf(0x3d) // =
      pieces.push(formDecode(eq === -1 ? sequence : sequence.subarray(0, eq)), formDecode(eq === -1 ? new Uint8Array() : sequence.subarray(eq + 1)))
    }
    start = i + 1
  }
  return lengthPrefixed(pieces)
}

/** The longest `Content-Type` read for its boundary: a real one is far shorter (RFC 6838 names ≤ 127, a boundary ≤ 70). */
const MAX_MEDIA_TYPE = 1024

/**
 * A `Content-Type` value without its `boundary` parameter, for a
 * fingerprint that lists `content-type` among its headers.
 *
 * @example
 * withoutBoundary('multipart/form-data; boundary=x') // 'multipart/form-data'
 */
export function withoutBoundary(contentType: string): string {
  // Its regex backtracks over runs of blanks: a value longer than any real media type is kept whole.
  if (contentType.length > MAX_MEDIA_TYPE) return contentType
  return contentType.replace(/\s*;\s*boundary\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/gi, '')
}

/** The boundary parameter (RFC 2046: 1–70 characters), unquoted. */
function boundaryOf(contentType: string): string | undefined {
  if (contentType.length > MAX_MEDIA_TYPE) return undefined
  const match = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(contentType)
  const value = match?.[1]?.replace(/\\(.)/g, '$1') ?? match?.[2]
  return value !== undefined && value.length >= 1 && value.length <= 70 ? value : undefined
}

/** Whether the bytes after a boundary make it a delimiter: `--` (the close), or padding then CRLF. */
function delimits(text: Uint8Array, at: number): boolean {
  if (text[at] === 0x2d && text[at + 1] === 0x2d) return true
  let i = at
  while (text[i] === 0x20 || text[i] === 0x09) i++
  return text[i] === 0x0d && text[i + 1] === 0x0a
}

/** Percent-decodes bytes and turns `+` into a space (WHATWG URL, application/x-www-form-urlencoded parser). */
function formDecode(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength)
  let n = 0
  for (let i = 0; i < bytes.byteLength; i++) {
    const b = bytes[i]!
    if (b === 0x2b) {
      out[n++] = 0x20
    } else if (b === 0x25 && i + 2 < bytes.byteLength && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
      out[n++] = Number.parseInt(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!), 16)
      i += 2
    } else {
      out[n++] = b
    }
  }
  return out.subarray(0, n)
}

function isHex(b: number | undefined): boolean {
  return b !== undefined && ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66))
}

/** Each piece as `<length>:<bytes>`, so no two lists of pieces give the same bytes. */
function lengthPrefixed(pieces: Uint8Array[]): Uint8Array {
  return concat(pieces.flatMap((p) => [encoder.encode(`${p.byteLength}:`), p]))
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0]
  const last = haystack.byteLength - needle.byteLength
  outer: for (let i = haystack.indexOf(first!, from); i !== -1 && i <= last; i = haystack.indexOf(first!, i + 1)) {
    for (let j = 1; j < needle.byteLength; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}

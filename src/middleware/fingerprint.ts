import { sha256Hex } from '../shared/digest.js'
import { canonicalMultipart, canonicalUrlEncoded, withoutBoundary } from './canonical-form.js'
import { canonicalJson } from './canonical-json.js'

/** How the default fingerprint is computed. */
export interface FingerprintOptions {
  /** Request headers whose values join the fingerprint (case-insensitive names). Default: none. */
  headers?: string[]
  /**
   * Compare a JSON body (`Content-Type` `application/json` or `…+json`) as
   * the JSON value it is: member order and whitespace are ignored, numbers
   * compared by their exact decimal value (`1.0` is `1`;
   * `9007199254740993` is not `9007199254740992`). A body that is not JSON,
   * or repeats a member name, is compared as bytes. Default: false (bytes as sent).
   */
  normalizeJson?: boolean
  /**
   * Compare an `application/x-www-form-urlencoded` body as its list of
   * name/value pairs, in order (`+` and `%20` are one space; the bytes after
   * percent-decoding are compared). Default: false (bytes as sent).
   * `multipart/form-data` needs no option: its boundary is always ignored.
   */
  normalizeForms?: boolean
}

/** What a fingerprint is computed from. */
export interface FingerprintInput {
  method: string
  url: string
  headers: Headers
  body: Uint8Array
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })
const encoder = new TextEncoder()

/**
 * SHA-256 over the method, the path with query, chosen headers and the body,
 * joined by newlines. Two requests with one key but different fingerprints
 * are a client error (422), as in Stripe and the IETF draft.
 *
 * The body is compared as bytes, except (the key policy in docs/once.md):
 * a `multipart/form-data` body without its boundary; with `normalizeJson`,
 * a JSON body as its JSON value; with `normalizeForms`, a form-urlencoded
 * body as its pairs. A normalised fingerprint is prefixed with its kind
 * (`json:`, `form-data:`, `form:`), so it never equals a fingerprint of
 * bytes.
 *
 * @param input - the request's parts
 * @param options - headers to include, JSON and form normalisation
 * @returns hex digest (with a kind prefix when the body was normalised)
 * @example
 * await fingerprint({ method: 'POST', url: 'https://x/a?b=1', headers: new Headers(), body: new Uint8Array() })
 */
export async function fingerprint(input: FingerprintInput, options: FingerprintOptions = {}): Promise<string> {
  const url = new URL(input.url)
  const normal = input.body.byteLength === 0 ? undefined : normalise(input, options)
  const parts = [input.method.toUpperCase(), url.pathname + url.search]
  for (const name of options.headers ?? []) {
    let value = input.headers.get(name) ?? ''
    // The boundary is not part of the request's meaning (see canonicalMultipart), in the header no more than in the body.
    if (normal?.kind === 'form-data' && name.toLowerCase() === 'content-type') value = withoutBoundary(value)
    parts.push(`${name.toLowerCase()}: ${value}`)
  }
  const head = parts.join('\n') + '\n'
  const body = normal?.body ?? input.body
  const bytes = new Uint8Array(head.length * 3 + body.byteLength)
  const { written } = encoder.encodeInto(head, bytes)
  bytes.set(body, written)
  const digest = await sha256Hex(bytes.subarray(0, written + body.byteLength))
  return normal ? `${normal.kind}:${digest}` : digest
}

/** The body's canonical form and kind, or undefined when it is compared as bytes. */
function normalise(input: FingerprintInput, options: FingerprintOptions): { kind: string; body: Uint8Array } | undefined {
  const type = input.headers.get('content-type')
  if (type === null) return undefined
  const media = type.split(';', 1)[0]!.trim().toLowerCase()
  if (media === 'multipart/form-data') {
    const body = canonicalMultipart(input.body, type)
    return body && { kind: 'form-data', body }
  }
  if (options.normalizeForms && media === 'application/x-www-form-urlencoded') return { kind: 'form', body: canonicalUrlEncoded(input.body) }
  if (options.normalizeJson && (media === 'application/json' || media.endsWith('+json'))) {
    let text: string
    try {
      text = decoder.decode(input.body)
    } catch {
      return undefined // not UTF-8, so not JSON (RFC 8259 §8.1)
    }
    const canonical = canonicalJson(text)
    return canonical === undefined ? undefined : { kind: 'json', body: encoder.encode(canonical) }
  }
  return undefined
}

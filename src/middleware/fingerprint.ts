import canonicalize from 'canonicalize'
import { sha256Hex } from '../shared/digest.js'

/** How the default fingerprint is computed. */
export interface FingerprintOptions {
  /** Request headers whose values join the fingerprint (case-insensitive names). Default: none. */
  headers?: string[]
  /**
   * Hash a JSON body in RFC 8785 canonical form, so `{"a":1,"b":2}` and
   * `{"b":2,"a":1}` count as the same request. A body that is not valid JSON
   * is hashed as it is. Default: false (bytes as sent).
   */
  normalizeJson?: boolean
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
 * @param input - the request's parts
 * @param options - headers to include, JSON normalisation
 * @returns hex digest
 * @example
 * await fingerprint({ method: 'POST', url: 'https://x/a?b=1', headers: new Headers(), body: new Uint8Array() })
 */
export async function fingerprint(input: FingerprintInput, options: FingerprintOptions = {}): Promise<string> {
  const url = new URL(input.url)
  const parts = [input.method.toUpperCase(), url.pathname + url.search]
  for (const name of options.headers ?? []) parts.push(`${name.toLowerCase()}: ${input.headers.get(name) ?? ''}`)
  const head = parts.join('\n') + '\n'
  const body = options.normalizeJson ? normalizeJson(input.body) : input.body
  const bytes = new Uint8Array(head.length * 3 + body.byteLength)
  const { written } = encoder.encodeInto(head, bytes)
  bytes.set(body, written)
  return sha256Hex(bytes.subarray(0, written + body.byteLength))
}

function normalizeJson(body: Uint8Array): Uint8Array {
  if (body.byteLength === 0) return body
  try {
    const canonical = canonicalize(JSON.parse(decoder.decode(body)) as unknown)
    return canonical === undefined ? body : encoder.encode(canonical)
  } catch {
    return body
  }
}

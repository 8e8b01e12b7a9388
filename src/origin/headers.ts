import { ONCE_HEADERS, parseNoop, parseSequence } from '../shared/wire.js'

/**
 * The `Once-*` headers of a request to a deduped method, read and checked:
 * `none` (no `Once-Request-Id` and no other `Once-*` ordering header), `bad`
 * (naming the header and what is wrong) or `ok`.
 *
 * @example
 * const h: OnceRequestHeaders = { kind: 'ok', requestId: 'r-1', attempt: 1, noop: false }
 */
export type OnceRequestHeaders =
  | { kind: 'none' }
  | { kind: 'bad'; detail: string }
  | {
      kind: 'ok'
      requestId: string
      key?: string | undefined
      domain?: string | undefined
      sequence?: number | undefined
      attempt: number
      noop: boolean
    }

/** Visible ASCII: what a request id the edge generates is made of. */
const REQUEST_ID = /^[\x21-\x7e]{1,255}$/
/** Printable ASCII: a domain is a name the edge's `domain(c)` chose. */
const DOMAIN = /^[\x20-\x7e]{1,255}$/

/**
 * Reads `Once-Request-Id`, `Idempotency-Key`, `Once-Domain`,
 * `Once-Sequence`, `Once-Attempt` and `Once-Noop`. A request id is 1–255
 * visible ASCII characters; a domain 1–255 printable ASCII; a sequence and
 * an attempt positive integers in plain digits; `Once-Noop` an RFC 8941
 * Boolean and only on ordered requests. Domain and sequence come together.
 *
 * @param headers - the request's headers
 * @returns the parsed headers, or which one is wrong
 * @example
 * readOnceHeaders(new Headers({ 'once-request-id': 'r-1', 'once-domain': 'a1', 'once-sequence': '0' }))
 * // { kind: 'bad', detail: 'Once-Sequence must be a positive integer in plain digits, got "0".' }
 */
export function readOnceHeaders(headers: Headers): OnceRequestHeaders {
  const requestId = headers.get(ONCE_HEADERS.requestId)
  const domain = headers.get(ONCE_HEADERS.domain)
  const sequence = headers.get(ONCE_HEADERS.sequence)
  const noop = headers.get(ONCE_HEADERS.noop)
  const attempt = headers.get(ONCE_HEADERS.attempt)
  if (requestId === null) {
    const stray = [domain === null ? '' : ONCE_HEADERS.domain, sequence === null ? '' : ONCE_HEADERS.sequence, noop === null ? '' : ONCE_HEADERS.noop].filter(Boolean)
    if (stray.length === 0) return { kind: 'none' }
    return bad(`${stray.join(' and ')} need${stray.length === 1 ? 's' : ''} a ${ONCE_HEADERS.requestId}.`)
  }
  if (!REQUEST_ID.test(requestId)) return bad(`${ONCE_HEADERS.requestId} must be 1 to 255 visible ASCII characters.`)
  if ((domain === null) !== (sequence === null)) {
    return bad(`${ONCE_HEADERS.domain} and ${ONCE_HEADERS.sequence} go together; this request has only ${domain === null ? ONCE_HEADERS.sequence : ONCE_HEADERS.domain}.`)
  }
  if (domain !== null && !DOMAIN.test(domain)) return bad(`${ONCE_HEADERS.domain} must be 1 to 255 printable ASCII characters.`)
  const seq = sequence === null ? undefined : parseSequence(sequence)
  if (sequence !== null && seq === undefined) return bad(`${ONCE_HEADERS.sequence} must be a positive integer in plain digits, got ${quote(sequence)}.`)
  const tries = attempt === null ? 1 : parseSequence(attempt)
  if (tries === undefined) return bad(`${ONCE_HEADERS.attempt} must be a positive integer in plain digits, got ${quote(attempt ?? '')}.`)
  const isNoop = noop === null ? false : parseNoop(noop)
  if (isNoop === undefined) return bad(`${ONCE_HEADERS.noop} must be ?1 or ?0, got ${quote(noop ?? '')}.`)
  if (isNoop && seq === undefined) return bad(`${ONCE_HEADERS.noop}: ?1 needs ${ONCE_HEADERS.domain} and ${ONCE_HEADERS.sequence}.`)
  return {
    kind: 'ok',
    requestId,
    key: unquote(headers.get(ONCE_HEADERS.idempotencyKey)),
    domain: domain ?? undefined,
    sequence: seq,
    attempt: tries,
    noop: isNoop,
  }
}

/** The bare key of a structured-field string (`"k-1"` → `k-1`, as the edge forwards it); any other value as it came. */
function unquote(value: string | null): string | undefined {
  if (value === null) return undefined
  const m = /^"((?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/.exec(value)
  return m?.[1] === undefined ? value : m[1].replace(/\\(["\\])/g, '$1')
}

function bad(detail: string): OnceRequestHeaders {
  return { kind: 'bad', detail }
}

/** Quotes a header value for a message, cut short so garbage cannot bloat the answer. */
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
}

import fc from 'fast-check'
import { createSignatureSync, verifySignature } from 'http-message-sig'
import { describe, expect, it } from 'vitest'
import { checkContentDigest, contentDigest } from '../../src/shared/content-digest.js'
import { parsePrincipal, principalHeader } from '../../src/shared/principal.js'
import { hmacSha256, signRequest, verifyRequest, type SigningKey } from '../../src/shared/signature.js'

const encoder = new TextEncoder()
const T = 1_700_000_000
const key: SigningKey = { keyid: 'ONCE_SIGNING_SECRET', secret: 'test-secret-0123456789' }
const secrets = { ONCE_SIGNING_SECRET: key.secret }

/** HMAC-SHA256 by Web Crypto, base64: an implementation independent of the one under test. */
async function hmacBase64(secret: Uint8Array, text: string): Promise<string> {
  const k = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', k, encoder.encode(text)))
  return btoa(String.fromCharCode(...mac))
}

const fromBase64 = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))

/** A request as the edge sends it, signed at `now`. */
async function edgeRequest(extra: Record<string, string> = {}, options: { url?: string; body?: string; now?: number; sign?: SigningKey } = {}) {
  const url = options.url ?? 'https://eu.example.com/accounts/a1/deposits?x=1'
  const body = options.body ?? '{"amount":5}'
  const headers = new Headers({ 'content-type': 'application/json', 'idempotency-key': '"k-1"', 'once-request-id': 'r-1', 'once-domain': 'a1', 'once-sequence': '7', ...extra })
  headers.set('content-digest', await contentDigest(encoder.encode(body)))
  const signed = signRequest(options.sign ?? key, { method: 'POST', url, headers }, { nowSeconds: options.now ?? T })
  headers.set('signature-input', signed.signatureInput)
  headers.set('signature', signed.signature)
  return { url, headers, body, signed }
}

describe('RFC 9421 Appendix B.2.5: hmac-sha256 with the RFC own key and request', () => {
  // The RFC's shared secret is base64; its bytes are the HMAC key (ours use a secret's UTF-8 bytes).
  const rfcKey = fromBase64('uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==')
  const request = {
    kind: 'request' as const,
    method: 'POST',
    targetUri: 'https://example.com/foo?param=Value&Pet=dog',
    fields: [
      { name: 'host', value: 'example.com' },
      { name: 'date', value: 'Tue, 20 Apr 2021 02:07:55 GMT' },
      { name: 'content-type', value: 'application/json' },
      { name: 'content-digest', value: 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:' },
      { name: 'content-length', value: '18' },
    ],
  }

  it('signs to the RFC signature', () => {
    const signed = createSignatureSync(request, {
      label: 'sig-b25',
      components: ['date', '@authority', 'content-type'],
      parameters: { created: 1618884473, keyid: 'test-shared-secret' },
      signer: hmacSha256(rfcKey),
    })
    expect(signed.signatureInput).toBe('sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"')
    expect(signed.signature).toBe('sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:')
  })

  it('verifies the RFC signature, and refuses it under another key', async () => {
    const message = {
      ...request,
      fields: [
        ...request.fields,
        { name: 'signature-input', value: 'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"' },
        { name: 'signature', value: 'sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:' },
      ],
    }
    const policy = { algorithms: ['hmac-sha256'], requiredComponents: [], requiredParameters: [], now: 1618884473 }
    await expect(verifySignature(message, { policy, resolveVerifier: () => hmacSha256(rfcKey) })).resolves.toMatchObject({ label: 'sig-b25' })
    await expect(verifySignature(message, { policy, resolveVerifier: () => hmacSha256('another key') })).rejects.toThrow(/verification failed/i)
  })
})

describe('RFC 9530 Content-Digest', () => {
  it('is the RFC example for {"hello": "world"}, and the empty body has one too', async () => {
    expect(await contentDigest(encoder.encode('{"hello": "world"}'))).toBe('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:')
    expect(await contentDigest(new Uint8Array())).toBe('sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:')
  })

  it('checks a body against the header: ok, mismatch, missing; large bodies too (Web Crypto)', async () => {
    const big = new Uint8Array(200_000).fill(7)
    const header = await contentDigest(big)
    expect(await checkContentDigest(header, big)).toBe('ok')
    expect(await checkContentDigest(header, big.subarray(1))).toBe('mismatch')
    expect(await checkContentDigest('sha-512=:AAAA:', big)).toBe('missing')
    expect(await checkContentDigest('garbage(', big)).toBe('missing')
    expect(await checkContentDigest(null, big)).toBe('missing')
    // Another member besides sha-256 is ignored.
    expect(await checkContentDigest(`${await contentDigest(encoder.encode('x'))}, sha-512=:AAAA:`, encoder.encode('x'))).toBe('ok')
  })
})

describe('signRequest: the edge signature (DESIGN §6)', () => {
  it('matches a signature base written out by hand and an independent HMAC (own vector)', async () => {
    const { headers, signed } = await edgeRequest()
    const digest = headers.get('content-digest')!
    const params =
      '("@method" "@path" "@query" "content-digest" "content-type" "idempotency-key" "once-domain" "once-request-id" "once-sequence")' +
      ';created=1700000000;expires=1700000300;keyid="ONCE_SIGNING_SECRET";alg="hmac-sha256"'
    const base = [
      '"@method": POST',
      '"@path": /accounts/a1/deposits',
      '"@query": ?x=1',
      `"content-digest": ${digest}`,
      '"content-type": application/json',
      '"idempotency-key": "k-1"',
      '"once-domain": a1',
      '"once-request-id": r-1',
      '"once-sequence": 7',
      `"@signature-params": ${params}`,
    ].join('\n')
    expect(signed.signatureInput).toBe(`once=${params}`)
    expect(signed.signature).toBe(`once=:${await hmacBase64(encoder.encode(key.secret), base)}:`)
  })

  it('signs the URL as fetch sends it: dot segments resolved, escapes applied, fragment dropped', async () => {
    const headers = new Headers({ 'content-digest': await contentDigest(new Uint8Array()) })
    const signed = signRequest(key, { method: 'GET', url: 'https://eu.example.com/a/./b/../c d?x=1#frag', headers }, { nowSeconds: T })
    headers.set('signature-input', signed.signatureInput)
    headers.set('signature', signed.signature)
    // What arrives: fetch sends no fragment.
    const sent = new Request('https://eu.example.com/a/./b/../c d?x=1', { headers })
    expect(new URL(sent.url).pathname).toBe('/a/c%20d')
    expect(await verifyRequest(sent, { secrets, nowSeconds: T })).toMatchObject({ ok: true })
  })

  it('covers "@query" only when there is a query, and skips hop headers and values that are not ASCII', async () => {
    const headers = new Headers({ 'x-forwarded-for': '10.0.0.1', via: '1.1 proxy', 'x-note': 'caf\u00e9', accept: 'application/json', 'content-digest': 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:' })
    const { signatureInput } = signRequest(key, { method: 'get', url: 'https://eu.example.com/a', headers }, { nowSeconds: T, ttlSeconds: 60 })
    expect(signatureInput).toBe('once=("@method" "@path" "accept" "content-digest");created=1700000000;expires=1700000060;keyid="ONCE_SIGNING_SECRET";alg="hmac-sha256"')
  })
})

describe('verifyRequest: decided from the headers alone', () => {
  const at = (now: number) => ({ secrets, nowSeconds: now })
  const asRequest = (r: { url: string; headers: Headers }, change?: (h: Headers) => void, url = r.url) => {
    const h = new Headers(r.headers)
    change?.(h)
    return new Request(url, { method: 'POST', headers: h })
  }

  it('accepts the edge signature without reading the body, within its lifetime and up to 60 s early', async () => {
    const r = await edgeRequest()
    expect(await verifyRequest(asRequest(r), at(T))).toEqual({ ok: true, keyid: 'ONCE_SIGNING_SECRET' })
    expect(await verifyRequest(asRequest(r), at(T + 300))).toMatchObject({ ok: true })
    expect(await verifyRequest(asRequest(r), at(T - 60))).toMatchObject({ ok: true })
  })

  it('refuses past expires, and created more than 60 s ahead', async () => {
    const r = await edgeRequest()
    expect(await verifyRequest(asRequest(r), at(T + 301))).toMatchObject({ ok: false, reason: 'expired' })
    expect(await verifyRequest(asRequest(r), at(T - 61))).toMatchObject({ ok: false, reason: 'future' })
  })

  it('a captured request replayed with Once-Noop: ?1 added is refused: every Once-* header must be covered (issue 15.7)', async () => {
    const r = await edgeRequest()
    expect(await verifyRequest(asRequest(r, (h) => h.set('once-noop', '?1')), at(T))).toMatchObject({ ok: false, reason: 'uncovered', detail: expect.stringContaining('"once-noop"') })
    expect(await verifyRequest(asRequest(r, (h) => h.set('once-principal', 'sub="mallory"')), at(T))).toMatchObject({ ok: false, reason: 'uncovered' })
  })

  it("the edge's no-op resend with Once-Noop stripped is no signature for the real request", async () => {
    const r = await edgeRequest({ 'once-noop': '?1' })
    expect(await verifyRequest(asRequest(r), at(T))).toMatchObject({ ok: true })
    expect(await verifyRequest(asRequest(r, (h) => h.delete('once-noop')), at(T))).toMatchObject({ ok: false, reason: 'mismatch' })
  })

  it('refuses any covered part changed: method, path, query, a header, the digest, the secret', async () => {
    const r = await edgeRequest()
    const refused = async (req: Request, opts = at(T)) => expect(await verifyRequest(req, opts)).toMatchObject({ ok: false, reason: 'mismatch' })
    await refused(new Request(r.url, { method: 'PUT', headers: r.headers }))
    await refused(asRequest(r, undefined, 'https://eu.example.com/accounts/a2/deposits?x=1'))
    await refused(asRequest(r, undefined, 'https://eu.example.com/accounts/a1/deposits?x=2'))
    await refused(asRequest(r, (h) => h.set('once-sequence', '8')))
    await refused(asRequest(r, (h) => h.set('idempotency-key', '"k-2"')))
    await refused(asRequest(r, (h) => h.set('content-digest', 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:')))
    await refused(asRequest(r), { secrets: { ONCE_SIGNING_SECRET: 'another-secret-entirely' }, nowSeconds: T })
    // The authority is not covered: a replica behind another host name verifies the same request.
    expect(await verifyRequest(asRequest(r, undefined, 'http://127.0.0.1:9001/accounts/a1/deposits?x=1'), at(T))).toMatchObject({ ok: true })
  })

  it('refuses an unknown keyid, and accepts either of two secrets during a rotation', async () => {
    const r = await edgeRequest({}, { sign: { keyid: 'k2026', secret: 'the-new-secret-of-2026' } })
    expect(await verifyRequest(asRequest(r), at(T))).toMatchObject({ ok: false, reason: 'unknown-key' })
    expect(await verifyRequest(asRequest(r), { secrets: { ...secrets, k2026: 'the-new-secret-of-2026' }, nowSeconds: T })).toEqual({ ok: true, keyid: 'k2026' })
  })

  it('refuses a missing, foreign or malformed signature, and one that does not cover the digest or the query', async () => {
    const r = await edgeRequest()
    expect(await verifyRequest(asRequest(r, (h) => h.delete('signature')), at(T))).toMatchObject({ ok: false, reason: 'missing' })
    expect(await verifyRequest(asRequest(r, (h) => h.set('signature-input', r.signed.signatureInput.replace(/^once=/, 'other='))), at(T))).toMatchObject({ ok: false, reason: 'missing' })
    expect(await verifyRequest(asRequest(r, (h) => h.set('signature-input', '(((')), at(T))).toMatchObject({ ok: false, reason: 'malformed' })
    expect(await verifyRequest(asRequest(r, (h) => h.set('signature-input', r.signed.signatureInput.replace(';expires=1700000300', ''))), at(T))).toMatchObject({ ok: false, reason: 'malformed' })
    expect(await verifyRequest(asRequest(r, (h) => h.set('signature-input', r.signed.signatureInput.replace('hmac-sha256', 'ed25519'))), at(T))).toMatchObject({ ok: false, reason: 'malformed' })
    const noQuery = await edgeRequest({}, { url: 'https://eu.example.com/accounts/a1/deposits' })
    expect(await verifyRequest(asRequest(noQuery, undefined, 'https://eu.example.com/accounts/a1/deposits?admin=1'), at(T))).toMatchObject({ ok: false, reason: 'uncovered' })
  })
})

describe('signRequest → verifyRequest (property)', () => {
  const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/)
  const value = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/)
  const segment = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/)

  it('what the edge signs verifies; changing any covered header, or adding a Once-* header, does not', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(token.filter((n) => !['signature', 'signature-input', 'content-digest', 'via', 'forwarded', 'cdn-loop', 'x-real-ip', 'true-client-ip'].includes(n) && !n.startsWith('x-forwarded-')), value, { maxKeys: 6 }),
        fc.array(segment, { minLength: 1, maxLength: 4 }),
        fc.option(fc.stringMatching(/^[a-z]{1,5}=[a-z0-9]{1,5}$/), { nil: undefined }),
        fc.string({ maxLength: 64 }),
        fc.nat(),
        async (extra, path, query, body, pick) => {
          const url = `https://eu.example.com/${path.join('/')}${query ? `?${query}` : ''}`
          const headers = new Headers({ ...extra, 'once-request-id': 'r-1' })
          headers.set('content-digest', await contentDigest(encoder.encode(body)))
          const signed = signRequest(key, { method: 'POST', url, headers }, { nowSeconds: T })
          headers.set('signature-input', signed.signatureInput)
          headers.set('signature', signed.signature)
          expect(await verifyRequest(new Request(url, { method: 'POST', headers }), { secrets, nowSeconds: T })).toMatchObject({ ok: true })
          const names = [...headers.keys()].filter((n) => n !== 'signature' && n !== 'signature-input')
          const changed = new Headers(headers)
          const name = names[pick % names.length]!
          changed.set(name, `${headers.get(name)}x`)
          expect(await verifyRequest(new Request(url, { method: 'POST', headers: changed }), { secrets, nowSeconds: T })).toMatchObject({ ok: false })
          const added = new Headers(headers)
          added.set('once-noop', '?1')
          expect(await verifyRequest(new Request(url, { method: 'POST', headers: added }), { secrets, nowSeconds: T })).toMatchObject({ ok: false, reason: 'uncovered' })
        },
      ),
      { numRuns: 150 },
    )
  })
})

describe('Once-Principal', () => {
  it('round-trips a JWT principal and a scope as an sf-dictionary; non-ASCII as a Display String', () => {
    expect(principalHeader({ iss: 'https://auth.example.com', sub: 'user-17' })).toBe('iss="https://auth.example.com", sub="user-17"')
    expect(principalHeader({ sub: 'user-17' })).toBe('sub="user-17"')
    expect(principalHeader({ scope: 'tenant "42"' })).toBe('scope="tenant \\"42\\""')
    for (const p of [{ iss: 'https://auth.example.com', sub: 'user-17' }, { scope: 'tenant "42"' }, { iss: undefined, sub: 'jos\u00e9' }]) {
      expect(parsePrincipal(principalHeader(p))).toEqual(p)
    }
    expect(parsePrincipal(null)).toBeUndefined()
    expect(parsePrincipal('((')).toBeUndefined()
    expect(parsePrincipal('other=1')).toBeUndefined()
  })
})

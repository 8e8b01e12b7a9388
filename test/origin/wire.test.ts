import { describe, expect, it } from 'vitest'
import { ONCE_HEADERS, parseNoop, parseSequence, signedPath, signOnceRequest, verifyOnceSignature, type SignatureInput } from '../../src/shared/wire.js'

const secret = 'test-secret-0123456789'
const input: SignatureInput = { method: 'post', path: '/accounts/a1/deposits?x=1', requestId: 'r-1', domain: 'a1', sequence: 7, body: '{"amount":5}' }
const T = 1_700_000_000

async function hmacHex(key: string, text: string): Promise<string> {
  const k = await crypto.subtle.importKey('raw', new TextEncoder().encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', k, new TextEncoder().encode(text)))
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join('')
}

async function sha256Hex(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('')
}

describe('wire: header names (DESIGN §6)', () => {
  it('names every header of the contract', () => {
    expect(Object.values(ONCE_HEADERS).sort()).toEqual(
      [
        'Idempotency-Key',
        'Once-Attempt',
        'Once-Domain',
        'Once-Expected-Sequence',
        'Once-Noop',
        'Once-Origin',
        'Once-Request-Id',
        'Once-Sequence',
        'Once-Signature',
      ].sort(),
    )
  })
})

describe('signOnceRequest', () => {
  it('signs t, METHOD, path, request id, domain, sequence and the body digest, joined by \\n', async () => {
    const header = await signOnceRequest(secret, input, T)
    const expected = [String(T), 'POST', '/accounts/a1/deposits?x=1', 'r-1', 'a1', '7', await sha256Hex('{"amount":5}')].join('\n')
    expect(header).toBe(`t=${T},v1=${await hmacHex(secret, expected)}`)
  })

  it('uses empty strings for an absent domain, sequence and body', async () => {
    const header = await signOnceRequest(secret, { method: 'GET', path: '/a', requestId: '' }, T)
    const expected = [String(T), 'GET', '/a', '', '', '', await sha256Hex('')].join('\n')
    expect(header).toBe(`t=${T},v1=${await hmacHex(secret, expected)}`)
  })

  it('signs bytes, ArrayBuffers and strings of the same body alike', async () => {
    const bytes = new TextEncoder().encode('{"amount":5}')
    const buffer = new ArrayBuffer(bytes.byteLength)
    new Uint8Array(buffer).set(bytes)
    const a = await signOnceRequest(secret, { ...input, body: bytes }, T)
    const b = await signOnceRequest(secret, { ...input, body: buffer }, T)
    expect(a).toBe(await signOnceRequest(secret, input, T))
    expect(b).toBe(a)
  })

  it('stamps the current time by default', async () => {
    const header = await signOnceRequest(secret, input)
    const t = Number(/^t=(\d+),/.exec(header)?.[1])
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(5)
  })
})

describe('verifyOnceSignature', () => {
  it('accepts a good signature within the tolerance, either way', async () => {
    const header = await signOnceRequest(secret, input, T)
    expect(await verifyOnceSignature(secret, header, input, { nowSeconds: T })).toEqual({ ok: true })
    expect(await verifyOnceSignature(secret, header, input, { nowSeconds: T + 300 })).toEqual({ ok: true })
    expect(await verifyOnceSignature(secret, header, input, { nowSeconds: T - 300 })).toEqual({ ok: true })
  })

  it('is stale past the tolerance (5 minutes by default, configurable)', async () => {
    const header = await signOnceRequest(secret, input, T)
    expect(await verifyOnceSignature(secret, header, input, { nowSeconds: T + 301 })).toEqual({ ok: false, reason: 'stale' })
    expect(await verifyOnceSignature(secret, header, input, { nowSeconds: T - 301 })).toEqual({ ok: false, reason: 'stale' })
    expect(await verifyOnceSignature(secret, header, input, { nowSeconds: T + 30, toleranceSeconds: 10 })).toEqual({ ok: false, reason: 'stale' })
  })

  it('reports missing for an absent or blank header', async () => {
    for (const h of [null, undefined, '', '  ']) expect(await verifyOnceSignature(secret, h, input)).toEqual({ ok: false, reason: 'missing' })
  })

  it.each([
    'garbage',
    't=1',
    'v1=' + 'a'.repeat(64),
    `t=abc,v1=${'a'.repeat(64)}`,
    `t=-5,v1=${'a'.repeat(64)}`,
    `t=1,v1=${'a'.repeat(63)}`,
    `t=1,v1=${'g'.repeat(64)}`,
    `t=1,t=2,v1=${'a'.repeat(64)}`,
    `t=99999999999999999,v1=${'a'.repeat(64)}`,
    ',,,',
    '=',
  ])('reports malformed for %j', async (header) => {
    expect(await verifyOnceSignature(secret, header, input)).toEqual({ ok: false, reason: 'malformed' })
  })

  it('reports mismatch when any signed part or the secret differs', async () => {
    const header = await signOnceRequest(secret, input, T)
    const changes: Partial<SignatureInput>[] = [
      { method: 'PUT' },
      { path: '/accounts/a2/deposits?x=1' },
      { path: '/accounts/a1/deposits?x=2' },
      { requestId: 'r-2' },
      { domain: 'a2' },
      { domain: undefined },
      { sequence: 8 },
      { sequence: undefined },
      { body: '{"amount":6}' },
    ]
    for (const change of changes) {
      expect(await verifyOnceSignature(secret, header, { ...input, ...change }, { nowSeconds: T })).toEqual({ ok: false, reason: 'mismatch' })
    }
    expect(await verifyOnceSignature('other-secret', header, input, { nowSeconds: T })).toEqual({ ok: false, reason: 'mismatch' })
  })

  it('compares the method case-insensitively and the sequence as sent', async () => {
    const header = await signOnceRequest(secret, input, T)
    expect(await verifyOnceSignature(secret, header, { ...input, method: 'POST', sequence: '7' }, { nowSeconds: T })).toEqual({ ok: true })
  })

  it('accepts one matching v1 among several, and ignores unknown schemes', async () => {
    const header = await signOnceRequest(secret, input, T)
    const good = header.split('v1=')[1]
    const mixed = `t=${T}, v0=whatever, v1=${'0'.repeat(64)}, v1=${good}`
    expect(await verifyOnceSignature(secret, mixed, input, { nowSeconds: T })).toEqual({ ok: true })
  })
})

describe('signedPath', () => {
  it('keeps path and query, drops origin and fragment', () => {
    expect(signedPath('https://eu.example.com/accounts/a1?x=1#frag')).toBe('/accounts/a1?x=1')
    expect(signedPath(new URL('http://h/'))).toBe('/')
  })
})

describe('parseSequence', () => {
  it.each([
    ['1', 1],
    ['42', 42],
    [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
  ])('reads %j', (value, n) => {
    expect(parseSequence(value)).toBe(n)
  })

  it.each(['', '0', '-1', '+1', '007', '1.0', '1e3', ' 1', '1 ', 'abc', '0x10', '9007199254740992', '99999999999999999', '1,2', '١'])(
    'refuses %j',
    (value) => {
      expect(parseSequence(value)).toBeUndefined()
    },
  )
})

describe('parseNoop', () => {
  it('reads RFC 8941 booleans only', () => {
    expect(parseNoop('?1')).toBe(true)
    expect(parseNoop('?0')).toBe(false)
    for (const v of ['1', 'true', '?', '?2', '?1;a=1', '']) expect(parseNoop(v)).toBeUndefined()
  })
})

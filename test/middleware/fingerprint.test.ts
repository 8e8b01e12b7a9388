import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalMultipart, canonicalUrlEncoded } from '../../src/middleware/canonical-form.js'
import { canonicalJson, exactDecimal } from '../../src/middleware/canonical-json.js'
import { fingerprint, type FingerprintOptions } from '../../src/middleware/fingerprint.js'

const encoder = new TextEncoder()
const print = (body: string | Uint8Array, type: string, options: FingerprintOptions = {}, headers: Record<string, string> = {}) =>
  fingerprint({ method: 'POST', url: 'https://x/pay', headers: new Headers({ 'content-type': type, ...headers }), body: typeof body === 'string' ? encoder.encode(body) : body }, options)

// ---- JSON: a model of JSON values with exact numbers, rendered many ways ----

/** A JSON value whose numbers are exact decimals: sign, significand digits, exponent. */
type Model = null | boolean | string | { num: [negative: boolean, digits: string, exp: number] } | Model[] | { obj: [string, Model][] }

const digits = fc.oneof(
  fc.stringMatching(/^[0-9]{1,4}$/),
  fc.stringMatching(/^[1-9][0-9]{15,24}$/), // around and past a double's 15–17 significant digits
)
const num = fc.record({ num: fc.tuple(fc.boolean(), digits, fc.integer({ min: -25, max: 25 })) })
const name = fc.oneof(fc.constantFrom('a', 'b', 'amount', 'é', '\u{1f600}', '\ud800'), fc.string({ maxLength: 3, unit: 'binary' }))
const model: fc.Arbitrary<Model> = fc.letrec<{ v: Model }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    name,
    num,
    fc.array(tie('v'), { maxLength: 3 }),
    fc.uniqueArray(fc.tuple(name, tie('v')), { maxLength: 3, selector: ([k]) => k }).map((obj) => ({ obj })),
  ),
})).v

/** The value a number stands for, as an exact rational n × 10^e (BigInt), and whether it is negative zero. */
function exact([negative, ds, exp]: [boolean, string, number]): { n: bigint; e: number; negZero: boolean } {
  const n = BigInt(ds) * (negative ? -1n : 1n)
  return { n, e: exp, negZero: negative && BigInt(ds) === 0n }
}
function sameNumber(a: [boolean, string, number], b: [boolean, string, number]): boolean {
  const x = exact(a)
  const y = exact(b)
  if (x.negZero !== y.negZero) return false
  const e = Math.min(x.e, y.e)
  return x.n * 10n ** BigInt(x.e - e) === y.n * 10n ** BigInt(y.e - e)
}
/** Same JSON value with exact numbers: the oracle, written without the code under test. */
function same(a: Model, b: Model): boolean {
  if (a === null || typeof a !== 'object' || b === null || typeof b !== 'object') return a === b
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]!))
  if ('num' in a || 'num' in b) return 'num' in a && 'num' in b && sameNumber(a.num, b.num)
  if (a.obj.length !== b.obj.length) return false
  const other = new Map(b.obj)
  return a.obj.every(([k, v]) => other.has(k) && same(v, other.get(k)!))
}

/** One of many texts for a model: random whitespace, member order, number spelling and string escapes. */
const render = (m: Model): fc.Arbitrary<string> => {
  const ws = fc.constantFrom('', ' ', '\n', '\t ', '\r\n')
  if (m === null || typeof m === 'boolean') return ws.map((w) => `${w}${JSON.stringify(m)}${w}`)
  if (typeof m === 'string') return fc.array(fc.boolean(), { minLength: m.length, maxLength: m.length }).map((esc) => quote(m, esc))
  if (Array.isArray(m)) return fc.tuple(fc.tuple(...m.map(render)), ws).map(([items, w]) => `[${w}${items.join(`${w},`)}]`)
  if ('num' in m) return spell(m.num)
  return fc
    .tuple(fc.shuffledSubarray(m.obj, { minLength: m.obj.length, maxLength: m.obj.length }), ws)
    .chain(([members, w]) =>
      fc.tuple(...members.map(([k, v]) => fc.tuple(render(k), render(v)))).map((rendered) => `{${w}${rendered.map(([k, v]) => `${k}${w}:${v}`).join(',')}${w}}`),
    )
}
function quote(s: string, escape: boolean[]): string {
  let out = '"'
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!
    const code = s.charCodeAt(i)
    if (escape[i] || ch === '"' || ch === '\\' || code < 0x20 || (code >= 0xd800 && code <= 0xdfff)) out += `\\u${code.toString(16).padStart(4, '0')}`
    else out += ch
  }
  return out + '"'
}
/** A JSON spelling of n = ±digits × 10^exp: trailing zeros added, the point moved, e or E, an explicit + or not. */
function spell([negative, ds, exp]: [boolean, string, number]): fc.Arbitrary<string> {
  return fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 }), fc.constantFrom('e', 'E', 'e+', 'E+', '')).map(([zeros, point, style]) => {
    const sig = ds + '0'.repeat(zeros)
    let power = exp - zeros + point
    let whole = point === 0 ? sig : sig.length > point ? sig.slice(0, -point) : '0'
    const fraction = point === 0 ? '' : sig.length > point ? sig.slice(-point) : '0'.repeat(point - sig.length) + sig
    whole = whole.replace(/^0+(?=[0-9])/, '')
    const mantissa = fraction === '' ? whole : `${whole}.${fraction}`
    if (power === 0 && style === '') return `${negative ? '-' : ''}${mantissa}`
    const letter = style === '' ? 'e' : style[0]
    const plus = style.endsWith('+') && power >= 0 ? '+' : ''
    power = power + 0
    return `${negative ? '-' : ''}${mantissa}${letter}${plus}${power}`
  })
}
/** The value of a spelled number, to check the spelling itself against the model. */
const valueOf = (text: string): [boolean, string, number] => {
  const negative = text.startsWith('-')
  const [mant = '', ex = '0'] = text.replace(/^-/, '').split(/[eE]/)
  const [whole = '', frac = ''] = mant.split('.')
  return [negative, whole + frac, Number(ex) - frac.length]
}

describe('canonicalJson: equal exactly when the JSON values are equal, numbers exact (issue 16.2)', () => {
  it('spells numbers validly, as the values the model says (the generator checks itself)', () => {
    fc.assert(
      fc.property(num.chain((n) => fc.tuple(fc.constant(n), spell(n.num))), ([n, text]) => {
        expect(() => JSON.parse(text)).not.toThrow()
        expect(sameNumber(valueOf(text), n.num)).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })

  it('any two texts of one value normalise alike (member order, whitespace, escapes, number spelling)', () => {
    fc.assert(
      fc.property(model.chain((m) => fc.tuple(render(m), render(m))), ([a, b]) => {
        expect(canonicalJson(a)).toBeDefined()
        expect(canonicalJson(a)).toBe(canonicalJson(b))
      }),
      { numRuns: 1000 },
    )
  })

  it('texts of two values normalise alike only when the values are the same', () => {
    // Small values, so that different ones collide often enough to be tested.
    fc.assert(
      fc.property(model.chain((a) => fc.tuple(fc.constant(a), fc.oneof(fc.constant(a), model))).chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), render(a), render(b))), ([a, b, ta, tb]) => {
        expect(canonicalJson(ta) === canonicalJson(tb)).toBe(same(a, b))
        // And never merges what JSON.parse itself tells apart.
        if (canonicalJson(ta) === canonicalJson(tb)) expect(JSON.stringify(sortKeys(JSON.parse(ta)))).toBe(JSON.stringify(sortKeys(JSON.parse(tb))))
      }),
      { numRuns: 3000 },
    )
  })

  it('numbers next to each other (the last digit ±1) or spelled with one more zero: apart exactly when their values differ', () => {
    const neighbour = num.chain((n) =>
      fc.tuple(fc.constant(n.num), fc.oneof(fc.constant<[boolean, string, number]>([n.num[0], `${n.num[1]}0`, n.num[2] - 1]), fc.constantFrom(-1n, 1n).map((d): [boolean, string, number] => [n.num[0], (BigInt(n.num[1]) + d < 0n ? 1n : BigInt(n.num[1]) + d).toString(), n.num[2]]))),
    )
    fc.assert(
      fc.property(neighbour.chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), spell(a), spell(b))), ([a, b, ta, tb]) => {
        expect(canonicalJson(`[${ta}]`) === canonicalJson(`[${tb}]`)).toBe(sameNumber(a, b))
      }),
      { numRuns: 3000 },
    )
  })

  it('is valid JSON with the same value as far as doubles can tell', () => {
    fc.assert(
      fc.property(model.chain(render), (text) => {
        const canonical = canonicalJson(text)!
        expect(JSON.stringify(JSON.parse(canonical))).toBe(JSON.stringify(sortKeys(JSON.parse(text))))
      }),
      { numRuns: 500 },
    )
  })

  it.each([
    ['a 2^53 + 1 amount', '{"amount":9007199254740993}', '{"amount":9007199254740992}'],
    ['20-digit account numbers', '{"account":12345678901234567890}', '{"account":12345678901234567891}'],
    ['decimals past a double', '{"rate":0.10000000000000000001}', '{"rate":0.1}'],
    ['tiny exponents', '[1e-400]', '[0]'],
    ['negative zero', '[-0]', '[0]'],
  ])('keeps %s apart', (_name, a, b) => {
    expect(canonicalJson(a)).not.toBe(canonicalJson(b))
  })

  it.each([
    ['member order and whitespace', '{"a":1,"b":[true,null]}', ' { "b" : [ true , null ] , "a" : 1 } '],
    ['number spellings', '[100, 0.5, -1.25]', '[1e2, 5E-1, -125e-2]'],
    ['string escapes', '["A/é"]', '["\\u0041\\/\\u00e9"]'],
  ])('merges %s', (_name, a, b) => {
    expect(canonicalJson(a)).toBe(canonicalJson(b))
  })

  it('leaves to bytes what it cannot vouch for: not JSON, repeated members, deep nesting', () => {
    for (const text of ['{"a":1,}', '{"a":1,"a":2}', "{'a':1}", '01', '[1]x', '"\t"', '[NaN]', '['.repeat(600) + ']'.repeat(600)]) {
      expect(canonicalJson(text), text.slice(0, 20)).toBeUndefined()
    }
    expect(exactDecimal('1.250E+3')).toBe('125e1')
    expect(exactDecimal('-0.0e5')).toBe('-0')
  })
})

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]))
  return v
}

describe('the fingerprint with normalizeJson (issue 16.2)', () => {
  it('tells 9007199254740993 from 9007199254740992, and ignores member order', async () => {
    const options = { normalizeJson: true }
    const json = 'application/json'
    expect(await print('{"amount":9007199254740993}', json, options)).not.toBe(await print('{"amount":9007199254740992}', json, options))
    expect(await print('{"a":1,"b":2}', json, options)).toBe(await print('{ "b": 2, "a": 1.0 }', json, options))
    expect(await print('{"a":1,"b":2}', 'application/vnd.api+json', options)).toBe(await print('{"b":2,"a":1}', 'application/vnd.api+json', options))
  })

  it('normalises JSON media types only: text/plain bodies stay bytes', async () => {
    expect(await print('{"a":1,"b":2}', 'text/plain', { normalizeJson: true })).not.toBe(await print('{"b":2,"a":1}', 'text/plain', { normalizeJson: true }))
  })

  it('keeps a normalised fingerprint apart from any fingerprint of bytes', async () => {
    const canonical = canonicalJson('{"a":1}')!
    expect(await print('{"a":1}', 'application/json', { normalizeJson: true })).not.toBe(await print(canonical, 'text/plain', { normalizeJson: true }))
  })
})

// ---- Forms ----

interface Part {
  name: string
  filename?: string | undefined
  type?: string | undefined
  bytes: Uint8Array
}
const partName = fc.oneof(fc.constantFrom('a', 'file', 'note'), fc.stringMatching(/^[a-z0-9_]{1,6}$/))
const part: fc.Arbitrary<Part> = fc.record(
  {
    name: partName,
    filename: fc.option(fc.constantFrom('a.txt', 'b.bin', 'photo.jpg'), { nil: undefined }),
    type: fc.option(fc.constantFrom('text/plain', 'application/octet-stream', 'image/png'), { nil: undefined }),
    // Bytes that look like framing: CRLF, dashes, and boundary-like runs.
    bytes: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constantFrom('\r\n--', '--x--', '\r\n\r\n', 'plain', '').map((s) => encoder.encode(s))),
  },
  { requiredKeys: ['name', 'bytes'] },
)
const boundary = fc.stringMatching(/^[A-Za-z0-9'()+_,./:=?-]{1,40}$/).map((b) => `----${b}`)

/** A body as browsers and fetch write it. */
function multipart(parts: Part[], b: string): Uint8Array {
  const pieces: Uint8Array[] = []
  for (const p of parts) {
    let head = `--${b}\r\nContent-Disposition: form-data; name="${p.name}"`
    if (p.filename !== undefined) head += `; filename="${p.filename}"`
    head += '\r\n'
    if (p.type !== undefined) head += `Content-Type: ${p.type}\r\n`
    pieces.push(encoder.encode(head + '\r\n'), p.bytes, encoder.encode('\r\n'))
  }
  pieces.push(encoder.encode(`--${b}--\r\n`))
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of pieces) out.set(p, (at += p.byteLength) - p.byteLength)
  return out
}
const contains = (hay: Uint8Array, needle: string) => Buffer.from(hay).includes(Buffer.from(needle))
const samePart = (a: Part, b: Part) => a.name === b.name && a.filename === b.filename && a.type === b.type && Buffer.from(a.bytes).equals(Buffer.from(b.bytes))

describe('multipart/form-data: the boundary is ignored, nothing else (issue 16.3)', () => {
  it('one form sent with two boundaries normalises alike; two forms only when they are the same', () => {
    fc.assert(
      fc.property(fc.array(part, { maxLength: 4 }), fc.array(part, { maxLength: 4 }), boundary, boundary, fc.boolean(), (p1, p2, b1, b2, sameForm) => {
        const q = sameForm ? p1 : p2
        const body1 = multipart(p1, b1)
        const body2 = multipart(q, b2)
        // A client picks a boundary its body does not hold (RFC 2046 §5.1.1).
        fc.pre(!p1.some((p) => contains(p.bytes, `--${b1}`)) && !q.some((p) => contains(p.bytes, `--${b2}`)))
        const c1 = canonicalMultipart(body1, `multipart/form-data; boundary=${b1}`)
        const c2 = canonicalMultipart(body2, `multipart/form-data; boundary="${b2}"`)
        expect(c1).toBeDefined()
        const equal = Buffer.from(c1!).equals(Buffer.from(c2!))
        expect(equal).toBe(p1.length === q.length && p1.every((p, i) => samePart(p, q[i]!)))
      }),
      { numRuns: 1500 },
    )
  })

  it('a boundary string inside a part where it does not delimit: compared as bytes', () => {
    const body = encoder.encode('--xx\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xxtail\r\n--xx--\r\n')
    expect(canonicalMultipart(body, 'multipart/form-data; boundary=xx')).toBeUndefined()
    expect(canonicalMultipart(encoder.encode('no delimiter at all'), 'multipart/form-data; boundary=xx')).toBeUndefined()
  })

  it('the same FormData sent twice (a new boundary each time) has one fingerprint, also with content-type among the headers', async () => {
    const form = () => {
      const f = new FormData()
      f.append('amount', '100')
      f.append('receipt', new File([new Uint8Array([0, 1, 2, 255])], 'r.bin', { type: 'application/octet-stream' }))
      return f
    }
    const [a, b] = [new Request('https://x', { method: 'POST', body: form() }), new Request('https://x', { method: 'POST', body: form() })]
    const typeA = a.headers.get('content-type')!
    const typeB = b.headers.get('content-type')!
    const [bodyA, bodyB] = [new Uint8Array(await a.arrayBuffer()), new Uint8Array(await b.arrayBuffer())]
    expect(typeA).not.toBe(typeB) // workerd picked two boundaries
    const options = { headers: ['content-type'] }
    expect(await print(bodyA, typeA, options)).toBe(await print(bodyB, typeB, options))
    const other = new FormData()
    other.append('amount', '101')
    const c = new Request('https://x', { method: 'POST', body: other })
    expect(await print(new Uint8Array(await c.arrayBuffer()), c.headers.get('content-type')!)).not.toBe(await print(bodyA, typeA))
  })
})

describe('application/x-www-form-urlencoded with normalizeForms (issue 16.3)', () => {
  const pairs = fc.array(fc.tuple(fc.string({ maxLength: 4, unit: 'binary' }), fc.string({ maxLength: 4, unit: 'binary' })), { maxLength: 4 })
  /** One of many encodings of a string: every byte percent-encoded or not (where legal), either hex case, space as + or %20. */
  const encode = (s: string): fc.Arbitrary<string> => {
    const bytes = [...encoder.encode(s)]
    return fc.array(fc.tuple(fc.boolean(), fc.boolean()), { minLength: bytes.length, maxLength: bytes.length }).map((choices) =>
      bytes
        .map((byte, i) => {
          const [escape, upper] = choices[i]!
          const ch = String.fromCharCode(byte)
          const hex = `%${byte.toString(16).padStart(2, '0')}`
          const pct = upper ? hex.toUpperCase() : hex
          if (byte === 0x20) return escape ? pct : '+'
          if (/[A-Za-z0-9*\-._]/.test(ch) && !escape) return ch
          return pct
        })
        .join(''),
    )
  }
  const body = (list: [string, string][]) => fc.tuple(...list.map(([k, v]) => fc.tuple(encode(k), encode(v)))).map((enc) => enc.map(([k, v]) => `${k}=${v}`).join('&'))

  it('normalises two encodings of one list alike, and two lists alike only when they are the same (URLSearchParams agrees)', () => {
    fc.assert(
      fc.property(pairs, pairs, fc.boolean(), (l1, l2, sameList) => {
        const q = sameList ? l1 : l2
        fc.assert(
          fc.property(body(l1), body(q), (t1, t2) => {
            const equal = Buffer.from(canonicalUrlEncoded(encoder.encode(t1))).equals(Buffer.from(canonicalUrlEncoded(encoder.encode(t2))))
            const sameBytes = l1.length === q.length && l1.every(([k, v], i) => Buffer.from(encoder.encode(k)).equals(Buffer.from(encoder.encode(q[i]![0]))) && Buffer.from(encoder.encode(v)).equals(Buffer.from(encoder.encode(q[i]![1]))))
            expect(equal).toBe(sameBytes)
            if (equal) expect([...new URLSearchParams(t1)]).toEqual([...new URLSearchParams(t2)])
          }),
          { numRuns: 5 },
        )
      }),
      { numRuns: 400 },
    )
  })

  it('keeps different bytes apart even where UTF-8 decoding would merge them', () => {
    expect(Buffer.from(canonicalUrlEncoded(encoder.encode('a=%FF'))).equals(Buffer.from(canonicalUrlEncoded(encoder.encode('a=%FE'))))).toBe(false)
  })

  it('is opt-in: without normalizeForms the bytes are compared', async () => {
    const type = 'application/x-www-form-urlencoded'
    expect(await print('a=x+y', type)).not.toBe(await print('a=x%20y', type))
    expect(await print('a=x+y', type, { normalizeForms: true })).toBe(await print('a=x%20y', type, { normalizeForms: true }))
    expect(await print('a=1&b=2', type, { normalizeForms: true })).not.toBe(await print('b=2&a=1', type, { normalizeForms: true }))
  })
})

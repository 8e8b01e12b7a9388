/**
 * Deepest nesting normalised; deeper texts are compared as bytes (never
 * merged), which also keeps the recursion off the stack's edge.
 */
const MAX_DEPTH = 512

/** Thrown inside the parser when the text is not one the canonical form may stand for. */
class NotCanonical extends Error {}

/**
 * A JSON text's canonical form for fingerprinting: two texts have the same
 * form exactly when they are the same JSON value, numbers compared by their
 * exact decimal value. Whitespace and the order of object members are
 * ignored, strings are compared by the characters they denote (`"\u0041"`
 * is `"A"`), and `1`, `1.0`, `10e-1` and `1E0` are one number, while
 * `9007199254740993` and `9007199254740992`, or two 20-digit account
 * numbers, or decimals past a double's precision, stay apart (RFC 8785
 * alone compares numbers as doubles and would merge them). `-0` stays apart
 * from `0`, as `JSON.parse` tells them apart.
 *
 * Texts this cannot vouch for give undefined, and are then compared as
 * bytes: not JSON (RFC 8259), an object with a repeated member name (parsers
 * disagree on which one counts), or nesting deeper than 512.
 *
 * @param text - the decoded body
 * @returns the canonical form (itself valid JSON), or undefined
 * @example
 * canonicalJson('{ "b": 1.50, "a": [true] }') // '{"a":[true],"b":15e-1}'
 * canonicalJson('{"n":9007199254740993}') === canonicalJson('{"n":9007199254740992}') // false
 */
export function canonicalJson(text: string): string | undefined {
  const parser = new Parser(text)
  try {
    parser.space()
    const out = parser.value(0)
    parser.space()
    return parser.at === text.length ? out : undefined
  } catch (err) {
    if (err instanceof NotCanonical) return undefined
    throw err
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y
// A string token: no raw control characters, only JSON's escapes.
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y

class Parser {
  at = 0
  constructor(private readonly text: string) {}

  space(): void {
    const t = this.text
    while (this.at < t.length) {
      const ch = t.charCodeAt(this.at)
      if (ch !== 0x20 && ch !== 0x09 && ch !== 0x0a && ch !== 0x0d) return
      this.at++
    }
  }

  value(depth: number): string {
    if (depth > MAX_DEPTH) throw new NotCanonical()
    const ch = this.text[this.at]
    if (ch === '{') return this.object(depth)
    if (ch === '[') return this.array(depth)
    if (ch === '"') return JSON.stringify(this.string())
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) return this.number()
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, this.at)) {
        this.at += literal.length
        return literal
      }
    }
    throw new NotCanonical()
  }

  object(depth: number): string {
    const members = new Map<string, string>()
    this.list('{', '}', () => {
      if (this.text[this.at] !== '"') throw new NotCanonical()
      const name = this.string()
      if (members.has(name)) throw new NotCanonical()
      this.space()
      this.expect(':')
      this.space()
      members.set(name, this.value(depth + 1))
    })
    // Sorted by UTF-16 code units, as RFC 8785 does; any fixed order would do.
    const names = [...members.keys()].sort()
    return `{${names.map((n) => `${JSON.stringify(n)}:${members.get(n)}`).join(',')}}`
  }

  array(depth: number): string {
    const items: string[] = []
    this.list('[', ']', () => items.push(this.value(depth + 1)))
    return `[${items.join(',')}]`
  }

  /** Reads `open`, then `item`s separated by commas (white space around each), then `close`; none at all is fine. */
  list(open: '{' | '[', close: '}' | ']', item: () => void): void {
    this.expect(open)
    this.space()
    if (this.text[this.at] === close) {
      this.at++
      return
    }
    for (;;) {
      this.space()
      item()
      this.space()
      if (this.text[this.at] !== ',') break
      this.at++
    }
    this.expect(close)
  }

  /** The string token at the cursor, decoded (JSON.parse of the one token: the grammar is already checked). */
  string(): string {
    STRING.lastIndex = this.at
    const match = STRING.exec(this.text)
    if (!match) throw new NotCanonical()
    this.at += match[0].length
    return JSON.parse(match[0]) as string
  }

  number(): string {
    NUMBER.lastIndex = this.at
    const match = NUMBER.exec(this.text)
    if (!match) throw new NotCanonical()
    this.at += match[0].length
    return exactDecimal(match[0])
  }

  expect(ch: string): void {
    if (this.text[this.at] !== ch) throw new NotCanonical()
    this.at++
  }
}

/**
 * A JSON number's exact decimal value, written one way: sign, the
 * significant digits without leading or trailing zeros, and the exponent
 * (`100` → `1e2`, `0.50` → `5e-1`, `0` → `0`, `-0.0` → `-0`). Valid JSON.
 *
 * @example
 * exactDecimal('1.250E+3') // '125e1'
 */
export function exactDecimal(token: string): string {
  const negative = token.startsWith('-')
  const unsigned = negative ? token.slice(1) : token
  const e = unsigned.search(/[eE]/)
  const mantissa = e === -1 ? unsigned : unsigned.slice(0, e)
  const exponent = e === -1 ? 0n : BigInt(unsigned.slice(e + 1))
  const dot = mantissa.indexOf('.')
  const whole = dot === -1 ? mantissa : mantissa.slice(0, dot)
  const fraction = dot === -1 ? '' : mantissa.slice(dot + 1)
  let digits = (whole + fraction).replace(/^0+/, '')
  const sign = negative ? '-' : ''
  if (digits === '') return `${sign}0`
  let end = digits.length
  while (digits.charCodeAt(end - 1) === 0x30) end-- // trailing zeros in linear time (`/0+$/` is quadratic on Node's V8)
  const trimmed = digits.slice(0, end)
  const scale = exponent - BigInt(fraction.length) + BigInt(digits.length - trimmed.length)
  digits = trimmed
  return `${sign}${digits}e${scale}`
}

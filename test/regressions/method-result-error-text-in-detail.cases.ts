/**
 * Review s32 (object) H3: docs/errors.md says the text of an error an OnceObject method threw never goes into a
 * problem's detail (it may hold a connection string). Reading a method's result runs user code too: a `toJSON` or a
 * getter while it is turned into JSON, a `then` getter, a proxy's traps, an OnceReply's getters, a header value's
 * toString. Before the fix methodReply put `String(err)` into the handler-failed detail ("… returned a value that
 * is not JSON: Error: <the user's message>"); now every such throw is logged, and the detail says where it went.
 */
import { describe, expect, it } from 'vitest'
import { OnceReply } from '../../src/index.js'
import { addMethods, edge, newAccount, newKey } from '../once-object/installed.js'

const SECRET = 'postgres://ledger:s3cr3t-pa55@db.internal/ledger'
const boom = (): never => {
  throw new Error(`cannot reach ${SECRET}`)
}

describe("a method call's result that throws while it is read", () => {
  it.each([
    ['a toJSON that throws', () => ({ toJSON: boom })],
    ['a getter that throws', () => ({ get balance(): number { return boom() } })],
    ['a `then` getter that throws', () => ({ get then(): unknown { return boom() } })],
    ['a proxy whose prototype trap throws', () => new Proxy({}, { getPrototypeOf: boom })],
    ['an OnceReply whose body getter throws', () => Object.defineProperty(new OnceReply(201, {}), 'body', { get: boom })],
    ['an OnceReply whose status getter throws', () => Object.defineProperty(new OnceReply(201, {}), 'status', { get: boom })],
    ['an OnceReply whose headers getter throws', () => Object.defineProperty(new OnceReply(201, {}), 'headers', { get: boom })],
    ['an OnceReply with a header whose value throws', () => new OnceReply(201, {}, { 'x-a': { toString: boom } as unknown as string })],
    ['an OnceReply with a header that holds a secret Headers refuses', () => new OnceReply(201, {}, { 'x-a': `bad\n${SECRET}` })],
    ['an OnceReply whose status is an object that names a secret', () => new OnceReply({ toString: () => SECRET } as unknown as number, {})],
  ] as const)('%s: its error text stays in the log, out of the answer; nothing committed', async (_name, result) => {
    const a = newAccount()
    await addMethods(a, () => ({ statement: result }))
    const { send } = edge({ replayCache: false, call: () => ({ method: 'statement', args: [], status: 200 }) })
    const res = await send(a, 'statement', newKey())
    const text = await res.text()
    expect(res.status, text).toBe(500)
    expect(JSON.parse(text)).toMatchObject({ type: 'https://hono-once.dev/problems/handler-failed', detail: expect.stringMatching(/Nothing was applied\.$/) })
    expect(text).not.toContain('s3cr3t-pa55')
  })
})

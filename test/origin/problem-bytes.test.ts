// Every problem the receiver answers, byte for byte (status, headers, body): the edge reads these answers (the type,
// `Once-Applied`, `Once-Expected-Sequence`) and compares replicas' answers by their bytes, so building them through
// another function must not change one byte. The snapshot was written by the receiver's own builder (39d28d8).
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, type MemoryTx, type ReceiverOptions, type ReceiverStore, type ReceiverVariables } from '../../src/origin/index.js'
import { signedHeaders } from './sign.js'

const SECRET = 'problem-bytes-secret-0123456789'
const KEY = { keyid: 'ONCE_SIGNING_SECRET', secret: SECRET }
const JSON_TYPE = { 'content-type': 'application/json' }

/** An origin whose handler throws on `x-throw` and waits for `gate` on `x-hold`. */
function origin(options: Partial<ReceiverOptions<MemoryTx>> = {}, gate?: Promise<void>) {
  const store = options.store ?? memoryStore()
  const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
  app.use('*', onceReceiver({ store, gapWaitMs: 0, ...options }))
  app.post('/accounts/:id/deposits', async (c) => {
    if (c.req.header('x-hold')) await gate
    if (c.req.header('x-throw')) throw new Error('ledger exploded')
    return c.json({ ok: true }, 201)
  })
  const post = (headers: Record<string, string>, body = '{"amount":1}') => app.request('/accounts/a1/deposits', { method: 'POST', headers, body })
  return { store, post }
}

/** What goes over the wire: status, every header (sorted by name, as Headers iterate), the body's bytes. */
async function bytesOf(res: Response): Promise<string> {
  const headers = [...res.headers].map(([name, value]) => `${name}: ${value}`).join('\n')
  return `${res.status}\n${headers}\n\n${await res.text()}`
}

const id = (requestId: string, sequence?: number): Record<string, string> =>
  sequence === undefined ? { [ONCE_HEADERS.requestId]: requestId } : { [ONCE_HEADERS.requestId]: requestId, [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: String(sequence) }

describe("the receiver's problem answers", () => {
  it('stay the same bytes, for every kind', async () => {
    const answers: Record<string, string> = {}

    const signed = origin({ secrets: { ONCE_SIGNING_SECRET: SECRET } })
    answers['signature-invalid'] = await bytesOf(await signed.post(id('r-sig')))
    const url = 'http://localhost/accounts/a1/deposits'
    answers['request-id-missing'] = await bytesOf(await signed.post(await signedHeaders(KEY, url, { headers: JSON_TYPE, body: '{"amount":1}' })))
    answers['bad-request (digest)'] = await bytesOf(await signed.post(await signedHeaders(KEY, url, { headers: { ...JSON_TYPE, ...id('r-dig') }, body: '{"amount":1}' }, { bodyForDigest: '{}' })))

    const plain = origin({ maxBodyBytes: 16 })
    answers['bad-request (header)'] = await bytesOf(await plain.post({ ...id('r-bad'), [ONCE_HEADERS.sequence]: 'x', [ONCE_HEADERS.domain]: 'd' }))
    answers['body-too-large'] = await bytesOf(await plain.post(id('r-big'), '{"amount":1000000000000}'))
    answers['handler-failed'] = await bytesOf(await plain.post({ ...id('r-throw'), 'x-throw': '1' }))
    answers['sequence-gap'] = await bytesOf(await plain.post(id('r-gap', 2)))
    expect((await plain.post(id('r-1', 1))).status).toBe(201)
    answers['sequence-conflict'] = await bytesOf(await plain.post(id('r-other', 1)))
    await plain.store.prune(Date.now() + 1)
    answers['sequence-pruned'] = await bytesOf(await plain.post(id('r-1', 1)))

    let open!: () => void
    const held = origin({ waitMs: 1 }, new Promise<void>((resolve) => (open = resolve)))
    const first = held.post({ ...id('r-held'), 'x-hold': '1' })
    answers['in-flight'] = await bytesOf(await held.post(id('r-held')))
    open()
    expect((await first).status).toBe(201)

    const failing: ReceiverStore<MemoryTx> = { ...memoryStore(), apply: () => Promise.reject(new Error('disk full')) }
    answers['store-unavailable'] = await bytesOf(await origin({ store: failing }).post(id('r-store')))

    expect(answers).toMatchSnapshot()
  })
})

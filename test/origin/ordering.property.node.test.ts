import fc from 'fast-check'
import { Hono } from 'hono'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOrigin, type RunningOrigin } from '../../examples/origin/server.js'
import { ONCE_HEADERS, onceReceiver, sqliteStore, type ReceiverVariables } from '../../src/origin/index.js'

/** One delivery the network makes of request `seq`: lost on the way, answer lost on the way back, or fine. */
interface Delivery {
  seq: number
  lostRequest: boolean
  lostAnswer: boolean
}

type Send = (seq: number) => Promise<Response>

/**
 * The edge's side of DESIGN §6, reduced to what ordering needs: deliver
 * request `seq`; on `409 Once-Expected-Sequence: m`, feed m … seq-1 in order,
 * then the request again; on an in-flight 409, try again shortly. Returns
 * the answer body when one came back.
 */
async function deliver(send: Send, seq: number, answers: Map<number, string[]>, depth = 0): Promise<void> {
  if (depth > 50) throw new Error(`no progress delivering ${seq}`)
  const res = await send(seq)
  const expected = res.headers.get(ONCE_HEADERS.expectedSequence)
  if (res.status === 409 && expected !== null) {
    const m = Number(expected)
    expect(m).toBeLessThan(seq)
    for (let k = m; k < seq; k++) await deliver(send, k, answers, depth + 1)
    return deliver(send, seq, answers, depth + 1)
  }
  if (res.status === 409) {
    await new Promise((r) => setTimeout(r, 5))
    return deliver(send, seq, answers, depth + 1)
  }
  expect([201, 204]).toContain(res.status)
  answers.set(seq, [...(answers.get(seq) ?? []), await res.text()])
}

/** Runs a schedule (batches of concurrent deliveries), then the edge's catch-up: every request until answered. */
async function run(send: Send, n: number, batches: Delivery[][]): Promise<Map<number, string[]>> {
  const answers = new Map<number, string[]>()
  for (const batch of batches) {
    await Promise.all(
      batch.map(async (d) => {
        if (d.lostRequest) return
        if (!d.lostAnswer) return deliver(send, d.seq, answers)
        await send(d.seq) // applied or not; the edge never hears
      }),
    )
  }
  // The edge resends what it has no answer for, in order (its log).
  for (let seq = 1; seq <= n; seq++) if (!answers.has(seq)) await deliver(send, seq, answers)
  return answers
}

const schedule = (n: number) =>
  fc.array(
    fc.array(fc.record({ seq: fc.integer({ min: 1, max: n }), lostRequest: fc.boolean(), lostAnswer: fc.boolean() }), { minLength: 1, maxLength: 4 }),
    { maxLength: 3 * n },
  )
const scenario = fc.integer({ min: 1, max: 8 }).chain((n) => fc.tuple(fc.constant(n), schedule(n)))

describe('ordering property: any arrival order, duplicates and losses give a gapless, in-order, exactly-once history', () => {
  it('in process, sqliteStore, with some slots abandoned by the edge (Once-Noop)', async () => {
    const withNoops = scenario.chain(([n, batches]) => fc.tuple(fc.constant(n), fc.constant(batches), fc.subarray(Array.from({ length: n }, (_, i) => i + 1))))
    await fc.assert(
      fc.asyncProperty(withNoops, async ([n, batches, noops]) => {
        const db = new DatabaseSync(':memory:')
        db.exec('CREATE TABLE history (seq INTEGER NOT NULL, request_id TEXT NOT NULL)')
        const store = sqliteStore(db)
        const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
        app.post('/d/ops', onceReceiver({ store, gapWaitMs: 0 }), async (c) => {
          const { tx, requestId, sequence } = c.var.receiver
          tx.prepare('INSERT INTO history VALUES (?, ?)').run(sequence ?? 0, requestId)
          const length = Number(tx.prepare('SELECT COUNT(*) AS n FROM history').get()?.n)
          return c.json({ requestId, sequence, length }, 201)
        })
        const send: Send = async (seq) =>
          app.request('/d/ops', {
            method: 'POST',
            headers: {
              [ONCE_HEADERS.requestId]: `r${seq}`,
              [ONCE_HEADERS.domain]: 'd',
              [ONCE_HEADERS.sequence]: String(seq),
              ...(noops.includes(seq) ? { [ONCE_HEADERS.noop]: '?1' } : {}),
            },
          })
        const answers = await run(send, n, batches)
        const all = Array.from({ length: n }, (_, i) => i + 1)
        const real = all.filter((seq) => !noops.includes(seq))
        const history = db.prepare('SELECT seq, request_id FROM history ORDER BY rowid').all()
        expect(history.map((r) => [r.seq, r.request_id])).toEqual(real.map((seq) => [seq, `r${seq}`]))
        expect(await store.applied('d')).toEqual(all.map((seq) => ({ domain: 'd', sequence: seq, requestId: `r${seq}`, noop: noops.includes(seq) })))
        expect(await store.nextSequence('d')).toBe(n + 1)
        for (const [seq, bodies] of answers) {
          expect(new Set(bodies).size).toBe(1)
          if (noops.includes(seq)) expect(bodies[0]).toBe('')
          else expect(JSON.parse(bodies[0] ?? '')).toEqual({ requestId: `r${seq}`, sequence: seq, length: real.indexOf(seq) + 1 })
        }
        db.close()
      }),
      { numRuns: 150 },
    )
  })

  describe('over HTTP, the example origin', () => {
    let origin: RunningOrigin
    beforeAll(async () => {
      origin = await startOrigin({ name: 'prop', gapWaitMs: 0 })
    })
    afterAll(() => origin.close())

    it('deposits of one account: balance and history exact, each request applied once', async () => {
      let round = 0
      await fc.assert(
        fc.asyncProperty(scenario, async ([n, batches]) => {
          const acct = `acct-${round++}`
          const send: Send = (seq) =>
            fetch(`${origin.url}/accounts/${acct}/deposits`, {
              method: 'POST',
              headers: {
                'content-type': 'application/json',
                [ONCE_HEADERS.requestId]: `${acct}-r${seq}`,
                [ONCE_HEADERS.domain]: acct,
                [ONCE_HEADERS.sequence]: String(seq),
              },
              body: JSON.stringify({ amount: 2 ** (seq - 1) }),
            })
          const answers = await run(send, n, batches)
          const stats = await origin.stats()
          expect(stats.applied.filter((e) => e.domain === acct).map((e) => e.requestId)).toEqual(Array.from({ length: n }, (_, i) => `${acct}-r${i + 1}`))
          expect(stats.balances[acct]).toBe(2 ** n - 1)
          for (let seq = 1; seq <= n; seq++) expect(stats.byRequestId[`${acct}-r${seq}`]?.applied).toBe(1)
          // Each answer is the balance right after its own deposit: the order is visible in the bodies.
          for (const [seq, bodies] of answers) expect(bodies.map((b) => JSON.parse(b))).toEqual(bodies.map(() => ({ id: acct, balance: 2 ** seq - 1 })))
        }),
        { numRuns: 40 },
      )
    })
  })
})

import type { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOrigin, type RunningOrigin } from '../../examples/origin/server.js'
import { createOnceFetch, OnceFetchError, onceInfo } from '../../src/client/index.js'
import { startForwarder, type Forwarder } from './helpers/forwarder.js'
import { E2E_SIGNING_SECRET, recordOf, startGateway, type DebugRecord, type Gateway } from './helpers/gateway.js'
import { runPool } from './helpers/pool.js'
import { pollUntil } from './helpers/poll.js'
import { seeded } from './helpers/random.js'

/**
 * Chaos under `wrangler dev` (issue 8, "Tests"): the gateway (`once()` +
 * `proxy()` failover) in front of two regional front doors, eu and us, to ONE
 * origin database (the setting `failover` assumes), while the doors and the
 * origin go down, hang, fail and lose answers at random, and the runtime is
 * killed with SIGKILL twice mid-run. Each logical write is sent by hono-once's
 * own client until it gets a final answer, some of them twice (at once, or
 * later). At the end every write took effect exactly once, every answer to a
 * key agrees with its one effect, and the balances are exact.
 *
 * The schedule is drawn from a seed (printed; `CHAOS_SEED=<n>` replays the
 * draws, not the timing).
 */
const WRITES = 300
const DUPLICATE_SHARE = 0.3
const ACCOUNTS = ['a0', 'a1', 'a2', 'a3', 'a4']
const CONCURRENCY = 12
/** The workload must be done by then, or the test fails naming the keys still open. */
const RUN_BUDGET_MS = Number(process.env.CHAOS_BUDGET_MS ?? 75_000)
/** Mean gap between two faults, ms (`CHAOS_PACE_MS` for a harsher manual run). */
const PACE_MS = Number(process.env.CHAOS_PACE_MS ?? 150)
const SEED = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Date.now() % 1_000_000_007
const rnd = seeded(SEED)

interface Write {
  i: number
  key: string
  account: string
  /** Unique per write, so a ledger row names its write. */
  amount: number
  /** Sent twice at once, and/or once more after its first final answer. */
  concurrent: boolean
  later: boolean
}

interface Answer {
  status: number
  body: string
  replayed: boolean
  origin: string | null
}

let origin: RunningOrigin
let eu: Forwarder
let us: Forwarder
let gw: Gateway

beforeAll(async () => {
  origin = await startOrigin({ name: 'db', latencyMs: 3, secrets: { ONCE_SIGNING_SECRET: E2E_SIGNING_SECRET } })
  eu = await startForwarder('eu', origin.url)
  us = await startForwarder('us', origin.url)
  gw = await startGateway({ eu: eu.url, us: us.url }, { TIMEOUT_MS: '1000', DEADLINE_MS: '3000' })
})

afterAll(async () => {
  await gw?.close()
  await eu?.close()
  await us?.close()
  await origin?.close()
})

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('chaos: 300 proxied writes, 30% duplicates, doors and origin failing, two SIGKILLs of wrangler dev', () => {
  it('every write takes effect exactly once, every answer to a key agrees with it, and the balances are exact', { timeout: RUN_BUDGET_MS + 40_000 }, async () => {
    const t0 = Date.now()
    const run = `${SEED.toString(36)}-${t0.toString(36)}`
    const writes: Write[] = Array.from({ length: WRITES }, (_, i) => {
      const duplicate = rnd.chance(DUPLICATE_SHARE)
      const concurrent = duplicate && rnd.chance(0.5)
      return {
        i,
        key: `chaos-${run}-${i}`,
        account: rnd.pick(ACCOUNTS),
        amount: rnd.int(1, 90) * 1000 + i, // unique: the last three digits are the write's index
        concurrent,
        later: duplicate && (!concurrent || rnd.chance(0.2)),
      }
    })

    const counters = { sends: 0, clientRetries: 0, clientGaveUp: 0, retryableFinal: 0, replayed: 0, fresh: 0, kills: 0 }
    const faults: Record<string, number> = {}
    const answers = new Map<string, Answer[]>()
    const failures: string[] = []
    const runDeadline = t0 + RUN_BUDGET_MS
    const onceFetch = createOnceFetch({
      retries: 10,
      timeoutMs: 12_000,
      deadlineMs: 30_000,
      baseDelayMs: 50,
      maxDelayMs: 1000,
      budget: false, // retry throttling is the gateway's business here: a key must be retried until it is answered
      onRetry: () => void counters.clientRetries++,
    })

    /** Sends one write until a final answer: the client's own retries, then again with the same key if it gave up. */
    async function sendUntilFinal(w: Write): Promise<Answer> {
      let last = 'none'
      for (;;) {
        if (Date.now() > runDeadline) {
          const { record } = await recordOf(gw.url, w.key).catch(() => ({ record: null }))
          const seen = record ? (await origin.stats()).byRequestId[record.requestId] : undefined
          throw new Error(`${w.key}: no final answer within ${RUN_BUDGET_MS} ms; last answer ${last}; record ${JSON.stringify(record)}; origin ${JSON.stringify(seen)}`)
        }
        counters.sends++
        let res: Response
        try {
          res = await onceFetch(`${gw.url}/accounts/${w.account}/deposits`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `"${w.key}"` },
            body: JSON.stringify({ amount: w.amount }),
          })
        } catch (err) {
          if (!(err instanceof OnceFetchError)) throw err
          counters.clientGaveUp++ // e.g. every attempt fell in a restart: the same key goes out again
          await delay(100)
          continue
        }
        let body: string
        try {
          body = await res.text()
        } catch {
          counters.clientGaveUp++ // the connection died mid-answer (a kill): the same key goes out again
          continue
        }
        const answer = { status: res.status, body, replayed: onceInfo(res)?.replayed ?? false, origin: res.headers.get('once-origin') }
        if (res.status === 201) return answer
        last = `${res.status} ${body.slice(0, 600)}`
        if ([409, 502, 503, 504].includes(res.status) || /"retryable":\s*true/.test(body)) {
          counters.retryableFinal++ // the client's retries ran out on a retryable answer: keep going
          await delay(100)
          continue
        }
        return answer // final and not 201: wrong, reported below
      }
    }

    async function runWrite(w: Write): Promise<void> {
      const got = await Promise.all(w.concurrent ? [sendUntilFinal(w), sendUntilFinal(w)] : [sendUntilFinal(w)])
      if (w.later) got.push(await sendUntilFinal(w))
      for (const a of got) {
        if (a.status !== 201) failures.push(`${w.key}: ${a.status} ${a.body}`)
        if (a.replayed) counters.replayed++
        else counters.fresh++
      }
      answers.set(w.key, got)
    }

    // The workload: CONCURRENCY clients taking writes in order.
    const pool = runPool(writes, CONCURRENCY, runWrite, (w, err) => failures.push(`${w.key}: ${String(err)}`))
    const workload = pool.done

    // The killer: SIGKILL the runtime with writes in flight, a third and two thirds of the way in; restart on the same state and port.
    const killer = (async () => {
      for (const share of [1 / 3, 2 / 3]) {
        await pollUntil(`${Math.round(share * 100)}% of the writes started`, () => (pool.started >= share * WRITES && pool.started - pool.finished >= 4 ? true : undefined), {
          timeoutMs: RUN_BUDGET_MS,
          intervalMs: 20,
        })
        const killedAt = Date.now()
        await gw.restart()
        counters.kills++
        console.log(`chaos: SIGKILL #${counters.kills} with ${pool.started - pool.finished} writes in flight; back in ${Date.now() - killedAt} ms`)
      }
    })()

    // The chaos monkey: faults at random, each undone after a short while (they overlap), for as long as
    // writes are being started. Then it calms everything, so the last writes in flight converge: faults
    // that count requests (failNext, drops) would otherwise keep hitting the few retries left, forever.
    let monkeyDone = false
    const undo: ReturnType<typeof setTimeout>[] = []
    const later = (ms: number, f: () => void) => undo.push(setTimeout(f, ms))
    const calm = () => {
      for (const t of undo) clearTimeout(t)
      for (const door of [eu, us]) door.setFaults({ down: false, hang: false, dropAnswers: 0 })
      origin.setFaults({ reset: true })
    }
    const monkey = (async () => {
      while (!monkeyDone && pool.started < WRITES) {
        await delay(rnd.int(PACE_MS / 2, (PACE_MS * 3) / 2))
        const door = rnd.pick([eu, us])
        const kind = rnd.pick(['door-down', 'door-hang', 'door-drop', 'origin-fail', 'origin-drop', 'origin-hang', 'origin-down'] as const)
        faults[kind] = (faults[kind] ?? 0) + 1
        switch (kind) {
          case 'door-down':
            door.setFaults({ down: true })
            later(rnd.int(200, 1000), () => door.setFaults({ down: false }))
            break
          case 'door-hang':
            door.setFaults({ hang: true })
            later(rnd.int(200, 1200), () => door.setFaults({ hang: false }))
            break
          case 'door-drop':
            door.setFaults({ dropAnswers: rnd.int(1, 3) })
            break
          case 'origin-fail':
            origin.setFaults({ failNext: rnd.int(1, 3) })
            break
          case 'origin-drop':
            origin.setFaults({ dropAfterApply: rnd.int(1, 2) })
            break
          case 'origin-hang':
            origin.setFaults({ hang: true })
            later(rnd.int(100, 600), () => origin.setFaults({ hang: false }))
            break
          case 'origin-down':
            origin.setFaults({ down: true })
            later(rnd.int(100, 400), () => origin.setFaults({ down: false }))
            break
        }
      }
      calm()
    })()

    try {
      await workload
      await killer
    } finally {
      monkeyDone = true
      await monkey
    }
    const workloadMs = Date.now() - t0
    console.log(`chaos: seed ${SEED}; ${WRITES} writes in ${workloadMs} ms`, JSON.stringify({ counters, faults, eu: eu.stats(), us: us.stats() }))

    // 1. Every key got a final answer, and it is a 201.
    expect(failures).toEqual([])
    expect(counters.kills).toBe(2)
    expect(answers.size).toBe(WRITES)

    // 2. Late copies held by a hung door reach the origin now; wait until none is left anywhere.
    await pollUntil('the doors to settle', () => (eu.stats().pending === 0 && us.stats().pending === 0 ? true : undefined), {
      timeoutMs: 15_000,
      describe: () => ({ eu: eu.stats(), us: us.stats() }),
    })

    // 3. The stable area committed every key (no reply answered without being stored), under one request id each.
    const records = new Map<string, DebugRecord>()
    await inBatches(writes, 16, async (w) => {
      const { record } = await recordOf(gw.url, w.key)
      if (record) records.set(w.key, record)
    })
    const notCommitted = writes.filter((w) => records.get(w.key)?.state !== 'committed' || records.get(w.key)?.status !== 201)
    expect(notCommitted.map((w) => [w.key, records.get(w.key)])).toEqual([])
    expect(new Set([...records.values()].map((r) => r.requestId)).size).toBe(WRITES)

    // 4. No reply lost across the kills: each key once more, now without faults: its stored answer, byte for byte.
    await inBatches(writes, 16, async (w) => {
      const res = await fetch(`${gw.url}/accounts/${w.account}/deposits`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `"${w.key}"` },
        body: JSON.stringify({ amount: w.amount }),
        signal: AbortSignal.timeout(15_000),
      })
      answers.get(w.key)!.push({ status: res.status, body: await res.text(), replayed: res.headers.get('idempotent-replayed') === 'true', origin: res.headers.get('once-origin') })
    })
    const finalPass = writes.map((w) => answers.get(w.key)!.at(-1)!)
    expect(finalPass.filter((a) => a.status !== 201 || !a.replayed)).toEqual([])

    // 5. The origin's ledger: exactly one effect per write, under the request id the edge assigned to its key.
    const ledger = await origin.store.exclusive((conn: DatabaseSync) =>
      conn.prepare('SELECT request_id, account, amount, balance FROM ledger ORDER BY n').all() as { request_id: string; account: string; amount: number; balance: number }[],
    )
    const rowsByAmount = new Map<number, typeof ledger>()
    for (const row of ledger) rowsByAmount.set(row.amount, [...(rowsByAmount.get(row.amount) ?? []), row])
    const wrongEffects = writes.flatMap((w) => {
      const rows = rowsByAmount.get(w.amount) ?? []
      const row = rows[0]
      const ok = rows.length === 1 && row!.account === w.account && row!.request_id === records.get(w.key)?.requestId
      return ok ? [] : [{ key: w.key, rows }]
    })
    expect(wrongEffects).toEqual([])
    expect(ledger).toHaveLength(WRITES) // and nothing else

    const stats = await origin.stats()
    const appliedTwice = Object.entries(stats.byRequestId).filter(([, s]) => s.applied > 1)
    expect(appliedTwice).toEqual([])
    expect(Object.values(stats.byRequestId).filter((s) => s.applied === 1)).toHaveLength(WRITES)

    // 6. Every answer to a key (first, concurrent copy, later duplicate, final replay) is the reply of its one effect.
    const disagreeing = writes.flatMap((w) => {
      const row = rowsByAmount.get(w.amount)![0]!
      const expected = JSON.stringify({ id: w.account, balance: row.balance })
      const got = answers.get(w.key)!
      const origins = new Set(got.map((a) => a.origin))
      return got.every((a) => a.body === expected) && origins.size === 1 ? [] : [{ key: w.key, expected, got }]
    })
    expect(disagreeing).toEqual([])

    // 7. Balances exact: each account holds the sum of its distinct writes, at the origin and read through the gateway (hedged GET).
    const expected: Record<string, number> = {}
    for (const w of writes) expected[w.account] = (expected[w.account] ?? 0) + w.amount
    expect(stats.balances).toEqual(expected)
    for (const account of Object.keys(expected)) {
      const res = await fetch(`${gw.url}/accounts/${account}`, { signal: AbortSignal.timeout(10_000) })
      expect(await res.json()).toEqual({ id: account, balance: expected[account] })
    }
    const takenOver = [...records.values()].filter((r) => r.attempt > 1).length
    console.log(
      `chaos: checked in ${Date.now() - t0 - workloadMs} ms; ${counters.fresh} fresh answers, ${counters.replayed} replays, ` +
        `${takenOver} keys run by more than one attempt (retry or alarm), origin saw ${stats.requests} requests`,
    )
  })
})

/** Runs `f` over `items`, `n` at a time. */
async function inBatches<T>(items: readonly T[], n: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await f(items[next++]!)
    }),
  )
}

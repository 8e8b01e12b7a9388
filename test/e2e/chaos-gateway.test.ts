import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOrigin, type OriginStats, type RunningOrigin } from '../../examples/origin/server.js'
import { createOnceFetch, OnceFetchError, onceInfo } from '../../src/client/index.js'
import { startConfigGateway, type ConfigGateway, type DomainStatusJson } from './helpers/config-gateway.js'
import { runPool } from './helpers/pool.js'
import { pollUntil } from './helpers/poll.js'
import { seeded } from './helpers/random.js'

/**
 * Chaos against the deployable gateway (issue 12, "Chaos end-to-end test";
 * issue 9, ordered replication): the root `wrangler.toml` (`src/gateway.ts`)
 * under `wrangler dev`, configured only through `ONCE_CONFIG`, in front of
 * three full replicas r1, r2, r3 (the bank origin of `examples/origin`, each
 * with its own SQLite file). Deposits and withdrawals are replicated in one
 * order per account (`strategy: 'replicate'`, `domain: 'param:id'`): the
 * `q*` accounts answer at `ackQuorum: 1`, the `m*` accounts at `'majority'`.
 * Reads are hedged.
 *
 * Clients send ≥ 1000 logical writes with unique amounts (so every ledger row
 * names its write), 30% of them twice (at once, or after the answer), each
 * re-sent with its key until a final answer (201, or 422 insufficient funds),
 * while the replicas go down, hang, fail and lose answers at random (one at a
 * time mostly, two now and then), and the gateway's `wrangler dev` is killed
 * with SIGKILL mid-run and restarted on the same state and port.
 *
 * Then, faults off, the gateway's alarms catch every replica up, and:
 * - no double effect: every replica holds exactly one ledger row per write
 *   answered 201 and none for a 422, and no request id applied twice;
 * - no lost committed reply: every answer to a key, and a last replay of
 *   it, is the same status and body;
 * - replicas identical: the same applied (sequence, request id, no-op) list
 *   per domain, the same stored answers and the same balances;
 * - the answers are what the bank computes when the writes are applied in
 *   the domain's order, and the balances are what the answers imply.
 *
 * The size and pace come from env vars (defaults meet the issue): CHAOS_GW_WRITES (1000),
 * CHAOS_GW_ACCOUNTS (10), CHAOS_GW_MAJORITY_ACCOUNTS (3 of them), CHAOS_GW_CLIENTS (12),
 * CHAOS_GW_KILLS (1), CHAOS_GW_PACE_MS (150, mean gap between faults), CHAOS_GW_BUDGET_MS
 * (120000, for the workload), CHAOS_GW_CONVERGE_MS (30000, for the catch-up); the draws come
 * from CHAOS_SEED (printed; it replays the draws, not the timing). CHAOS_GW_POISON=1 adds the
 * poison-path case at the end of this file (over a minute).
 */
const envInt = (name: string, fallback: number): number => {
  const raw = process.env[name]
  const n = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isInteger(n) || n < 0) throw new TypeError(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`)
  return n
}
const WRITES = envInt('CHAOS_GW_WRITES', 1000)
const ACCOUNT_COUNT = Math.max(1, envInt('CHAOS_GW_ACCOUNTS', 10))
/** How many of the accounts replicate at `ackQuorum: 'majority'` (the others at 1). */
const MAJORITY_ACCOUNTS = Math.min(ACCOUNT_COUNT - 1, envInt('CHAOS_GW_MAJORITY_ACCOUNTS', 3))
const CLIENTS = Math.max(1, envInt('CHAOS_GW_CLIENTS', 12))
const KILLS = Math.max(1, envInt('CHAOS_GW_KILLS', 1))
/** Mean gap between two faults, ms. */
const PACE_MS = Math.max(10, envInt('CHAOS_GW_PACE_MS', 150))
/**
 * The workload must be done by then, or the test fails naming the keys still open. 120 s: with a fault every
 * 150 ms the retry budget is spent, so a replica's lost answer is no longer retried inside the request (at most
 * `maxAttempts`, through the budget and the breaker: issue 15.3); the client gets a retryable 502 and comes back
 * (about 220 of 1000 writes), and the run takes 60–65 s where unbounded in-request resends took 37 s.
 */
const RUN_BUDGET_MS = envInt('CHAOS_GW_BUDGET_MS', 120_000)
/**
 * How long the alarms get to catch every replica up once the faults are off. 60 s: a replica that failed n sends in a
 * row is sent to again after 2 s × 2^(n−1) (src/durable/ordered.ts), so one that kept failing through the workload
 * may wait 32 s before its next send after the faults end. Seed 180467090 (CI, 2026-12-02) left r3 of two domains
 * stuck on one entry through the workload: it caught up at about 32 s, past the former 30 s bound, no effect doubled.
 */
const CONVERGE_MS = envInt('CHAOS_GW_CONVERGE_MS', 60_000)
const DUPLICATE_SHARE = 0.3
const WITHDRAWAL_SHARE = 0.4
const SEED = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Date.now() % 1_000_000_007
const rnd = seeded(SEED)

const ACCOUNTS = Array.from({ length: ACCOUNT_COUNT }, (_, i) => (i < ACCOUNT_COUNT - MAJORITY_ACCOUNTS ? `q${i}` : `m${i}`))
/** Amounts are `n * UNIT + i`: the low digits name the write. */
const UNIT = 10 ** String(Math.max(1, WRITES - 1)).length

const SECRET = `chaos-${crypto.randomUUID()}`
const STATUS_TOKEN = `status-${crypto.randomUUID()}`

type Kind = 'deposit' | 'withdrawal'

interface Write {
  i: number
  key: string
  account: string
  kind: Kind
  /** Unique per write: `amount % UNIT === i`. */
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
  /** `Once-Sequence`: the slot the gateway gave the write (when the answer carries it). */
  sequence: number | null
  /** When the answer came in (ms since the run began), to tell the first final answer. */
  at: number
}

/** One applied slot at a replica, with the answer it stored (the receiver's `once_requests`). */
interface Slot {
  domain: string
  sequence: number
  requestId: string
  noop: boolean
  status: number
  body: string
}

interface LedgerRow {
  request_id: string | null
  account: string
  kind: string
  amount: number
  balance: number
}

const dataDir = mkdtempSync(join(tmpdir(), 'hono-once-chaos-gw-'))
const replicas: RunningOrigin[] = []
let gw: ConfigGateway

beforeAll(async () => {
  for (const [name, latencyMs] of [
    ['r1', 2],
    ['r2', 4],
    ['r3', 6],
  ] as const) {
    replicas.push(await startOrigin({ name, dbPath: join(dataDir, `${name}.db`), latencyMs, secrets: { ONCE_SIGNING_SECRET: SECRET } }))
  }
  const write = (path: string, ackQuorum: 1 | 'majority') => ({
    path,
    methods: ['POST'],
    strategy: 'replicate',
    domain: 'param:id',
    ackQuorum,
    timeoutMs: 1000,
    deadlineMs: 3000,
    breaker: { failures: 3, cooldownMs: 500 },
  })
  const config = {
    origins: replicas.map((r) => ({ name: r.name, url: r.url })),
    routes: [
      write('/accounts/:id{q[0-9]+}/deposits', 1),
      write('/accounts/:id{q[0-9]+}/withdrawals', 1),
      write('/accounts/:id{m[0-9]+}/deposits', 'majority'),
      write('/accounts/:id{m[0-9]+}/withdrawals', 'majority'),
      { path: '/accounts/*', methods: ['GET'], strategy: 'hedge', hedgeAfterMs: 'auto' },
    ],
    // One test client: every caller shares the key space.
    keys: { scope: 'none', leaseMs: 3000, waitMs: 5000 },
  }
  gw = await startConfigGateway(config, { signingSecret: SECRET, statusToken: STATUS_TOKEN })
})

afterAll(async () => {
  await gw?.close()
  await Promise.all(replicas.map((r) => r.close().catch(() => undefined)))
  rmSync(dataDir, { recursive: true, force: true })
})

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const pathOf = (w: Write) => `/accounts/${w.account}/${w.kind === 'deposit' ? 'deposits' : 'withdrawals'}`
const isInsufficientFunds = (a: { status: number; body: string }) => a.status === 422 && a.body.includes('/insufficient-funds"')

describe(`chaos through the config-driven gateway: ${WRITES} replicated writes over ${ACCOUNT_COUNT} accounts, 30% duplicates, replica outages, SIGKILL of wrangler dev`, () => {
  it('no double effect, no lost reply, replicas identical, balances what the answers imply', { timeout: RUN_BUDGET_MS + CONVERGE_MS + 60_000 }, async () => {
    const t0 = Date.now()
    const run = `${SEED.toString(36)}-${t0.toString(36)}`
    const writes: Write[] = Array.from({ length: WRITES }, (_, i) => {
      const duplicate = rnd.chance(DUPLICATE_SHARE)
      const concurrent = duplicate && rnd.chance(0.5)
      return {
        i,
        key: `gw-${run}-${i}`,
        account: rnd.pick(ACCOUNTS),
        kind: rnd.chance(WITHDRAWAL_SHARE) ? 'withdrawal' : 'deposit',
        amount: rnd.int(1, 50) * UNIT + i,
        concurrent,
        later: duplicate && (!concurrent || rnd.chance(0.2)),
      }
    })
    const byAmount = new Map(writes.map((w) => [w.amount, w]))

    const counters = { sends: 0, clientRetries: 0, clientGaveUp: 0, retryableFinal: 0, replayed: 0, fresh: 0, kills: 0, killDowntimeMs: [] as number[] }
    const faults: Record<string, number> = {}
    const retryReasons: Record<string, number> = {}
    const answers = new Map<string, Answer[]>()
    const failures: string[] = []
    const runDeadline = t0 + RUN_BUDGET_MS
    const onceFetch = createOnceFetch({
      retries: 10,
      timeoutMs: 12_000,
      deadlineMs: 30_000,
      baseDelayMs: 50,
      maxDelayMs: 1000,
      budget: false, // a key must be retried until it is answered
      onRetry: (info) => {
        counters.clientRetries++
        const why = `${info.reason}${info.response ? ` ${info.response.status}` : ''}`
        retryReasons[why] = (retryReasons[why] ?? 0) + 1
      },
    })

    /** Sends one write until a final answer: the client's own retries, then again with the same key if it gave up. */
    async function sendUntilFinal(w: Write): Promise<Answer> {
      let last = 'none'
      for (;;) {
        if (Date.now() > runDeadline) throw new Error(`${w.key} (${w.kind} ${w.amount} on ${w.account}): no final answer within ${RUN_BUDGET_MS} ms; last answer ${last}`)
        counters.sends++
        let res: Response
        try {
          res = await onceFetch(`${gw.url}${pathOf(w)}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `"${w.key}"` },
            body: JSON.stringify({ amount: w.amount }),
          })
        } catch (err) {
          if (!(err instanceof OnceFetchError)) throw err
          counters.clientGaveUp++ // e.g. every attempt fell in the restart: the same key goes out again
          last = `${err.reason} error`
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
        const answer: Answer = {
          status: res.status,
          body,
          replayed: onceInfo(res)?.replayed ?? false,
          origin: res.headers.get('once-origin'),
          sequence: sequenceOf(res),
          at: Date.now() - t0,
        }
        if (res.status === 201 || isInsufficientFunds(answer)) return answer
        last = `${res.status} ${body.slice(0, 600)}`
        if ([409, 429, 502, 503, 504].includes(res.status) && !/"retryable":\s*false/.test(body)) {
          counters.retryableFinal++ // the client's retries ran out on a retryable answer: keep going
          await delay(100)
          continue
        }
        return answer // final, but neither 201 nor insufficient funds: reported below
      }
    }

    async function runWrite(w: Write): Promise<void> {
      const got: Answer[] = []
      const one = async () => void got.push(await sendUntilFinal(w)) // in the order they came in
      await Promise.all(w.concurrent ? [one(), one()] : [one()])
      if (w.later) await one()
      for (const a of got) {
        if (a.status !== 201 && !isInsufficientFunds(a)) failures.push(`${w.key} (${w.kind} ${w.amount} on ${w.account}): ${a.status} ${a.body}`)
        if (a.replayed) counters.replayed++
        else counters.fresh++
      }
      answers.set(w.key, got)
    }

    // The workload: CLIENTS clients taking writes in order.
    const pool = runPool(writes, CLIENTS, runWrite, (_w, err) => failures.push(String(err)))
    const workload = pool.done

    // The killer: SIGKILL the runtime with writes in flight, spread over the run; restart on the same state and port.
    const killer = (async () => {
      for (let k = 1; k <= KILLS; k++) {
        const share = k / (KILLS + 1)
        await pollUntil(`${Math.round(share * 100)}% of the writes started`, () => (pool.started >= share * WRITES && pool.started - pool.finished >= 4 ? true : undefined), {
          timeoutMs: RUN_BUDGET_MS,
          intervalMs: 20,
        })
        const killedAt = Date.now()
        const inFlight = pool.started - pool.finished
        await gw.restart()
        counters.kills++
        counters.killDowntimeMs.push(Date.now() - killedAt)
        console.log(`chaos-gateway: SIGKILL #${k} with ${inFlight} writes in flight; back in ${Date.now() - killedAt} ms`)
      }
    })()

    // The chaos monkey: faults on the replicas at random, each undone after a short while, for as long as
    // writes are being started. Down and hang hit one replica at a time, now and then a second one briefly;
    // failNext and dropAfterApply (counted faults) any replica. Then everything is calmed, so the last
    // writes converge.
    let monkeyDone = false
    const undo: ReturnType<typeof setTimeout>[] = []
    const later = (ms: number, f: () => void) => undo.push(setTimeout(f, ms))
    const out = new Set<RunningOrigin>() // down or hung right now
    const calm = () => {
      for (const t of undo) clearTimeout(t)
      for (const r of replicas) r.setFaults({ reset: true })
      out.clear()
    }
    const monkey = (async () => {
      while (!monkeyDone && pool.started < WRITES) {
        await delay(rnd.int(PACE_MS / 2, (PACE_MS * 3) / 2))
        let kind = rnd.pick(['down', 'hang', 'failNext', 'dropAfterApply'] as const)
        const second = out.size === 1 && rnd.chance(0.2)
        if ((kind === 'down' || kind === 'hang') && out.size > 0 && !second) kind = rnd.chance(0.5) ? 'failNext' : 'dropAfterApply'
        const pool = kind === 'down' || kind === 'hang' ? replicas.filter((r) => !out.has(r)) : replicas
        const r = rnd.pick(pool)
        const label = `${kind}${second && (kind === 'down' || kind === 'hang') ? '-second' : ''}`
        faults[label] = (faults[label] ?? 0) + 1
        switch (kind) {
          case 'down':
          case 'hang': {
            out.add(r)
            r.setFaults(kind === 'down' ? { down: true } : { hang: true })
            const ms = second ? rnd.int(100, 300) : kind === 'down' ? rnd.int(200, 1500) : rnd.int(200, 1200)
            later(ms, () => {
              r.setFaults(kind === 'down' ? { down: false } : { hang: false })
              out.delete(r)
            })
            break
          }
          case 'failNext':
            r.setFaults({ failNext: rnd.int(1, 3) })
            break
          case 'dropAfterApply':
            r.setFaults({ dropAfterApply: rnd.int(1, 2) })
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
      calm()
    }
    const workloadMs = Date.now() - t0
    console.log(
      `chaos-gateway: seed ${SEED}; ${WRITES} writes (${writes.filter((w) => w.concurrent || w.later).length} duplicated) by ${CLIENTS} clients in ${workloadMs} ms`,
      JSON.stringify({ counters, retryReasons, faults }),
    )

    // 1. Every key got a final answer: 201, or 422 insufficient funds.
    expect(failures).toEqual([])
    expect(counters.kills).toBe(KILLS)
    expect(answers.size).toBe(WRITES)

    // 2. Faults off: the gateway's alarms catch every replica up. Every key was admitted, so every domain's log
    //    holds one slot per write; wait (bounded) until each replica has applied all of them.
    const convergeStart = Date.now()
    // What the alarms have to do: slots each replica still lacks now that the last client has its answer.
    const lacking = Object.fromEntries(await Promise.all(replicas.map(async (r) => [r.name, WRITES - (await r.store.applied()).length] as const)))
    let converged = true
    try {
      await pollUntil(
        'every replica to apply every slot',
        async () => {
          const all = await Promise.all(replicas.map((r) => r.store.applied()))
          return all.every((a) => a.length >= WRITES) ? true : undefined
        },
        { timeoutMs: CONVERGE_MS, intervalMs: 200, describe: async () => lagReport(await Promise.all(replicas.map((r) => r.stats()))) },
      )
    } catch (err) {
      converged = false
      console.error(`chaos-gateway: ${String(err)}`)
    }
    const convergeMs = Date.now() - convergeStart

    // 3. No reply lost across the kills and outages: each key once more, without faults: its stored answer, replayed.
    await inBatches(writes, 12, async (w) => {
      const res = await fetch(`${gw.url}${pathOf(w)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `"${w.key}"` },
        body: JSON.stringify({ amount: w.amount }),
        signal: AbortSignal.timeout(15_000),
      })
      const body = await res.text()
      answers.get(w.key)!.push({
        status: res.status,
        body,
        replayed: res.headers.get('idempotent-replayed') === 'true',
        origin: res.headers.get('once-origin'),
        sequence: sequenceOf(res),
        at: Date.now() - t0,
      })
    })
    const notReplayed = writes.flatMap((w) => {
      const last = answers.get(w.key)!.at(-1)!
      return last.replayed ? [] : [{ key: w.key, last }]
    })
    expect(notReplayed).toEqual([])
    const disagreeing = writes.flatMap((w) => {
      const got = answers.get(w.key)!
      const first = got[0]!
      return got.every((a) => a.status === first.status && a.body === first.body) ? [] : [{ key: w.key, got }]
    })
    expect(disagreeing).toEqual([])
    const withSequence = writes.filter((w) => answers.get(w.key)!.some((a) => a.sequence !== null)).length
    const originsDiffer = writes.filter((w) => new Set(answers.get(w.key)!.map((a) => a.origin)).size > 1).length

    // 4. The gateway's own view: every domain at its head on every replica, none suspect.
    let status: DomainStatusJson[] = []
    const statusOk = await pollUntil(
      'the status page to show every replica caught up',
      async () => {
        const s = await gw.status()
        status = s.domains
        const seen = new Set(s.domains.map((d) => d.domain))
        const done = ACCOUNTS.filter((a) => writes.some((w) => w.account === a)).every((a) => seen.has(a)) && s.domains.every((d) => d.replicas.every((r) => r.lag === 0 && r.state === 'active'))
        return done ? true : undefined
      },
      { timeoutMs: converged ? 15_000 : 2000, intervalMs: 250 },
    ).catch(() => false)

    // 5. Each replica's history: per domain gapless, every slot one write (a 201 with its one ledger row, a 422
    //    with none, or a no-op), every write in exactly one slot, and the answer stored is the client's.
    const views = await Promise.all(replicas.map((r) => replicaView(r)))
    const problems: string[] = []
    const slotOfWrite = new Map<string, Map<number, Slot>>() // replica → write index → slot
    for (const v of views) {
      const mine = new Map<number, Slot>()
      slotOfWrite.set(v.name, mine)
      const bySequence = new Map<string, number[]>()
      for (const s of v.slots) bySequence.set(s.domain, [...(bySequence.get(s.domain) ?? []), s.sequence])
      for (const [domain, seqs] of bySequence) {
        const gaps = seqs.filter((s, i) => s !== i + 1)
        if (gaps.length > 0) problems.push(`${v.name}: domain ${domain} is not gapless from 1: ${seqs.slice(0, 20).join(',')}…`)
      }
      const ledgerByRequest = new Map<string, LedgerRow[]>()
      for (const row of v.ledger) ledgerByRequest.set(String(row.request_id), [...(ledgerByRequest.get(String(row.request_id)) ?? []), row])
      for (const s of v.slots) {
        const rows = ledgerByRequest.get(s.requestId) ?? []
        let w: Write | undefined
        if (s.noop) {
          if (rows.length > 0) problems.push(`${v.name}: no-op slot ${s.domain}#${s.sequence} (${s.requestId}) has ledger rows ${JSON.stringify(rows)}`)
          continue
        }
        if (s.status === 201) {
          if (rows.length !== 1) problems.push(`${v.name}: slot ${s.domain}#${s.sequence} (${s.requestId}) answered 201 with ${rows.length} ledger rows ${JSON.stringify(rows)}`)
          w = rows[0] ? byAmount.get(rows[0].amount) : undefined
        } else if (isInsufficientFunds(s)) {
          if (rows.length !== 0) problems.push(`${v.name}: slot ${s.domain}#${s.sequence} (${s.requestId}) answered 422 with ledger rows ${JSON.stringify(rows)}`)
          const amount = /cannot withdraw (\d+)\./.exec(s.body)?.[1]
          w = amount ? byAmount.get(Number(amount)) : undefined
        } else {
          problems.push(`${v.name}: slot ${s.domain}#${s.sequence} (${s.requestId}) stored ${s.status} ${s.body.slice(0, 300)}`)
          continue
        }
        if (!w || w.account !== s.domain) {
          problems.push(`${v.name}: slot ${s.domain}#${s.sequence} (${s.requestId}) is no write of this run's on this account: ${s.status} ${s.body.slice(0, 300)}`)
          continue
        }
        const before = mine.get(w.i)
        if (before) problems.push(`${v.name}: write ${w.key} applied in two slots: ${before.domain}#${before.sequence} (${before.requestId}) and ${s.domain}#${s.sequence} (${s.requestId})`)
        mine.set(w.i, s)
        const first = answers.get(w.key)![0]!
        if (first.status !== s.status || first.body !== s.body) {
          problems.push(`${v.name}: ${w.key} answered ${first.status} ${first.body} but ${s.domain}#${s.sequence} stored ${s.status} ${s.body}`)
        }
        const told = answers.get(w.key)!.filter((a) => a.sequence !== null && a.sequence !== s.sequence)
        if (told.length > 0) problems.push(`${v.name}: ${w.key} applied as ${s.domain}#${s.sequence}, but answered with Once-Sequence ${told.map((a) => a.sequence).join(', ')}`)
      }
      const missing = writes.filter((w) => !mine.has(w.i))
      if (missing.length > 0) problems.push(`${v.name}: ${missing.length} writes not applied, e.g. ${missing.slice(0, 5).map((w) => `${w.key} on ${w.account}`).join(', ')}`)
      const twice = Object.entries(v.stats.byRequestId).filter(([, s]) => s.applied > 1)
      if (twice.length > 0) problems.push(`${v.name}: request ids applied more than once: ${JSON.stringify(twice.slice(0, 5))}`)
      const answered201 = writes.filter((w) => answers.get(w.key)![0]!.status === 201).length
      if (v.ledger.length !== answered201) problems.push(`${v.name}: ${v.ledger.length} ledger rows for ${answered201} writes answered 201`)
    }

    // 6. The replicas are identical: the same slots (sequence, request id, no-op, stored answer) and balances.
    const [ref, ...others] = views
    for (const v of others) {
      for (const d of diffSlots(ref!, v)) problems.push(d)
      if (JSON.stringify(v.stats.balances) !== JSON.stringify(ref!.stats.balances)) {
        problems.push(`${v.name} balances ${JSON.stringify(v.stats.balances)} differ from ${ref!.name}'s ${JSON.stringify(ref!.stats.balances)}`)
      }
    }

    // 7. The answers are what the bank computes applying the writes in the domain's order, and the balances
    //    are what the answers imply (deposits answered 201 in, withdrawals answered 201 out).
    const order = [...slotOfWrite.get(ref!.name)!.entries()].sort((a, b) => a[1].sequence - b[1].sequence)
    const simulated: Record<string, number> = {}
    for (const [i, slot] of order) {
      const w = writes[i]!
      const balance = simulated[w.account] ?? 0
      const first = answers.get(w.key)![0]!
      let expected: { status: number; body?: string; detail?: string }
      if (w.kind === 'withdrawal' && balance < w.amount) expected = { status: 422, detail: `Account ${w.account} holds ${balance}; cannot withdraw ${w.amount}.` }
      else {
        simulated[w.account] = w.kind === 'deposit' ? balance + w.amount : balance - w.amount
        expected = { status: 201, body: JSON.stringify({ id: w.account, balance: simulated[w.account] }) }
      }
      const ok = first.status === expected.status && (expected.body === undefined ? (JSON.parse(first.body) as { detail?: string }).detail === expected.detail : first.body === expected.body)
      if (!ok) problems.push(`${w.key} at ${slot.domain}#${slot.sequence}: answered ${first.status} ${first.body}, the bank in log order says ${JSON.stringify(expected)}`)
    }
    const implied: Record<string, number> = {}
    for (const w of writes) {
      if (answers.get(w.key)![0]!.status !== 201) continue
      implied[w.account] = (implied[w.account] ?? 0) + (w.kind === 'deposit' ? w.amount : -w.amount)
    }
    for (const v of views) {
      for (const account of ACCOUNTS) {
        const has = v.stats.balances[account] ?? 0
        if (has !== (implied[account] ?? 0)) problems.push(`${v.name}: ${account} holds ${has}, the answers imply ${implied[account] ?? 0}`)
      }
    }

    if (problems.length > 0 || !converged || !statusOk) {
      console.error(
        `chaos-gateway: seed ${SEED}; converged ${converged}, status ok ${statusOk}\n${problems.slice(0, 60).join('\n')}\n` +
          `lag: ${JSON.stringify(lagReport(views.map((v) => v.stats)))}\nstatus domains: ${JSON.stringify(status)}`,
      )
    }
    expect(problems).toEqual([])
    expect(converged).toBe(true)
    expect(statusOk).toBe(true)
    expect(status.flatMap((d) => d.replicas.filter((r) => r.lag !== 0 || r.state !== 'active').map((r) => ({ domain: d.domain, ...r })))).toEqual([])

    // 8. Read through the gateway (hedged GET): the implied balance.
    for (const account of ACCOUNTS) {
      const res = await fetch(`${gw.url}/accounts/${account}`, { signal: AbortSignal.timeout(10_000) })
      expect(await res.json()).toEqual({ id: account, balance: implied[account] ?? 0 })
    }

    const statuses = writes.map((w) => answers.get(w.key)![0]!.status)
    console.log(
      `chaos-gateway: replicas lacked ${JSON.stringify(lacking)} slots at the end of the workload, converged in ${convergeMs} ms, checked in ${Date.now() - t0 - workloadMs} ms; ` +
        `${statuses.filter((s) => s === 201).length} writes answered 201, ${statuses.filter((s) => s === 422).length} 422 insufficient funds; ` +
        `${counters.fresh} fresh answers, ${counters.replayed} replays, ${originsDiffer} keys answered by more than one replica name, ${withSequence} keys' answers carried Once-Sequence; ` +
        `replica requests ${views.map((v) => `${v.name} ${v.stats.requests}`).join(', ')}`,
    )
  })
})

function sequenceOf(res: Response): number | null {
  const raw = res.headers.get('once-sequence')
  return raw === null ? null : Number(raw)
}

/** A replica's applied slots with their stored answers, its ledger and its stats. */
async function replicaView(r: RunningOrigin): Promise<{ name: string; slots: Slot[]; ledger: LedgerRow[]; stats: OriginStats }> {
  const decoder = new TextDecoder()
  const { slots, ledger } = await r.store.exclusive((conn: DatabaseSync) => {
    const rows = conn
      .prepare('SELECT domain, sequence, request_id, noop, status, body FROM once_requests WHERE domain IS NOT NULL ORDER BY domain, sequence')
      .all() as { domain: string; sequence: number; request_id: string; noop: number; status: number; body: Uint8Array | null }[]
    return {
      slots: rows.map((row) => ({
        domain: row.domain,
        sequence: Number(row.sequence),
        requestId: row.request_id,
        noop: Number(row.noop) === 1,
        status: Number(row.status),
        body: row.body ? decoder.decode(row.body) : '',
      })),
      ledger: conn.prepare('SELECT request_id, account, kind, amount, balance FROM ledger ORDER BY n').all() as unknown as LedgerRow[],
    }
  })
  return { name: r.name, slots, ledger, stats: await r.stats() }
}

/** Where two replicas' histories differ, per domain: the first differing slot, and counts. */
function diffSlots(a: { name: string; slots: Slot[] }, b: { name: string; slots: Slot[] }): string[] {
  const out: string[] = []
  const group = (slots: Slot[]) => {
    const m = new Map<string, Slot[]>()
    for (const s of slots) m.set(s.domain, [...(m.get(s.domain) ?? []), s])
    return m
  }
  const ga = group(a.slots)
  const gb = group(b.slots)
  for (const domain of new Set([...ga.keys(), ...gb.keys()])) {
    const xs = ga.get(domain) ?? []
    const ys = gb.get(domain) ?? []
    const n = Math.max(xs.length, ys.length)
    for (let i = 0; i < n; i++) {
      const x = xs[i]
      const y = ys[i]
      const same = x && y && x.sequence === y.sequence && x.requestId === y.requestId && x.noop === y.noop && x.status === y.status && x.body === y.body
      if (!same) {
        out.push(`${domain}: ${a.name} has ${xs.length} slots, ${b.name} ${ys.length}; first difference at index ${i}: ${a.name} ${JSON.stringify(x)} vs ${b.name} ${JSON.stringify(y)}`)
        break
      }
    }
  }
  return out
}

/** Per domain, each replica's next expected sequence (for messages while waiting). */
function lagReport(stats: OriginStats[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {}
  for (const s of stats) for (const [domain, next] of Object.entries(s.next)) (out[domain] ??= {})[s.name] = next
  return out
}

/** Runs `f` over `items`, `n` at a time. */
async function inBatches<T>(items: readonly T[], n: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await f(items[next++]!)
    }),
  )
}

/**
 * The poison path (DESIGN §6: a request no replica could apply is committed
 * as failed and its slot becomes a no-op) when a replica did apply it and
 * only its answers were lost: the edge must not tell the client "it will not
 * run" while a replica holds its effect, must not leave the replicas
 * different, and must not suspect the replicas that recorded the no-op it
 * asked for. Runs after the chaos, on its own account, on the same gateway
 * and replicas. Opt-in (`CHAOS_GW_POISON=1`): the gateway abandons a request
 * only once it is a minute old, so this takes over a minute.
 */
describe.runIf(process.env.CHAOS_GW_POISON === '1')('a write whose every answer is lost (r1 applies it, r2 and r3 are down) past the poison budget', () => {
  it('is never abandoned while a replica may hold its effect; once healed it is applied once everywhere, replicas identical', { timeout: 240_000 }, async () => {
    const [r1, r2, r3] = replicas as [RunningOrigin, RunningOrigin, RunningOrigin]
    const account = 'q900'
    const run = Date.now().toString(36)
    const post = async (key: string, amount: number) => {
      const res = await fetch(`${gw.url}/accounts/${account}/deposits`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
        body: JSON.stringify({ amount }),
        signal: AbortSignal.timeout(20_000),
      })
      return { status: res.status, body: await res.text() }
    }
    const nextOf = async () => Promise.all(replicas.map(async (r) => (await r.stats()).next[account] ?? 1))
    const t0 = Date.now()
    const marks: string[] = []
    const mark = (what: string) => marks.push(`${what} at ${Date.now() - t0} ms`)
    try {
      expect((await post(`poison-${run}-0`, 100)).status).toBe(201)
      await pollUntil('sequence 1 at every replica', async () => ((await nextOf()).every((n) => n === 2) ? true : undefined), { describe: nextOf })

      // r2 and r3 down; r1 applies what reaches it, but every answer of it is lost.
      r2.setFaults({ down: true })
      r3.setFaults({ down: true })
      r1.setFaults({ dropAfterApply: 1_000_000 })
      const key = `poison-${run}-1`
      const first = await post(key, 7)
      expect(first.status).toBeGreaterThanOrEqual(500) // no replica answered in time: retryable
      mark(`first answer ${first.status}`)
      // r1 applied it (its ledger row names the request id); nobody heard of it.
      const requestId = await pollUntil('r1 to apply it', () =>
        r1.store.exclusive((conn: DatabaseSync) => {
          const row = conn.prepare('SELECT request_id FROM ledger WHERE account = ? AND amount = 7').get(account) as { request_id: string } | undefined
          return row?.request_id
        }),
      )
      // The client asks again (same key) now and then, past the poison budget (a minute): while a replica's
      // answers are lost nobody can know it was not applied, so the gateway must not abandon it.
      const until = Date.now() + 70_000
      while (Date.now() < until) {
        const a = await post(key, 7)
        expect(a.body, 'abandoned while a replica holds its effect').not.toMatch(/"retryable":\s*false/)
        await new Promise((r) => setTimeout(r, 4000))
      }
      mark('never abandoned')
      // Heal: the same key now gets r1's stored answer, and r2 and r3 apply it too.
      for (const r of replicas) r.setFaults({ reset: true })
      const decided = await pollUntil(
        'a final answer to the key',
        async () => {
          const a = await post(key, 7)
          return a.status === 201 || /"retryable":\s*false/.test(a.body) ? a : undefined
        },
        { timeoutMs: 60_000, intervalMs: 1000 },
      )
      mark(`decided ${decided.status}`)

      expect(decided.status).toBe(201)
      // One more write moves the domain on, and the alarms catch everyone up.
      expect((await post(`poison-${run}-2`, 1000)).status).toBe(201)
      await pollUntil('sequence 3 at every replica', async () => ((await nextOf()).every((n) => n === 4) ? true : undefined), { timeoutMs: 30_000, describe: nextOf })
      mark('caught up')
      const views = await Promise.all(replicas.map((r) => replicaView(r)))
      const effects = views.map((v) => ({ name: v.name, effects: v.stats.byRequestId[requestId]?.applied ?? 0, balance: v.stats.balances[account] }))
      const slots = views.map((v) => ({ name: v.name, slots: v.slots.filter((s) => s.domain === account).map((s) => `${s.sequence} ${s.requestId}${s.noop ? ' noop' : ''} ${s.status}`) }))
      const domain = (await gw.status()).domains.find((d) => d.domain === account)
      console.log(`chaos-gateway: poison path: ${key} (${requestId}) answered ${decided.status} ${decided.body}; ${JSON.stringify({ effects, slots, marks, domain })}`)

      // The answer agrees with the effects: 201 and applied once everywhere, or abandoned and applied nowhere.
      const expected = decided.status === 201 ? 1 : 0
      expect.soft(effects.map((e) => [e.name, e.effects])).toEqual(replicas.map((r) => [r.name, expected]))
      // The replicas are identical.
      expect.soft(slots[1]!.slots).toEqual(slots[0]!.slots)
      expect.soft(slots[2]!.slots).toEqual(slots[0]!.slots)
      expect.soft(new Set(effects.map((e) => e.balance)).size).toBe(1)
      // A replica that recorded the no-op the gateway asked for did nothing wrong.
      const noopers = views.filter((v) => v.slots.some((s) => s.requestId === requestId && s.noop)).map((v) => v.name)
      expect.soft(domain?.replicas.filter((r) => noopers.includes(r.name) && r.state === 'suspect')).toEqual([])
    } finally {
      for (const r of replicas) r.setFaults({ reset: true })
    }
  })
})

/**
 * The scripted tour of the multi-region demo (`npm start -- --demo-only`,
 * or `--tour` before serving): replays, hedging around a slow region,
 * failover around a region that is down, and its catch-up once it is back.
 * Only `fetch` against the demo gateway: it runs in Node, and type-checks
 * under the Workers types too.
 *
 * @module
 */

/** One answer the tour saw. */
export interface TourAnswer {
  status: number
  /** `Once-Origin`: the region that answered. */
  origin: string | null
  replayed: boolean
  balance: number | null
  ms: number
}

/** What the tour measured, for tests. */
export interface TourResult {
  account: string
  /** Three POSTs of one deposit with one Idempotency-Key. */
  sameKey: TourAnswer[]
  /** eu slow: a read (hedged) and a write (answered by a faster replica). */
  slowRead: TourAnswer
  slowWrite: TourAnswer
  /** eu down: a write, and reads. */
  downWrite: TourAnswer
  downReads: TourAnswer[]
  /** Each region's own balance while eu was down (eu behind). */
  whileDown: Record<string, number | null>
  /** Each region's own balance once eu caught up. */
  afterUp: Record<string, number | null>
  /** From `/up` until every region held the same balance, ms. */
  catchUpMs: number
}

/** What `GET /__demo/accounts/:id` answers. */
interface RegionBalances {
  balances: Record<string, number | null>
  equal: boolean
}

/**
 * Runs the tour against a running demo gateway.
 *
 * @param base - the demo gateway, e.g. http://127.0.0.1:8787
 * @param print - where the narration goes
 * @param options - `catchUpTimeoutMs`: how long to wait for eu to catch up (default 30 s)
 * @returns what it saw
 * @throws Error when a step does not behave as the demo promises
 * @example
 * const result = await runDemo('http://127.0.0.1:8787')
 */
export async function runDemo(base: string, print: (line: string) => void = console.log, options: { catchUpTimeoutMs?: number } = {}): Promise<TourResult> {
  const account = `tour-${Date.now().toString(36)}`
  const key = `dep-${crypto.randomUUID().slice(0, 8)}`
  const show = (what: string, a: TourAnswer) =>
    print(`   ${what.padEnd(22)} ${a.status}  from ${(a.origin ?? '-').padEnd(2)}  ${String(a.ms).padStart(4)} ms  balance=${a.balance ?? '-'}${a.replayed ? '  Idempotent-Replayed: true' : ''}`)

  print(`\n1) One deposit, sent three times with one Idempotency-Key: "${key}" (account ${account})`)
  const sameKey: TourAnswer[] = []
  for (let i = 1; i <= 3; i++) {
    const a = await deposit(base, account, key, 100)
    sameKey.push(a)
    show(`POST #${i}`, a)
  }
  const applied = await waitEqual(base, account, 10_000)
  print(`   every region holds ${JSON.stringify(applied.balances)}: applied once, in each region`)

  print('\n2) eu is slow (800 ms): the read is hedged to the next region, the write answered by a faster replica')
  await control(base, 'eu', 'slow', 800)
  const slowRead = await read(base, account)
  show('GET (hedged)', slowRead)
  const slowWrite = await deposit(base, account, `dep-${crypto.randomUUID().slice(0, 8)}`, 10)
  show('POST (new key)', slowWrite)
  const slowCaught = await waitEqual(base, account, 10_000)
  print(`   eu applied it too, later: ${JSON.stringify(slowCaught.balances)}`)
  await control(base, 'eu', 'up')

  print('\n3) eu is down: the write is answered by another region, reads fail over')
  await control(base, 'eu', 'down')
  const downWrite = await deposit(base, account, `dep-${crypto.randomUUID().slice(0, 8)}`, 50)
  show('POST (new key)', downWrite)
  const downReads: TourAnswer[] = []
  for (let i = 1; i <= 3; i++) {
    const a = await read(base, account)
    downReads.push(a)
    show(`GET #${i}`, a)
  }
  const whileDown = (await balancesAt(base, account)).balances
  print(`   each region's own balance: ${JSON.stringify(whileDown)}  (eu is behind)`)

  print('\n4) eu is back: the stable area feeds it what it missed, from the log, in order')
  const upAt = Date.now()
  await control(base, 'eu', 'up')
  const after = await waitEqual(base, account, options.catchUpTimeoutMs ?? 30_000)
  const catchUpMs = Date.now() - upAt
  print(`   caught up in ${catchUpMs} ms: ${JSON.stringify(after.balances)}\n`)
  return { account, sameKey, slowRead, slowWrite, downWrite, downReads, whileDown, afterUp: after.balances, catchUpMs }
}

async function deposit(base: string, account: string, key: string, amount: number): Promise<TourAnswer> {
  return answer(() =>
    fetch(`${base}/accounts/${account}/deposits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
      body: JSON.stringify({ amount }),
      signal: AbortSignal.timeout(15_000),
    }),
  )
}

function read(base: string, account: string): Promise<TourAnswer> {
  return answer(() => fetch(`${base}/accounts/${account}`, { signal: AbortSignal.timeout(15_000) }))
}

async function answer(send: () => Promise<Response>): Promise<TourAnswer> {
  const started = Date.now()
  const res = await send()
  const text = await res.text()
  let balance: number | null = null
  try {
    const body = JSON.parse(text) as { balance?: unknown }
    if (typeof body.balance === 'number') balance = body.balance
  } catch {
    // a problem document, not JSON of the bank
  }
  return { status: res.status, origin: res.headers.get('once-origin'), replayed: res.headers.get('idempotent-replayed') === 'true', balance, ms: Date.now() - started }
}

async function control(base: string, region: string, action: 'down' | 'up' | 'slow', ms?: number): Promise<void> {
  const res = await fetch(`${base}/__demo/regions/${region}/${action}${ms === undefined ? '' : `?ms=${ms}`}`, { method: 'POST', signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`POST /__demo/regions/${region}/${action}: ${res.status} ${await res.text()}`)
  await res.body?.cancel()
}

async function balancesAt(base: string, account: string): Promise<RegionBalances> {
  const res = await fetch(`${base}/__demo/accounts/${account}`, { signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`GET /__demo/accounts/${account}: ${res.status} ${await res.text()}`)
  return (await res.json()) as RegionBalances
}

/** Polls each region's own balance (bounded) until all hold the same. */
async function waitEqual(base: string, account: string, timeoutMs: number): Promise<RegionBalances> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const seen = await balancesAt(base, account)
    if (seen.equal) return seen
    if (Date.now() >= deadline) throw new Error(`the regions did not converge within ${timeoutMs} ms: ${JSON.stringify(seen.balances)}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

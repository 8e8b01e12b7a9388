/** Section 2: once() + proxy() to one healthy origin, against the same origin call made by hand plus the two-write floor. */
import type { BenchContext, SectionResult } from '../lib/context.js'
import { timed } from '../lib/http.js'
import { pairedRounds, roundMedians, roundPercentiles, SETTLE_MS } from '../lib/paired.js'
import { fmtRatio, median, ms, pairedRatio, table, verdict } from '../lib/stats.js'

const BODY = '{"amount":100}'

export async function proxySection(ctx: BenchContext): Promise<SectionResult> {
  const { base, agent, runId: run, settings } = ctx
  const deposit = (variant: string, key: string) =>
    timed(base, agent, { method: 'POST', path: `/accounts/s2-${variant}-${run}/deposits`, body: BODY, headers: { 'bench-variant': variant, 'idempotency-key': `"${key}"` }, expect: 201 })
  const variants = [
    { name: 'Worker → origin by hand (fetch in a Hono handler)', send: (i: number, r: number) => deposit('direct', `d-${run}-${r}-${i}`) },
    { name: 'floor: by hand + 2 durable DO writes', send: (i: number, r: number) => deposit('direct-floor', `df-${run}-${r}-${i}`) },
    { name: 'once() + proxy(), new key', send: (i: number, r: number) => deposit('proxy', `p-${run}-${r}-${i}`) },
    { name: 'diagnostic: once() + the by-hand call (no proxy())', send: (i: number, r: number) => deposit('once-direct', `od-${run}-${r}-${i}`) },
    { name: 'diagnostic: proxy() alone (no once())', send: (i: number, r: number) => deposit('proxy-bare', `pb-${run}-${r}-${i}`) },
  ]
  const origin = ctx.origins.p!
  const before = (await origin.stats()).requests
  // once() + proxy() answers first and commits right after (CommitPoint.finish): the pause lets that commit land
  // before the next request of any variant starts, so none pays for it in its own latency.
  const samples = await pairedRounds({ label: '2/6 once() + proxy()', variants, rounds: settings.rounds, perRound: settings.perRound, warmup: 50, settleMs: SETTLE_MS })
  const sent = (await origin.stats()).requests - before
  const expected = variants.length * (50 + settings.rounds * settings.perRound)
  const med = samples.map(roundMedians)
  const p99 = samples.map((s) => roundPercentiles(s, 99))
  const m = med.map(median)
  const [DIRECT, FLOOR, PROXY, ONCE_DIRECT, PROXY_BARE] = [0, 1, 2, 3, 4]
  const vsFloor = pairedRatio(med[PROXY]!, med[FLOOR]!)
  const vsDirect = pairedRatio(med[PROXY]!, med[DIRECT]!)
  const floorVsDirect = pairedRatio(med[FLOOR]!, med[DIRECT]!)
  const markdown = [
    `One origin from \`examples/origin/server.ts\` (\`onceReceiver\` + node:sqlite, the bank app, no added latency) on 127.0.0.1; deposits (POST, new key each).`,
    `The by-hand call sends the client's headers plus a \`Once-Request-Id\`, so the origin does the same work (dedupe record in the same transaction) for every variant.`,
    `once() + proxy() answers with the origin's answer and then commits (one durable round trip on the client's path; DESIGN §3.6–7): the floor's two writes are the cost of a scheme that stores the reply before answering. Every request of every variant is followed by a ${SETTLE_MS} ms pause, so a commit after the answer lands before the next request starts and no variant pays for another's background work.`,
    `${settings.rounds} rounds × ${settings.perRound} requests per variant; the origin counted ${sent} requests for ${expected} sent (${sent === expected ? 'one per request' : 'check'}).`,
    '',
    ...table(
      ['variant', 'median ms', 'p99 ms', '× by hand'],
      variants.map((v, j) => [v.name, ms(m[j]!), ms(median(p99[j]!)), pairedRatio(med[j]!, med[DIRECT]!).median.toFixed(2)]),
    ),
    '',
    ...table(
      ['ratio (per round, median of rounds)', 'value', 'target'],
      [
        ['once() + proxy() ÷ floor (by hand + 2 DO writes)', fmtRatio(vsFloor), '≤ 1.10'],
        ['once() + proxy() ÷ by hand', fmtRatio(vsDirect), ''],
        ['floor ÷ by hand (what the two writes cost)', fmtRatio(floorVsDirect), ''],
        ['diagnostic: once() + by hand ÷ floor (once() alone around an origin call)', fmtRatio(pairedRatio(med[ONCE_DIRECT]!, med[FLOOR]!)), ''],
        ['diagnostic: once() + proxy() ÷ once() + by hand (what proxy() and its relay record add)', fmtRatio(pairedRatio(med[PROXY]!, med[ONCE_DIRECT]!)), ''],
        ['diagnostic: proxy() alone ÷ by hand (proxy() in the Worker, no durable work)', fmtRatio(pairedRatio(med[PROXY_BARE]!, med[DIRECT]!)), ''],
        ['added latency over the floor', `${ms(m[PROXY]! - m[FLOOR]!)} ms`, ''],
      ],
    ),
  ]
  return {
    title: '2. once() + proxy() to one healthy origin',
    markdown,
    headline: [{ what: '2. once() + proxy() ÷ (origin by hand + 2 DO writes)', value: fmtRatio(vsFloor), target: '≤ 1.10', verdict: verdict(vsFloor.median, 1.1) }],
  }
}

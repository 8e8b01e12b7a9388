/**
 * Section 7 (issue 19): state that lives in a Durable Object. A deposit into
 * one account object as a plain RPC (the floor: no idempotency, arguments
 * parsed at the edge), as `once()` around a handler that makes that RPC
 * (today's way: admit, the call, commit, which follows the answer), and through `onceObject()` (one
 * RPC, the record in the deposit's own transaction; through the object's
 * Hono app, and as a method call with the `call` option), new key and replay.
 */
import type { BenchContext, SectionResult } from '../lib/context.js'
import { timed } from '../lib/http.js'
import { pairedRounds, roundMedians, roundPercentiles, SETTLE_MS } from '../lib/paired.js'
import { fmtRatio, median, ms, pairedRatio, table, verdict } from '../lib/stats.js'

const BODY = '{"amount":100}'

export async function onceObjectSection(ctx: BenchContext): Promise<SectionResult> {
  const { base, agent, runId: run, settings } = ctx
  const post = (path: string, key?: string) =>
    timed(base, agent, { method: 'POST', path, body: BODY, headers: { 'idempotency-key': key === undefined ? undefined : `"${key}"` }, expect: 201 })
  const acct = `acct-${run}`
  const variants = [
    { name: 'plain RPC to the object (floor)', send: () => post(`/rpc/${acct}/deposits`) },
    { name: 'once() around the RPC, new key', send: (i: number, r: number) => post(`/once-rpc/${acct}/deposits`, `o-${run}-${r}-${i}`) },
    { name: "onceObject(), new key (the object's Hono app)", send: (i: number, r: number) => post(`/obj/${acct}/deposits`, `n-${run}-${r}-${i}`) },
    { name: 'onceObject() method call (call option), new key', send: (i: number, r: number) => post(`/call/${acct}/deposits`, `c-${run}-${r}-${i}`) },
    { name: 'plain Hono handler', send: () => post('/plain') },
    { name: 'onceObject(), replay (isolate cache)', send: () => post(`/obj/${acct}/deposits`, `replay-${run}`) },
    { name: 'onceObject(), replay (from the object)', send: () => post(`/obj-nocache/${acct}/deposits`, `replay-nc-${run}`) },
  ]
  const samples = await pairedRounds({ label: '7 state in a Durable Object', variants, rounds: settings.rounds, perRound: settings.perRound, warmup: 100, settleMs: SETTLE_MS })
  const med = samples.map(roundMedians)
  const p99 = samples.map((s) => roundPercentiles(s, 99))
  const m = med.map(median)
  const [RPC, ONCE, NEW, CALL, PLAIN, CACHED, OBJECT] = [0, 1, 2, 3, 4, 5, 6]
  const newVsRpc = pairedRatio(med[NEW]!, med[RPC]!)
  const callVsRpc = pairedRatio(med[CALL]!, med[RPC]!)
  const onceVsRpc = pairedRatio(med[ONCE]!, med[RPC]!)
  const newVsOnce = pairedRatio(med[NEW]!, med[ONCE]!)
  const cachedVsPlain = pairedRatio(med[CACHED]!, med[PLAIN]!)
  const objectVsRpc = pairedRatio(med[OBJECT]!, med[RPC]!)
  const markdown = [
    `A deposit (one SELECT, one INSERT) into one \`OnceObject\` account, POST over one kept-alive loopback connection; ${settings.rounds} rounds × ${settings.perRound} requests per variant, interleaved. \`once()\` around the RPC answers first and commits right after (its default, \`answerFirst\`), so every request of every variant is followed by a ${SETTLE_MS} ms pause: no variant pays for another's background work.`,
    '',
    ...table(
      ['variant', 'median ms', 'p99 ms', '× plain RPC'],
      variants.map((v, j) => [v.name, ms(m[j]!), ms(median(p99[j]!)), pairedRatio(med[j]!, med[RPC]!).median.toFixed(2)]),
    ),
    '',
    ...table(
      ['ratio (per round, median of rounds)', 'value', 'target'],
      [
        ['onceObject() method call (the call option) new key ÷ plain RPC', fmtRatio(callVsRpc), '≤ 1.10'],
        ["onceObject() new key through the object's Hono app ÷ plain RPC", fmtRatio(newVsRpc), '≤ 1.10'],
        ["once() around the RPC (today's way) ÷ plain RPC", fmtRatio(onceVsRpc), '(three round trips, two before the answer)'],
        ["onceObject() new key ÷ today's way", fmtRatio(newVsOnce), '≈ 0.6'],
        ['onceObject() replay (isolate cache) ÷ plain Hono', fmtRatio(cachedVsPlain), '≤ 1.05'],
        ['onceObject() replay (from the object) ÷ plain RPC', fmtRatio(objectVsRpc), '(one round trip)'],
      ],
    ),
  ]
  return {
    title: '7. State in a Durable Object: onceObject()',
    markdown,
    headline: [
      { what: '7. onceObject() method call new key ÷ plain RPC', value: fmtRatio(callVsRpc), target: '≤ 1.10', verdict: verdict(callVsRpc.median, 1.1) },
      { what: "7. onceObject() new key, the object's Hono app ÷ plain RPC", value: fmtRatio(newVsRpc), target: '≤ 1.10', verdict: verdict(newVsRpc.median, 1.1) },
      { what: "7. onceObject() new key ÷ once() around the RPC", value: fmtRatio(newVsOnce), target: '≈ 0.6', verdict: '' },
      { what: '7. onceObject() replay (isolate cache) ÷ plain Hono', value: fmtRatio(cachedVsPlain), target: '≤ 1.05', verdict: verdict(cachedVsPlain.median, 1.05) },
    ],
    numbers: { callVsRpc: callVsRpc.median, newVsRpc: newVsRpc.median, newVsOnce: newVsOnce.median, cachedVsPlain: cachedVsPlain.median },
  }
}

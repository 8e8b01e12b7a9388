/** Section 1: once() overhead against the same plain handler and the two-write floor. */
import type { BenchContext, SectionResult } from '../lib/context.js'
import { timed } from '../lib/http.js'
import { pairedRounds, roundMedians, roundPercentiles, SETTLE_MS } from '../lib/paired.js'
import { fmtRatio, median, ms, pairedRatio, table, verdict } from '../lib/stats.js'

const BODY = '{"amount":100}'

export async function overhead(ctx: BenchContext): Promise<SectionResult> {
  const { base, agent, runId: run, settings } = ctx
  const post = (path: string, key?: string) => timed(base, agent, { method: 'POST', path, body: BODY, headers: { 'idempotency-key': key === undefined ? undefined : `"${key}"` }, expect: 201 })
  const variants = [
    { name: 'plain Hono handler', send: () => post('/plain') },
    { name: 'floor: handler + 2 durable DO writes', send: (i: number, r: number) => post('/floor', `f-${run}-${r}-${i}`) },
    { name: 'once(), new key', send: (i: number, r: number) => post('/once', `n-${run}-${r}-${i}`) },
    { name: 'once(), replay (isolate cache)', send: () => post('/once', `replay-${run}`) },
    { name: 'once(), replay (from the object)', send: () => post('/once-nocache', `replay-nc-${run}`) },
    { name: 'diagnostic: once({ answerFirst: false }), new key', send: (i: number, r: number) => post('/once-commit-first', `c-${run}-${r}-${i}`) },
  ]
  const samples = await pairedRounds({ label: '1/6 once() overhead', variants, rounds: settings.rounds, perRound: settings.perRound, warmup: 100, settleMs: SETTLE_MS })
  const med = samples.map(roundMedians)
  const p99 = samples.map((s) => roundPercentiles(s, 99))
  const m = med.map(median)
  const [PLAIN, FLOOR, NEW, CACHED, OBJECT, COMMIT_FIRST] = [0, 1, 2, 3, 4, 5]
  const newVsFloor = pairedRatio(med[NEW]!, med[FLOOR]!)
  const newVsPlain = pairedRatio(med[NEW]!, med[PLAIN]!)
  const cachedVsPlain = pairedRatio(med[CACHED]!, med[PLAIN]!)
  const objectVsPlain = pairedRatio(med[OBJECT]!, med[PLAIN]!)
  const commitFirstVsFloor = pairedRatio(med[COMMIT_FIRST]!, med[FLOOR]!)
  const markdown = [
    `Six variants of the same handler (\`c.json(…, 201)\`), POST over one kept-alive loopback connection; ${settings.rounds} rounds × ${settings.perRound} requests per variant.`,
    `\`once()\` answers a new key's reply first and commits it right after, in the background (\`answerFirst\`, its default): one durable round trip on the client's path, against the floor's two, which store before they answer. The diagnostic variant commits first (\`answerFirst: false\`), as the floor does. Every request of every variant is followed by a ${SETTLE_MS} ms pause, so a commit after the answer lands before the next request starts and no variant pays for another's background work.`,
    '',
    ...table(
      ['variant', 'median ms', 'p99 ms', '× plain'],
      variants.map((v, j) => [v.name, ms(m[j]!), ms(median(p99[j]!)), pairedRatio(med[j]!, med[PLAIN]!).median.toFixed(2)]),
    ),
    '',
    ...table(
      ['ratio (per round, median of rounds)', 'value', 'target'],
      [
        ['once() new key ÷ floor (2 durable DO round trips)', fmtRatio(newVsFloor), '≤ 1.05'],
        ['diagnostic: once({ answerFirst: false }) new key ÷ floor (commits before it answers, as the floor)', fmtRatio(commitFirstVsFloor), ''],
        ['once() new key ÷ plain', fmtRatio(newVsPlain), '~1.7 locally'],
        ['once() replay (isolate cache) ÷ plain', fmtRatio(cachedVsPlain), '≤ 1.10'],
        ['once() replay from the object ÷ plain', fmtRatio(objectVsPlain), 'one DO round trip'],
        ['added latency, new key', `${ms(m[NEW]! - m[PLAIN]!)} ms`, ''],
        ['added latency, replay (cache)', `${ms(m[CACHED]! - m[PLAIN]!)} ms`, ''],
      ],
    ),
  ]
  return {
    title: '1. once() overhead',
    markdown,
    headline: [
      { what: '1. once() new key ÷ two-write floor', value: fmtRatio(newVsFloor), target: '≤ 1.05', verdict: verdict(newVsFloor.median, 1.05) },
      { what: '1. diagnostic: once({ answerFirst: false }) new key ÷ two-write floor', value: fmtRatio(commitFirstVsFloor), target: '', verdict: '' },
      { what: '1. once() replay (isolate cache) ÷ plain', value: fmtRatio(cachedVsPlain), target: '≤ 1.10', verdict: verdict(cachedVsPlain.median, 1.1) },
      { what: '1. once() replay (from the object) ÷ plain', value: fmtRatio(objectVsPlain), target: '(one DO round trip)', verdict: '' },
    ],
    numbers: { commitFirstVsFloor: commitFirstVsFloor.median, newVsPlain: newVsPlain.median, cachedVsPlain: cachedVsPlain.median, objectVsPlain: objectVsPlain.median },
  }
}

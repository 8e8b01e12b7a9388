/** Section 4: replicate with ackQuorum 1 / majority / all against a single-origin failover write, same stack. */
import type { RunningOrigin } from '../../examples/origin/server.js'
import type { BenchContext, SectionResult } from '../lib/context.js'
import { HttpError, timed } from '../lib/http.js'
import { pairedRounds, roundMedians, roundPercentiles, SETTLE_MS } from '../lib/paired.js'
import { progress } from '../lib/progress.js'
import { fmtRatio, median, ms, pairedRatio, table, verdict } from '../lib/stats.js'
import { settle } from './hedge.js'

const BODY = '{"amount":100}'
const QUORUMS = ['1', 'majority', 'all'] as const

/** The replica origins of one quorum variant. */
export const replicaNames = (q: string) => ['a', 'b', 'c'].map((r) => `r-${q}-${r}`)

export async function replicateSection(ctx: BenchContext): Promise<SectionResult | string> {
  const { base, agent, runId: run, settings, origins } = ctx
  const variantName = (q: string) => `replicate:${q},${replicaNames(q).join(',')}`
  const deposit = (variant: string, account: string, key: string) =>
    timed(base, agent, { method: 'POST', path: `/accounts/${account}-${run}/deposits`, body: BODY, headers: { 'bench-variant': variant, 'idempotency-key': `"${key}"` }, expect: 201 })

  const variants = [
    { name: 'single origin, failover (once() + proxy())', variant: 'write-single:w-1', account: 's4-single', origins: [origins['w-1']!] },
    { name: 'replicate, 1 replica (ordered, ackQuorum 1)', variant: 'replicate:1,r-one', account: 's4-one', origins: [origins['r-one']!] },
    ...QUORUMS.map((q) => ({ name: `replicate, ackQuorum ${q === '1' ? 1 : `'${q}'`} (3 replicas)`, variant: variantName(q), account: `s4-q${q}`, origins: replicaNames(q).map((n) => origins[n]!) })),
  ]

  // Availability: the strategy must answer, and reach every replica.
  progress('4/6 replicate · checking availability', true)
  const WARM = 20
  const all = variants.flatMap((v) => v.origins)
  const start = await settle(all)
  for (let i = 0; i < WARM; i++) {
    for (const [j, v] of variants.entries()) {
      try {
        await deposit(v.variant, v.account, `w-${v.account}-${run}-${i}`)
      } catch (err) {
        if (j === 0) throw err // the single-origin write is no new feature: its failure is a failure
        const why = err instanceof HttpError ? err.message : String(err)
        return `replicate: not available yet (${v.name}: ${why.replace(/\s+/g, ' ').slice(0, 300)})`
      }
    }
  }
  const warmed = await settle(all, 300, 10_000)
  let offset = 0
  for (const v of variants) {
    const got = v.origins.map((_, k) => warmed[offset + k]! - start[offset + k]!)
    offset += v.origins.length
    if (v.origins.length > 1 && got.some((g) => g < WARM)) {
      return `replicate: not available yet (${v.name}: after ${WARM} writes the replicas received ${got.join(' / ')} requests; proxy() does not yet send to every replica)`
    }
  }

  // Measured rounds; messages per replica per request counted at the origins between rounds.
  const messages = variants.map(() => [] as number[][]) // [variant][round][replica]
  let before: number[] = []
  const samples = await pairedRounds({
    label: '4/6 replicate',
    variants: variants.map((v) => ({ name: v.name, send: (i: number, r: number) => deposit(v.variant, v.account, `${v.account}-${run}-${r}-${i}`) })),
    rounds: settings.rounds,
    perRound: settings.perRound,
    // Every variant answers first and commits right after; replicate also leaves the replicas it did not wait for.
    settleMs: SETTLE_MS,
    beforeRound: async () => {
      before = await settle(all, 300, 10_000)
    },
    afterRound: async () => {
      const after = await settle(all, 300, 10_000)
      let o = 0
      variants.forEach((v, j) => {
        messages[j]!.push(v.origins.map((_, k) => (after[o + k]! - before[o + k]!) / settings.perRound))
        o += v.origins.length
      })
    },
  })
  const med = samples.map(roundMedians)
  const p99 = samples.map((s) => roundPercentiles(s, 99))
  const m = med.map(median)
  const vsSingle = variants.map((_, j) => pairedRatio(med[j]!, med[0]!))
  const perReplica = messages.map((rounds) => rounds[0]!.map((_, k) => median(rounds.map((r) => r[k]!))))
  // Applied effects per replica: every replica applied every write once.
  const applied = await Promise.all(
    variants.map(async (v) => Promise.all(v.origins.map(async (o: RunningOrigin) => Object.values((await o.stats()).byRequestId).filter((e) => e.applied > 1).length))),
  )
  // One replica answering 503 for the whole run (issue 15.3): sends it gets per write while the writes go on.
  const failing = await oneReplicaDown(ctx, deposit)
  const markdown = [
    `Deposits (POST, new key each) through \`once()\` + \`proxy()\`; the replicate variants are ordered (\`once({ domain })\`, one domain per variant, so each has its own StableArea and log), the single-origin write is the plain unordered failover write (an ordering domain needs \`replicate\`). Origins are bank origins (no added latency) on 127.0.0.1.`,
    `Every variant answers first and commits right after (the replicas a quorum did not wait for also answer after the client has its answer), so each request of every variant is followed by a ${SETTLE_MS} ms pause: no variant pays for another's background work.`,
    `${settings.rounds} rounds × ${settings.perRound} requests per variant. Messages per replica per request: requests each origin received in a round ÷ requests sent, after the background sends settled (1.00 = ordering rode on the request itself, no extra messages).`,
    '',
    ...table(
      ['variant', 'median ms', 'p99 ms', '× single origin', 'messages per replica per request', 'ids applied > once'],
      variants.map((v, j) => [v.name, ms(m[j]!), ms(median(p99[j]!)), fmtRatio(vsSingle[j]!), perReplica[j]!.map((x) => x.toFixed(2)).join(' / '), applied[j]!.reduce((a, b) => a + b, 0)]),
    ),
    '',
    `One replica down: \`replicate\`, \`ackQuorum: 1\`, three replicas, the third answering 503 to every request for the whole run (\`maxAttempts\` 3). Requests the failing replica received per write, counted from the start of a round of ${settings.perRound} sequential writes to its end (the Worker's sends, plus any alarm resends that fell inside the round; the alarm backs off from 2 s per entry). Median over rounds ${failing.perRound.map((x) => x.toFixed(2)).join(' / ')}; every write answered ${failing.statuses}.`,
  ]
  return {
    title: '4. Replicate vs single-origin writes',
    markdown,
    headline: [
      { what: '4. replicate ackQuorum 1 (3 replicas) ÷ single-origin failover write', value: fmtRatio(vsSingle[2]!), target: '≤ 1.2', verdict: verdict(vsSingle[2]!.median, 1.2) },
      { what: "4. replicate ackQuorum 'majority' / 'all' ÷ single", value: `${vsSingle[3]!.median.toFixed(3)} / ${vsSingle[4]!.median.toFixed(3)}`, target: '', verdict: '' },
      { what: '4. messages per replica per request (ackQuorum 1 / majority / all)', value: perReplica.slice(2).map((p) => median(p).toFixed(2)).join(' / '), target: '1.00 fault-free', verdict: '' },
      { what: '4. sends per write to a replica answering 503 all along (ackQuorum 1)', value: median(failing.perRound).toFixed(2), target: '≤ 3 (maxAttempts)', verdict: verdict(median(failing.perRound), 3) },
    ],
  }
}

/** Rounds of sequential writes to a replica group whose third replica answers 503 throughout; its requests per write, per round. */
async function oneReplicaDown(
  ctx: BenchContext,
  deposit: (variant: string, account: string, key: string) => Promise<number>,
): Promise<{ perRound: number[]; statuses: string }> {
  const { runId: run, settings, origins } = ctx
  const names = replicaNames('down')
  const down = origins[names[2]!]!
  down.setFaults({ failNext: 1_000_000 })
  const variant = `replicate:1,${names.join(',')}`
  const perRound: number[] = []
  for (let r = 0; r < settings.rounds; r++) {
    progress(`4/6 replicate · one replica down, round ${r + 1}/${settings.rounds}`)
    const before = (await down.stats()).requests
    for (let i = 0; i < settings.perRound; i++) await deposit(variant, 's4-down', `s4-down-${run}-${r}-${i}`)
    perRound.push(((await down.stats()).requests - before) / settings.perRound)
  }
  return { perRound, statuses: '201 (the healthy replicas answered)' }
}

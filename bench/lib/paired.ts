/** Paired rounds: variants interleaved request by request, so machine noise hits them alike. */
import { progress } from './progress.js'
import { median, percentile } from './stats.js'

/** One thing measured: sends request `i` of round `round` and resolves with its latency in ms. */
export interface Variant {
  name: string
  send: (i: number, round: number) => Promise<number>
}

/**
 * The pause after every request in the sections whose variants leave work behind their answer (a commit after
 * the answer, replicas not waited for): long enough for that work to land on this machine (a commit takes about
 * 2 ms here), so each request is measured on a settled machine, as a lone request is.
 */
export const SETTLE_MS = 10

/** Samples by variant, then by round. */
export type Samples = number[][][]

export interface PairedOptions {
  /** Shown in the progress line. */
  label: string
  variants: Variant[]
  rounds: number
  perRound: number
  /** Requests per variant before the first round, not recorded (round -1). */
  warmup?: number
  /**
   * A pause after every request (ms), the same for every variant: work an answer leaves behind (a commit after the
   * answer, replicas not waited for) finishes before the next request starts, so no variant pays for another's.
   */
  settleMs?: number
  beforeRound?: (round: number) => Promise<void> | void
  afterRound?: (round: number, samples: Samples) => Promise<void> | void
}

let lastShown = 0
function show(text: string): void {
  const now = Date.now()
  if (now - lastShown < 100) return
  lastShown = now
  progress(text)
}

/**
 * Runs `rounds` rounds of `perRound` requests per variant. Within a round,
 * request i of every variant is sent before request i+1 of any; the order of
 * the variants rotates with i, so none always follows the same neighbour.
 *
 * @returns samples[variant][round] = latencies in ms
 */
export async function pairedRounds(o: PairedOptions): Promise<Samples> {
  const n = o.variants.length
  for (let i = 0; i < (o.warmup ?? 0); i++) {
    show(`${o.label} · warm-up ${i + 1}/${o.warmup}`)
    for (let j = 0; j < n; j++) {
      await o.variants[(i + j) % n]!.send(i, -1)
      if (o.settleMs) await new Promise((r) => setTimeout(r, o.settleMs))
    }
  }
  const samples: Samples = o.variants.map(() => [])
  for (let round = 0; round < o.rounds; round++) {
    await o.beforeRound?.(round)
    const cur = o.variants.map(() => [] as number[])
    for (let i = 0; i < o.perRound; i++) {
      show(`${o.label} · round ${round + 1}/${o.rounds} · ${i + 1}/${o.perRound}`)
      for (let j = 0; j < n; j++) {
        const k = (i + j) % n
        cur[k]!.push(await o.variants[k]!.send(i, round))
        if (o.settleMs) await new Promise((r) => setTimeout(r, o.settleMs))
      }
    }
    cur.forEach((s, k) => samples[k]!.push(s))
    await o.afterRound?.(round, samples)
  }
  return samples
}

/** Per-round medians of one variant. */
export const roundMedians = (s: number[][]): number[] => s.map(median)
/** Per-round p-th percentiles of one variant. */
export const roundPercentiles = (s: number[][], p: number): number[] => s.map((r) => percentile(r, p))
/** All rounds' samples of one variant, pooled. */
export const pooled = (s: number[][]): number[] => s.flat()

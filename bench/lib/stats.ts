/** Statistics for the bench: medians, percentiles and per-round ratios. */

/** Median of a list (mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Nearest-rank percentile (p in 0–100): the smallest sample with at least p% of the samples at or below it. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

/** How many samples lie strictly above the p-th percentile: what that percentile rests on. */
export function tailCount(n: number, p: number): number {
  return n - Math.ceil((p / 100) * n)
}

/** A per-round ratio summarised: median over rounds, and the range. */
export interface Ratio {
  median: number
  min: number
  max: number
}

/** Ratio a[r] / b[r] per round, then the median over rounds. */
export function pairedRatio(a: readonly number[], b: readonly number[]): Ratio {
  const rs = a.map((x, r) => x / b[r]!)
  return { median: median(rs), min: Math.min(...rs), max: Math.max(...rs) }
}

/** `1.044 (rounds: 1.040–1.062)` */
export function fmtRatio(r: Ratio, digits = 3): string {
  if (!Number.isFinite(r.median)) return 'n/a'
  return `${r.median.toFixed(digits)} (rounds: ${r.min.toFixed(digits)}–${r.max.toFixed(digits)})`
}

/** Milliseconds with 3 decimals below 100, 1 above. */
export function ms(x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  return x < 100 ? x.toFixed(3) : x.toFixed(1)
}

/** A Markdown table. */
export function table(head: string[], rows: (string | number)[][], align?: ('l' | 'r')[]): string[] {
  const a = align ?? head.map((_, i) => (i === 0 ? 'l' : 'r'))
  return [`| ${head.join(' | ')} |`, `|${a.map((x) => (x === 'r' ? '---:' : '---')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)]
}

/** Whether a measured ratio meets a `≤ target` goal, as a short mark. */
export function verdict(value: number, target: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  return value <= target ? 'met' : 'missed'
}

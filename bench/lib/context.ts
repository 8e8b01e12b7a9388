/** What every section gets, and what it gives back. */
import type { Agent } from 'node:http'
import type { RunningOrigin } from '../../examples/origin/server.js'

export interface Settings {
  /** Paired rounds per section (≥ 5 for the published numbers). */
  rounds: number
  /** Requests per variant per round in the latency sections. */
  perRound: number
  /** Requests per variant per round in the hedge section. */
  hedgePerRound: number
  /** Length of one throughput block, ms. */
  throughputMs: number
  /** The hedge origins' base latency, ms. */
  originLatencyMs: number
  /** Which sections run (1–6). */
  sections: Set<number>
}

export interface BenchContext {
  settings: Settings
  /** The Worker under `wrangler dev`. */
  base: URL
  /** One kept-alive socket for the sequential latency runs. */
  agent: Agent
  /** The origins bench/run.ts started, by name. */
  origins: Record<string, RunningOrigin>
  /** Unique per run, so keys never collide with an earlier run's. */
  runId: string
  /** Results of sections already run, for cross-section comparisons. */
  results: Map<number, SectionResult>
}

/** One line of the headline table. */
export interface HeadlineRow {
  what: string
  value: string
  target: string
  verdict: string
}

export interface SectionResult {
  title: string
  /** Markdown for bench/results.md (also printed). */
  markdown: string[]
  headline: HeadlineRow[]
  /** Numbers other sections may use (e.g. the once() ratios for the peer comparison). */
  numbers?: Record<string, number>
}

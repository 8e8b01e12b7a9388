/** Section 6: a peer from npm (@node-idempotency/core, memory adapter, Hono on @hono/node-server) against its own plain handler. */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { BenchContext, SectionResult } from '../lib/context.js'
import { keepAlive, timed } from '../lib/http.js'
import { pairedRounds, roundMedians, roundPercentiles } from '../lib/paired.js'
import { fmtRatio, median, ms, pairedRatio, table } from '../lib/stats.js'

const BODY = '{"amount":100}'
const SERVER = fileURLToPath(new URL('../peer/server.ts', import.meta.url))

/** Starts bench/peer/server.ts in its own Node process (the same Node as the bench) and resolves with its URL. */
async function startPeer(): Promise<{ url: URL; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer server did not start within 30 s: ${err}`)), 30_000)
    child.once('exit', (code) => reject(new Error(`peer server exited (${code}): ${err}`)))
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer)
      resolve((JSON.parse(line) as { port: number }).port)
    })
  })
  return {
    url: new URL(`http://127.0.0.1:${port}`),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

export async function peerSection(ctx: BenchContext): Promise<SectionResult> {
  const { runId: run, settings } = ctx
  const peer = await startPeer()
  const agent = keepAlive(1)
  try {
    const post = (path: string, key?: string) => timed(peer.url, agent, { method: 'POST', path, body: BODY, headers: { 'idempotency-key': key === undefined ? undefined : `"${key}"` }, expect: 201 })
    const variants = [
      { name: 'plain Hono handler (Node)', send: () => post('/plain') },
      { name: '@node-idempotency/core, new key', send: (i: number, r: number) => post('/peer', `n-${run}-${r}-${i}`) },
      { name: '@node-idempotency/core, replay', send: () => post('/peer', `replay-${run}`) },
    ]
    const samples = await pairedRounds({ label: '6/6 peer', variants, rounds: settings.rounds, perRound: settings.perRound, warmup: 200 })
    const med = samples.map(roundMedians)
    const p99 = samples.map((s) => roundPercentiles(s, 99))
    const m = med.map(median)
    const fresh = pairedRatio(med[1]!, med[0]!)
    const replay = pairedRatio(med[2]!, med[0]!)
    const ours = ctx.results.get(1)?.numbers
    const x = (v: number | undefined) => (v === undefined ? 'n/a (section 1 not run)' : v.toFixed(3))
    const markdown = [
      `\`@node-idempotency/core\` with \`@node-idempotency/storage-adapter-memory\`, glued into a Hono app on \`@hono/node-server\` (bench/peer/server.ts: \`onRequest\` before the handler, \`onResponse\` after, as its NestJS interceptor does), in its own Node ${process.version} process; the same handler and client as section 1; ${settings.rounds} rounds × ${settings.perRound} requests per variant.`,
      '',
      ...table(
        ['variant', 'median ms', 'p99 ms', '× plain'],
        variants.map((v, j) => [v.name, ms(m[j]!), ms(median(p99[j]!)), pairedRatio(med[j]!, med[0]!).median.toFixed(3)]),
      ),
      '',
      'Each library against the plain handler on its own runtime (hono-once on workerd with a durable object, the peer on Node in memory): compare ratios, not milliseconds.',
      '',
      ...table(
        ['× plain on its own runtime', 'new key', 'replay'],
        [
          ['hono-once (workerd, SQLite-backed Durable Object)', x(ours?.newVsPlain), `${x(ours?.cachedVsPlain)} (isolate cache) / ${x(ours?.objectVsPlain)} (from the object)`],
          ['@node-idempotency/core (Node, memory adapter)', fmtRatio(fresh), fmtRatio(replay)],
        ],
      ),
      '',
      'What each guarantees that the other does not:',
      '',
      '- **hono-once**: the record is durable (SQLite in a Durable Object; a reply is "committed" only once the write is durable) and shared by every Worker isolate in every location; a Worker that dies mid-request loses its lease and a retry runs again (crash recovery), a stuck handler is bounded (`maxRunMs`); keys are scoped per principal; the body is fingerprinted and a reused key with another request is a 422 for as long as the record lives, an in-flight duplicate waits (bounded) or gets 409 with `Retry-After`; replies are replayed byte for byte with headers; relayed requests reach origins with a stable `Once-Request-Id` and are resent by the alarm. That costs two durable round trips per new key (the client waits for the first: the reply is answered, then committed).',
      '- **@node-idempotency/core (memory adapter)**: nothing survives the process, and nothing is shared between processes or machines (a second instance runs the same key again); no lease: a request whose process dies, or whose handler throws without `onResponse`, leaves its key `IN_PROGRESS` until the TTL (every retry gets "in progress" meanwhile); in-flight duplicates are rejected or polled (`pollingIntervalMs`); the key is per method + path, not per principal; only the body the glue passes is stored (status and headers are up to the glue); expired keys are dropped only when read again, so memory grows with distinct keys. What it has that hono-once does not: no network hop at all — the check is a Map lookup in the same process, so it adds almost nothing, and it runs on any Node server (Express, NestJS, Hono on Node) and with a Redis adapter across processes.',
    ]
    return {
      title: '6. A peer from npm: @node-idempotency/core',
      markdown,
      headline: [
        { what: '6. peer (@node-idempotency/core, memory, Node) new key / replay × plain', value: `${fresh.median.toFixed(3)} / ${replay.median.toFixed(3)}`, target: `hono-once: ${x(ours?.newVsPlain)} / ${x(ours?.cachedVsPlain)}`, verdict: '' },
      ],
    }
  } finally {
    agent.destroy()
    await peer.stop()
  }
}

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Faults } from '../../examples/origin/faults.js'
import { startOrigin, type OriginStats, type RunningOrigin, type StartOriginOptions } from '../../examples/origin/server.js'
import { ONCE_HEADERS } from '../../src/origin/index.js'
import { signedHeaders } from './sign.js'

const started: RunningOrigin[] = []
afterEach(async () => {
  await Promise.all(started.splice(0).map((o) => o.close()))
})
const start = async (options: Partial<StartOriginOptions> = {}) => {
  const o = await startOrigin({ name: 'eu', ...options })
  started.push(o)
  return o
}

const uid = () => crypto.randomUUID()
const move = (o: RunningOrigin, kind: 'deposits' | 'withdrawals', acct: string, amount: number, requestId?: string, init: RequestInit = {}) =>
  fetch(`${o.url}/accounts/${acct}/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(requestId ? { [ONCE_HEADERS.requestId]: requestId } : {}) },
    body: JSON.stringify({ amount }),
    ...init,
  })
const faults = async (o: RunningOrigin, body: unknown) =>
  fetch(`${o.url}/__origin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
const stats = async (o: RunningOrigin) => (await (await fetch(`${o.url}/__origin/stats`)).json()) as OriginStats

describe('examples/origin: the bank', () => {
  it('deposits, withdraws, refuses an overdraft with a final 422, and reads balances', async () => {
    const o = await start()
    const acct = `a-${uid()}`
    const dep = await move(o, 'deposits', acct, 100, uid())
    expect(dep.status).toBe(201)
    expect(await dep.json()).toEqual({ id: acct, balance: 100 })
    const short = uid()
    const over = await move(o, 'withdrawals', acct, 500, short)
    expect(over.status).toBe(422)
    expect(over.headers.get('content-type')).toBe('application/problem+json')
    const overBody = await over.text()
    // A deposit in between does not change the recorded answer of the repeat.
    await move(o, 'deposits', acct, 1000, uid())
    const again = await move(o, 'withdrawals', acct, 500, short)
    expect(again.status).toBe(422)
    expect(await again.text()).toBe(overBody)
    expect(await (await move(o, 'withdrawals', acct, 500, uid())).json()).toEqual({ id: acct, balance: 600 })
    expect(await (await fetch(`${o.url}/accounts/${acct}`)).json()).toEqual({ id: acct, balance: 600 })
    expect(await (await fetch(`${o.url}/accounts/nobody`)).json()).toEqual({ id: 'nobody', balance: 0 })
    expect((await move(o, 'deposits', acct, -5, uid())).status).toBe(400)
    expect((await move(o, 'deposits', acct, 1.5, uid())).status).toBe(400)
  })

  it('answers identically on two replicas fed the same requests in the same order (bodies comparable by digest)', async () => {
    const [a, b] = [await start({ name: 'a' }), await start({ name: 'b' })]
    const ops: ['deposits' | 'withdrawals', number][] = [
      ['deposits', 50],
      ['withdrawals', 80],
      ['deposits', 40],
      ['withdrawals', 80],
    ]
    for (const [i, [kind, amount]] of ops.entries()) {
      const id = `op-${i}`
      const [ra, rb] = [await move(a, kind, 'acct', amount, id), await move(b, kind, 'acct', amount, id)]
      expect(ra.status).toBe(rb.status)
      expect(await ra.text()).toBe(await rb.text())
    }
  })

  it('counts effects per request id and runs, and reports applied slots and next sequences', async () => {
    const o = await start()
    const r = uid()
    const headers = { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.domain]: 'acct', [ONCE_HEADERS.sequence]: '1' }
    for (let i = 0; i < 3; i++) await fetch(`${o.url}/accounts/acct/deposits`, { method: 'POST', headers, body: '{"amount":5}' })
    const s = await stats(o)
    expect(s).toMatchObject({
      name: 'eu',
      requests: 3,
      aborted: 0,
      byRequestId: { [r]: { received: 3, runs: 1, applied: 1, aborted: 0 } },
      applied: [{ domain: 'acct', sequence: 1, requestId: r, noop: false }],
      next: { acct: 2 },
      balances: { acct: 5 },
    })
  })

  it('requires signatures when started with a secret; control routes stay open', async () => {
    const secret = 'example-secret-0123456789'
    const o = await start({ secrets: { ONCE_SIGNING_SECRET: secret } })
    expect((await move(o, 'deposits', 'acct', 5, uid())).status).toBe(401)
    const r = uid()
    const body = JSON.stringify({ amount: 5 })
    const url = `${o.url}/accounts/acct/deposits`
    const headers = await signedHeaders({ keyid: 'ONCE_SIGNING_SECRET', secret }, url, { headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: r }, body })
    const res = await fetch(url, { method: 'POST', headers, body })
    expect(res.status).toBe(201)
    expect((await stats(o)).balances).toEqual({ acct: 5 })
  })

  it('keeps its state in a file across a restart: a repeat after the restart replays', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'once-origin-'))
    try {
      const dbPath = join(dir, 'eu.db')
      const first = await startOrigin({ name: 'eu', dbPath })
      const r = uid()
      const answer = await (await move(first, 'deposits', 'acct', 70, r)).text()
      await first.close()
      const again = await start({ dbPath, port: first.port })
      expect(await (await move(again, 'deposits', 'acct', 70, r)).text()).toBe(answer)
      expect((await stats(again)).balances).toEqual({ acct: 70 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('examples/origin: fault injection over HTTP', () => {
  it('down: every request’s connection is reset, then back up', async () => {
    const o = await start()
    expect(await (await faults(o, { down: true })).json()).toMatchObject({ down: true })
    await expect(move(o, 'deposits', 'acct', 5, uid())).rejects.toThrow()
    await faults(o, { down: false })
    expect((await move(o, 'deposits', 'acct', 5, uid())).status).toBe(201)
    const s = await stats(o)
    expect(s.requests).toBe(2)
    expect(s.aborted).toBe(0)
    expect(s.balances).toEqual({ acct: 5 })
  })

  it('failNext: the next n requests answer 503 without being applied; same request id, one effect', async () => {
    const o = await start()
    await faults(o, { failNext: 2 })
    const r = uid()
    expect((await move(o, 'deposits', 'acct', 5, r)).status).toBe(503)
    expect((await move(o, 'deposits', 'acct', 5, r)).status).toBe(503)
    expect((await move(o, 'deposits', 'acct', 5, r)).status).toBe(201)
    expect((await stats(o)).byRequestId[r]).toEqual({ received: 3, runs: 1, applied: 1, aborted: 0 })
  })

  it('dropAfterApply: applied and committed, the connection reset before the answer; the retry gets the first result', async () => {
    const o = await start()
    await move(o, 'deposits', 'acct', 10, uid())
    await faults(o, { dropAfterApply: 1 })
    const r = uid()
    await expect(move(o, 'deposits', 'acct', 5, r)).rejects.toThrow()
    expect((await stats(o)).byRequestId[r]?.applied).toBe(1)
    const retry = await move(o, 'deposits', 'acct', 5, r)
    expect(await retry.json()).toEqual({ id: 'acct', balance: 15 })
    const s = await stats(o)
    expect(s.byRequestId[r]).toMatchObject({ received: 2, runs: 1, applied: 1 })
    expect(s.aborted).toBe(0)
    expect(s.balances).toEqual({ acct: 15 })
  })

  it('hang: requests wait unanswered until it is turned off; a client that gives up is counted as aborted', async () => {
    const o = await start()
    await faults(o, { hang: true })
    const r = uid()
    await expect(move(o, 'deposits', 'acct', 5, r, { signal: AbortSignal.timeout(150) })).rejects.toThrow()
    const waiting = move(o, 'deposits', 'acct', 7, uid())
    await new Promise((resolve) => setTimeout(resolve, 50))
    await faults(o, { hang: false })
    expect((await waiting).status).toBe(201)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const s = await stats(o)
    expect(s.aborted).toBe(1)
    expect(s.abortedRequests).toEqual([{ requestId: r, method: 'POST', path: '/accounts/acct/deposits' }])
    expect(s.byRequestId[r]?.aborted).toBe(1)
  })

  it('latencyMs and a tail (p = 1) delay every request; the control routes are never delayed', async () => {
    const o = await start({ latencyMs: 30 })
    let t = Date.now()
    await move(o, 'deposits', 'acct', 1, uid())
    expect(Date.now() - t).toBeGreaterThanOrEqual(28)
    await faults(o, { latencyMs: 0, tail: { p: 1, ms: 300, seed: 7 } })
    t = Date.now()
    await move(o, 'deposits', 'acct', 1, uid())
    expect(Date.now() - t).toBeGreaterThanOrEqual(298)
    t = Date.now()
    await stats(o)
    expect(Date.now() - t).toBeLessThan(250)
    await faults(o, { tail: null })
    expect((await stats(o)).faults).toMatchObject({ latencyMs: 0, tail: null })
  })

  it('a seeded tail draws the same requests on every run', () => {
    const draws = () => {
      const f = new Faults()
      f.update({ tail: { p: 0.3, ms: 100, seed: 42 } })
      return Array.from({ length: 50 }, () => f.delayMs())
    }
    const a = draws()
    expect(a).toEqual(draws())
    expect(a.filter((ms) => ms === 100).length).toBeGreaterThan(5)
    expect(a.filter((ms) => ms === 0).length).toBeGreaterThan(20)
  })

  it('wrongBalance: deposits add an extra cent, so this replica’s answers diverge', async () => {
    const o = await start()
    await faults(o, { wrongBalance: true })
    expect(await (await move(o, 'deposits', 'acct', 100, uid())).json()).toEqual({ id: 'acct', balance: 101 })
    await faults(o, { reset: true })
    expect(await (await move(o, 'deposits', 'acct', 100, uid())).json()).toEqual({ id: 'acct', balance: 201 })
  })

  it('counts a request whose client went away during the latency as aborted', async () => {
    const o = await start({ latencyMs: 200 })
    const r = uid()
    await expect(move(o, 'deposits', 'acct', 5, r, { signal: AbortSignal.timeout(50) })).rejects.toThrow()
    await new Promise((resolve) => setTimeout(resolve, 300))
    const s = await stats(o)
    expect(s.byRequestId[r]?.aborted).toBe(1)
    expect(s.aborted).toBe(1)
  })

  it('refuses a malformed faults body with 400', async () => {
    const o = await start()
    expect((await faults(o, { down: 'yes' })).status).toBe(400)
    expect((await faults(o, { tail: { p: 2, ms: 1 } })).status).toBe(400)
    expect((await faults(o, { explode: true })).status).toBe(400)
    expect((await fetch(`${o.url}/__origin/faults`, { method: 'POST', body: 'not json' })).status).toBe(400)
  })
})

describe('examples/origin: the CLI', () => {
  const children: ReturnType<typeof spawn>[] = []
  afterAll(() => {
    for (const child of children) child.kill('SIGTERM')
  })

  it('starts with --name --port --latency and serves the bank', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/origin/server.ts', '--name', 'cli', '--port', '0', '--latency', '5'], {
      cwd: join(import.meta.dirname, '../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    const url = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        const m = /listening on (http:\/\/\S+)/.exec(out)
        if (m?.[1]) resolve(m[1])
      })
      child.once('exit', (code) => reject(new Error(`exited with ${code}`)))
      setTimeout(() => reject(new Error(`no start line: ${out}`)), 20_000)
    })
    const res = await fetch(`${url}/accounts/acct/deposits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: 'cli-1' },
      body: '{"amount":3}',
    })
    expect(await res.json()).toEqual({ id: 'acct', balance: 3 })
    expect(((await (await fetch(`${url}/__origin/stats`)).json()) as OriginStats).name).toBe('cli')
  })
})

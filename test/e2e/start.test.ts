import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runDemo } from '../../examples/demo/run.js'
import { pollUntil } from './helpers/poll.js'

/** Four consecutive free ports on 127.0.0.1: the gateway's (PORT) and the three regions' after it. */
async function freePortRun(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000)
    if ((await Promise.all([0, 1, 2, 3].map((i) => canListen(base + i)))).every(Boolean)) return base
  }
  throw new Error('no run of four free ports found')
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** Whether something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.setTimeout(1000)
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => (socket.destroy(), resolve(false)))
  })
}

/** Processes whose command line mentions `needle` (wrangler's --persist-to, workerd's entry socket). */
function processesMentioning(needle: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      if (cmd.includes(needle)) found.push(`${pid}: ${cmd.slice(0, 160)}`)
    } catch {
      // gone meanwhile
    }
  }
  return found
}

describe('npm start: the multi-region demo', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hono-once-demo-'))
  let child: ChildProcess | undefined
  let out = ''

  afterAll(() => {
    // Only if the test failed before its own Ctrl-C: the whole group it started, as a terminal would.
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('serves three regions behind the gateway: replays, failover with eu down, eu catches up; Ctrl-C leaves nothing listening', async () => {
    const port = await freePortRun()
    const ports = [port, port + 1, port + 2, port + 3]
    // `npm start` in a process group of its own, like a terminal's foreground job, so Ctrl-C can reach all of it.
    child = spawn('npm', ['start'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: String(port), ONCE_DEMO_DIR: dataDir } })
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()))
    // 'close': npm and everything that shares its output (tsx, the demo) are gone.
    const closed = new Promise<string>((resolve) => child!.once('close', (code, signal) => resolve(signal ?? `exit ${code}`)))
    const base = `http://127.0.0.1:${port}`

    await pollUntil('npm start to print its banner', () => (out.includes('Live requests:') ? true : child!.exitCode !== null ? false : undefined), {
      timeoutMs: 45_000,
      intervalMs: 100,
      describe: () => out.slice(-3000),
    }).then((ok) => expect(ok, out).toBe(true))
    expect(out).toContain(`gateway      ${base}`)
    expect(out).toMatch(new RegExp(`status page  ${base}/__once/status#token=[0-9a-f]{32}`))
    for (const [i, name] of ['eu', 'us', 'ap'].entries()) expect(out).toContain(`region ${name}    http://127.0.0.1:${port + 1 + i}`)
    expect(out).toContain(`curl -X POST ${base}/__demo/regions/eu/down`)

    const lines: string[] = []
    const tour = await runDemo(base, (l) => lines.push(l), { catchUpTimeoutMs: 20_000 })

    // Replays: one deposit applied once, the repeats get the stored answer.
    expect(tour.sameKey.map((a) => [a.status, a.replayed, a.balance])).toEqual([
      [201, false, 100],
      [201, true, 100],
      [201, true, 100],
    ])
    // eu slow: the read is hedged away from it, the write answered by a faster replica.
    expect(tour.slowRead.status).toBe(200)
    expect(tour.slowRead.origin).not.toBe('eu')
    expect(tour.slowWrite.status).toBe(201)
    expect(tour.slowWrite.origin).not.toBe('eu')
    // eu down: the write still succeeds, answered by another region; reads fail over.
    expect(tour.downWrite.status).toBe(201)
    expect(tour.downWrite.origin).toMatch(/^(us|ap)$/)
    expect(tour.downWrite.balance).toBe(160)
    for (const read of tour.downReads) {
      expect(read.status).toBe(200)
      expect(read.origin).toMatch(/^(us|ap)$/)
      expect(read.balance).toBe(160)
    }
    expect(tour.whileDown).toEqual({ eu: 110, us: 160, ap: 160 })
    // eu back: the gateway's stable area fed it what it missed.
    expect(tour.afterUp).toEqual({ eu: 160, us: 160, ap: 160 })

    // The live lines: one per request, with key, region, replayed.
    await pollUntil('the live lines of the tour', () => (/POST \/accounts\/tour-\S+\/deposits\s+key=dep-\S+\s+→ 201 {2}eu .* replayed/.test(out) ? true : undefined), {
      timeoutMs: 5000,
      describe: () => out.slice(-3000),
    })
    expect(out).toMatch(/region eu is DOWN/)
    expect(out).toMatch(/→ 201 {2}(us|ap) /)

    // Ctrl-C: SIGINT to the foreground group.
    process.kill(-child.pid!, 'SIGINT')
    const how = await Promise.race([closed, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))])
    // npm re-raises the SIGINT it got with its child; the demo itself exits 0.
    expect(['exit 0', 'SIGINT'], out.slice(-3000)).toContain(how)
    expect(out).toContain('Stopped; nothing listens on')
    await pollUntil('every port to be closed', async () => ((await Promise.all(ports.map(listening))).some(Boolean) ? undefined : true), {
      timeoutMs: 5000,
      describe: async () => Object.fromEntries(await Promise.all(ports.map(async (p) => [p, await listening(p)]))),
    })
    expect(processesMentioning(dataDir)).toEqual([])
    expect(processesMentioning(`entry=127.0.0.1:${port} `)).toEqual([])
  })
})

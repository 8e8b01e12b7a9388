import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDemo, type RunningDemo } from '../../scripts/start.js'
import { launchBrowser, type BrowserChoice } from './helpers/browser.js'

describe('the status page in headless Chromium (the demo gateway under wrangler dev, three regions)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hono-once-status-'))
  const profile = mkdtempSync(join(tmpdir(), 'hono-once-chromium-'))
  let demo: RunningDemo | undefined
  let browser: Browser | undefined
  let choice: BrowserChoice
  let page: Page

  beforeAll(async () => {
    const launched = launchBrowser(profile)
    ;[demo, { browser, choice }] = await Promise.all([
      startDemo({ port: 0, originPorts: [0, 0, 0], dataDir, onLine: () => undefined, timeoutMs: 45_000 }),
      launched,
    ])
    // Which browser ran, and how long the packaged one took to unpack (the suite's log shows it).
    console.info(`status page: Chromium from ${choice.source} (${choice.executablePath}), ready in ${choice.resolveMs} ms`)
    page = await browser.newPage()
  })

  afterAll(async () => {
    await browser?.close()
    await demo?.stop()
    rmSync(dataDir, { recursive: true, force: true })
    rmSync(profile, { recursive: true, force: true })
  })

  const read = async (account: string) => {
    const res = await fetch(`${demo!.url}/accounts/${account}`, { signal: AbortSignal.timeout(10_000) })
    await res.body?.cancel()
    return res.status
  }
  const control = async (region: string, action: 'down' | 'up') => {
    const res = await fetch(`${demo!.url}/__demo/regions/${region}/${action}`, { method: 'POST', signal: AbortSignal.timeout(10_000) })
    expect(res.status).toBe(200)
    await res.body?.cancel()
  }
  it('ran in a real browser: the one chosen started and answers', async () => {
    expect(['CHROMIUM_PATH', 'system', '@sparticuz/chromium']).toContain(choice.source)
    expect(await browser!.version()).toMatch(/Chrom/)
  })

  const stateOf = (name: string) => page.$eval(`#origins tr[data-origin="${name}"] td.state`, (td) => td.textContent)

  it("keeps its secrets off every command line of the demo's processes (which any local user's ps shows)", () => {
    const pgid = demo!.dev.process.pid!
    const cmdlines: string[] = []
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        // Field 5 of /proc/<pid>/stat is the process group, after the command name in parentheses.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) cmdlines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))
      } catch {
        // gone meanwhile
      }
    }
    expect(cmdlines.some((line) => line.includes('wrangler'))).toBe(true)
    for (const line of cmdlines) expect(line).not.toContain(demo!.statusToken)
  })

  it('needs the token: 401 problem without it (the figures; the page itself holds none)', async () => {
    const res = await fetch(`${demo!.url}/__once/status`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) })
    expect(res.status).toBe(401)
    expect(res.headers.get('content-type')).toContain('application/problem+json')
    await res.body?.cancel()
  })

  it('shows every region up, then eu down once its breaker opens, then up again; the chart has a line per region', async () => {
    // Traffic first, so the chart has points: writes replicate to all three regions, reads go to eu.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${demo!.url}/accounts/page/deposits`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `"page-${i}"` },
        body: JSON.stringify({ amount: 10 }),
        signal: AbortSignal.timeout(10_000),
      })
      expect(res.status).toBe(201)
      await res.body?.cancel()
    }
    expect(await read('page')).toBe(200)

    // #token= (never sent to the server) goes to sessionStorage and leaves the address bar; the page reads the JSON with it.
    const res = await page.goto(demo!.statusUrl, { waitUntil: 'load' })
    expect(res?.status()).toBe(200)
    expect(new URL(page.url()).search + new URL(page.url()).hash).toBe('')
    await page.waitForSelector('#origins tr[data-origin]', { timeout: 10_000 })
    expect(await page.$$eval('#origins tr[data-origin]', (rows) => rows.map((r) => r.getAttribute('data-origin')))).toEqual(['eu', 'us', 'ap'])
    for (const name of ['eu', 'us', 'ap']) expect(await stateOf(name)).toBe('up')
    const lines = await page.$$eval('svg#chart polyline', (ps) => ps.map((p) => ({ name: p.querySelector('title')?.textContent, points: p.getAttribute('points') ?? '' })))
    expect(lines.map((l) => l.name)).toEqual(['eu', 'us', 'ap'])
    for (const line of lines) expect(line.points.trim().split(/\s+/).length).toBeGreaterThan(0)
    expect(lines.find((l) => l.name === 'us')!.points).toMatch(/^[\d.]+,[\d.]+/)

    // eu goes down: reads fail over to us, and eu's failures open its breaker (the demo's: 3 failures).
    await control('eu', 'down')
    for (let i = 0; i < 4; i++) expect(await read('page')).toBe(200)
    // The page refreshes itself (every refreshMs, 5 s): no reload.
    await page.waitForFunction(() => document.querySelector('#origins tr[data-origin="eu"] td.state')?.textContent === 'down', { timeout: 10_000, polling: 100 })
    expect(await page.$eval('#origins tr[data-origin="eu"] td.state', (td) => td.className)).toContain('down')
    expect(await stateOf('us')).toBe('up')
    expect(await stateOf('ap')).toBe('up')

    // eu is back: after the breaker's cooldown (5 s in the demo) a read probes it, and the row turns up again.
    await control('eu', 'up')
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline && (await stateOf('eu')) !== 'up') {
      expect(await read('page')).toBe(200)
      await new Promise((r) => setTimeout(r, 500))
    }
    await page.waitForFunction(() => document.querySelector('#origins tr[data-origin="eu"] td.state')?.textContent === 'up', { timeout: 5000, polling: 100 })
    expect(await page.$$eval('svg#chart polyline', (ps) => ps.length)).toBe(3)
  })
})

describe('a browser that cannot start', () => {
  it('fails with a message naming the missing libraries and how to get them', async () => {
    // A stand-in Chromium that fails as the packaged one does on a system without NSS.
    const dir = mkdtempSync(join(tmpdir(), 'hono-once-nochromium-'))
    const fake = join(dir, 'chromium')
    writeFileSync(fake, '#!/bin/sh\necho "$0: error while loading shared libraries: libnss3.so: cannot open shared object file: No such file or directory" >&2\nexit 127\n')
    chmodSync(fake, 0o755)
    const saved = process.env.CHROMIUM_PATH
    process.env.CHROMIUM_PATH = fake
    try {
      const error = await launchBrowser(join(dir, 'profile')).then(
        () => undefined,
        (e: unknown) => e as Error,
      )
      expect(error?.message).toContain('Missing system libraries: libnss3.so')
      expect(error?.message).toContain('apt-get install -y libnss3')
      expect(error?.message).toContain('CHROMIUM_PATH')
    } finally {
      if (saved === undefined) delete process.env.CHROMIUM_PATH
      else process.env.CHROMIUM_PATH = saved
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

/**
 * The client in a real browser (headless Chromium), cross-origin, behind
 * Hono's `cors()`: what a page on another origin can and cannot see of
 * once()'s answers, and that every kind of body goes out the same on a retry.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import { build } from 'esbuild'
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import type { Browser } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { problem } from '../../src/shared/problem.js'
import { launchBrowser } from '../e2e/helpers/browser.js'

let api: ReturnType<typeof serve>
let page: Server
let browser: Browser
let apiUrl = ''
let pageUrl = ''
const profile = mkdtempSync(join(tmpdir(), 'client-browser-'))
/** What the API received, per path: key, content type and body bytes (base64). */
const seen: { path: string; key: string | undefined; type: string | undefined; bytes: string }[] = []

beforeAll(async () => {
  const bundle = (await build({ entryPoints: ['src/client/index.ts'], bundle: true, format: 'esm', write: false, platform: 'browser' })).outputFiles[0]!.text
  page = createServer((req, res) => {
    if (req.url === '/client.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle)
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>client</title>')
  })
  await new Promise<void>((r) => page.listen(0, '127.0.0.1', r))
  pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}`

  // Per path: the first call gets what once() answers a duplicate while the original runs (or a 503), the second the replay.
  const counts = new Map<string, number>()
  const app = new Hono()
  app.use('/hidden/*', cors({ origin: pageUrl }))
  // As docs/client.md shows it.
  app.use('/exposed/*', cors({ origin: pageUrl, credentials: true, exposeHeaders: ['Retry-After', 'Idempotent-Replayed'] }))
  app.on(['POST', 'PATCH'], '*', async (c) => {
    const bytes = Buffer.from(await c.req.arrayBuffer()).toString('base64')
    seen.push({ path: c.req.path, key: c.req.header('idempotency-key'), type: c.req.header('content-type'), bytes })
    const n = (counts.get(c.req.path) ?? 0) + 1
    counts.set(c.req.path, n)
    if (n > 1) return c.text('ok', 201, { 'idempotent-replayed': 'true' })
    if (c.req.path.endsWith('/deposits')) return problem('in-flight', { detail: 'still running', instance: c.req.path, headers: { 'retry-after': '1' } })
    return c.body(null, 503, { 'retry-after': '0' })
  })
  await new Promise<void>((resolve) => {
    api = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
      apiUrl = `http://127.0.0.1:${info.port}`
      resolve()
    })
  })
  ;({ browser } = await launchBrowser(profile))
}, 90_000)

afterAll(async () => {
  await browser?.close()
  api?.close()
  page?.close()
  rmSync(profile, { recursive: true, force: true })
})

/** Runs `body` (a script's text, so vitest does not rewrite its import) in a page of the other origin. */
async function inPage<T>(body: string): Promise<T> {
  const tab = await browser.newPage()
  try {
    await tab.goto(pageUrl)
    return (await tab.evaluate(`(async () => {
      const { onceFetch, onceInfo } = await import('${pageUrl}/client.js')
      ${body}
    })()`)) as T
  } finally {
    await tab.close()
  }
}

describe('the client in a browser, cross-origin behind cors()', () => {
  it('waits on a 409 in flight by its problem type even where cors() hides Retry-After; exposing the two headers makes the replay read as one', async () => {
    type Out = { status: number; retries: { reason: string; delayMs: number }[]; info: { attempts: number; replayed: boolean } }
    const call = (prefix: string) =>
      inPage<Out>(`
        const retries = []
        const res = await onceFetch('${apiUrl}${prefix}/deposits', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":100}' }, {
          budget: false, onRetry: (i) => retries.push({ reason: i.reason, delayMs: i.delayMs }),
        })
        return { status: res.status, retries, info: onceInfo(res) }`)
    const hidden = await call('/hidden')
    expect(hidden).toMatchObject({ status: 201, retries: [{ reason: 'in-flight', delayMs: 1000 }], info: { attempts: 2 } })
    // Not exposed, the header cannot be read: the page cannot tell a replay (docs/client.md says so).
    expect(hidden.info.replayed).toBe(false)
    const exposed = await call('/exposed')
    expect(exposed).toMatchObject({ status: 201, retries: [{ reason: 'in-flight', delayMs: 1000 }], info: { attempts: 2, replayed: true } })
  }, 60_000)

  it('FormData, Blob, URLSearchParams, a stream and keepalive/credentials: the same key, type and bytes on the retry', async () => {
    const out = await inPage<{ path: string; status: number; info: { attempts: number; replayed: boolean } }[]>(`
      const fd = new FormData(); fd.append('a', '1'); fd.append('f', new Blob(['xyz'], { type: 'text/plain' }), 'f.txt')
      const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('streamed')); c.close() } })
      const cases = [['/fd', { body: fd }], ['/blob', { body: new Blob(['b'], { type: 'application/octet-stream' }) }],
        ['/params', { body: new URLSearchParams({ a: '1 2' }) }], ['/stream', { body: stream, duplex: 'half' }],
        ['/keepalive', { body: '{}', keepalive: true, credentials: 'include', method: 'PATCH' }]]
      const results = []
      for (const [path, init] of cases) {
        const res = await onceFetch('${apiUrl}/exposed' + path, { method: 'POST', ...init }, { budget: false, baseDelayMs: 1 })
        results.push({ path, status: res.status, info: onceInfo(res) })
      }
      return results`)
    for (const r of out) expect(r).toMatchObject({ status: 201, info: { attempts: 2, replayed: true } })
    for (const path of ['/fd', '/blob', '/params', '/stream', '/keepalive']) {
      const [a, b] = seen.filter((s) => s.path === `/exposed${path}`)
      expect(a?.key).toMatch(/^"[0-9a-f-]{36}"$/)
      expect(b).toEqual(a)
    }
  }, 60_000)
})

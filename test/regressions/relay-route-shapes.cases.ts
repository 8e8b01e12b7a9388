/**
 * Review s31 `last`: relayPlanOf(c, self) (e693f41) over route shapes where once() is the route entry and proxy()
 * the next one, registered in other ways than app.post(path, once(), proxy()). Each write in flight must have its
 * relay stored (the alarm's resend of a dead Worker). Run under hono 4.13 (`--project workers`) and hono 4.6
 * (`-c test/review-s31/last/vitest.hono-min.config.ts`).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { newKey, relayRowsWhileInFlight } from '../helpers.js'

type Build = (o: () => ReturnType<typeof once>, p: () => ReturnType<typeof proxy>) => { request: Hono['request'] }
const onErr = <T extends Hono>(h: T): T => {
  h.onError((err, c) => c.json({ error: String(err) }, 500))
  return h
}

const shapes: Record<string, Build> = {
  'app.post (control)': (o, p) => new Hono().post('/v1/accounts/:id/deposits', o(), p()),
  'app.all': (o, p) => new Hono().all('/v1/accounts/:id/deposits', o(), p()),
  "app.on(['PUT','POST'])": (o, p) => new Hono().on(['PUT', 'POST'], '/v1/accounts/:id/deposits', o(), p()),
  'app.on(POST, [two paths])': (o, p) => new Hono().on('POST', ['/v1/accounts/:id/deposits', '/v1/legacy/*'], o(), p()),
  'basePath': (o, p) => new Hono().basePath('/v1').post('/accounts/:id/deposits', o(), p()),
  'app.use(path, once()) + app.post(path, proxy())': (o, p) => {
    const app = new Hono()
    app.use('/v1/accounts/*', o())
    app.post('/v1/accounts/:id/deposits', p())
    return app
  },
  'nested sub-apps, both with onError': (o, p) => {
    const inner = onErr(new Hono()).post('/:id/deposits', o(), p())
    const mid = onErr(new Hono()).route('/accounts', inner)
    return new Hono().route('/v1', mid)
  },
  'once() in the parent, proxy() in a sub-app with onError': (o, p) => {
    const sub = onErr(new Hono()).post('/:id/deposits', p())
    const app = new Hono()
    app.use('/v1/accounts/*', o())
    app.route('/v1/accounts', sub)
    return app
  },
  'once() in a sub-app with onError, proxy() in the parent after it': (o, p) => {
    const sub = onErr(new Hono())
    sub.use('/*', o())
    const app = new Hono()
    app.route('/v1/accounts', sub)
    app.post('/v1/accounts/:id/deposits', p())
    return app
  },
}

describe('relayPlanOf over route shapes', () => {
  for (const [name, build] of Object.entries(shapes)) {
    it(`${name}: a write in flight has its relay stored`, async () => {
      let release: (() => void) | undefined
      const hang = new Promise<void>((r) => (release = r))
      const realFetch = globalThis.fetch
      globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
        if (new URL(new Request(input, init).url).hostname !== 'hang.example') return realFetch(input, init)
        await hang
        return new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })
      }) as typeof fetch
      const origin = { name: 'eu', url: 'http://hang.example' }
      let rows: unknown
      try {
        const app = build(() => once({ replayCache: false }), () => proxy({ origins: [origin], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }))
        const key = newKey()
        const pending = app.request('/v1/accounts/a/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
        rows = await relayRowsWhileInFlight(key)
        release!()
        const res = await pending
        await res.body?.cancel()
        console.log(`${name}: ${res.status}; relay rows while in flight: ${JSON.stringify(rows)}`)
      } finally {
        // The files of the workers project share a runtime: a fetch left patched would answer every later file.
        release!()
        globalThis.fetch = realFetch
      }
      expect(rows).toEqual([{ state: 'processing' }])
    })
  }
})

import { describe, expect, it } from 'vitest'
import { statusPage } from '../../src/gateway/status-page.js'

/**
 * The status page's script, run against a small stand-in for the browser (the Chromium test,
 * test/e2e/status-page.test.ts, runs the real thing): where the token is kept and how it is sent.
 */

interface Element {
  hidden: boolean
  innerHTML: string
  textContent: string
  listeners: Record<string, (e: unknown) => void>
  addEventListener(type: string, fn: (e: unknown) => void): void
  reset(): void
}

function browser(url: string, answers: (init: { headers: Record<string, string> }) => { status: number; body?: unknown }) {
  const elements = new Map<string, Element>()
  const element = (selector: string): Element => {
    let e = elements.get(selector)
    if (!e) {
      const el: Element = { hidden: selector === '#login', innerHTML: '', textContent: '', listeners: {}, addEventListener: (t, fn) => void (el.listeners[t] = fn), reset: () => {} }
      elements.set(selector, (e = el))
    }
    return e
  }
  const storage = new Map<string, string>()
  const address = new URL(url)
  const requests: { url: string; headers: Record<string, string>; credentials: string }[] = []
  const timers: number[] = []
  const globals = {
    document: { querySelector: element, addEventListener: () => {}, hidden: false },
    location: {
      get hash() {
        return address.hash
      },
      get pathname() {
        return address.pathname
      },
      get search() {
        return address.search
      },
    },
    history: { replaceState: (_s: unknown, _t: string, to: string) => void (address.href = new URL(to, address).href) },
    sessionStorage: { getItem: (k: string) => storage.get(k) ?? null, setItem: (k: string, v: string) => void storage.set(k, v), removeItem: (k: string) => void storage.delete(k) },
    fetch: async (to: string, init: { headers: Record<string, string>; credentials: string }) => {
      requests.push({ url: to, headers: init.headers, credentials: init.credentials })
      const { status, body } = answers(init)
      return { status, ok: status < 300, json: async () => body }
    },
    setTimeout: (_fn: () => void, ms: number) => (timers.push(ms), timers.length),
    clearTimeout: () => {},
    FormData: class {
      constructor(private readonly form: { token: string }) {}
      get() {
        return this.form.token
      }
    },
  }
  const html = statusPage()
  const script = html.slice(html.indexOf('<script>') + '<script>'.length, html.indexOf('</script>'))
  const run = () => new Function(...Object.keys(globals), script)(...Object.values(globals))
  return { run, element, storage, address, requests, timers }
}

const status = {
  origins: [{ name: 'eu', url: 'https://eu.example', state: 'probing', breaker: 'half-open', p50Ms: 12, p95Ms: 30, recentMs: [10, 12] }],
  domains: [{ domain: 'acct-1', head: 3, replicas: [{ name: 'eu', state: 'lagging', acked: 1, lag: 2, reason: null }], reportedAt: 1 }],
  domainCount: 1,
  suspects: [],
  joins: [{ name: 'eu', domains: 4, upToDate: 1, joining: 2, resync: 0, waiting: 1 }],
  counts: { admits: 3, replays: 1, conflicts: 0, mismatches: 1, since: 1 },
  refreshMs: 5000,
  reportedAt: null,
  generatedAt: '2026-01-01T00:00:00.000Z',
}
const settle = () => new Promise((r) => setTimeout(r, 0))

describe('the status page script', () => {
  it('takes the token from the #token= fragment into sessionStorage, drops it from the address, and sends it only as a bearer', async () => {
    const page = browser('https://gw.example/__once/status#token=s3cret', () => ({ status: 200, body: status }))
    page.run()
    await settle()
    expect(page.address.href).toBe('https://gw.example/__once/status')
    expect(page.storage.get('hono-once-status-token')).toBe('s3cret')
    expect(page.requests).toEqual([{ url: '/__once/status', headers: { accept: 'application/json', authorization: 'Bearer s3cret' }, credentials: 'omit' }])
    expect(page.element('#origins tbody').innerHTML).toContain('<td class="state probing">probing</td>')
    expect(page.element('#domains tbody').innerHTML).toContain('acct-1')
    expect(page.element('#joins tbody').innerHTML).toContain('<td class="joining">1 / 4</td><td>2</td>') // a replica joining: 1 of 4 domains up to date
    expect(page.element('#counts').textContent).toContain('mismatches 1')
    expect(page.timers).toEqual([5000]) // asks again after refreshMs
  })

  it('without a token asks for it and reads nothing; a refused token is forgotten and asked for again', async () => {
    const page = browser('https://gw.example/__once/status', () => ({ status: 401 }))
    page.run()
    await settle()
    expect(page.requests).toEqual([])
    expect(page.element('#login').hidden).toBe(false)
    page.element('#login').listeners.submit!({ preventDefault: () => {}, target: { token: 'wrong', reset: () => {} } })
    await settle()
    expect(page.requests.map((r) => r.headers.authorization)).toEqual(['Bearer wrong'])
    expect(page.storage.has('hono-once-status-token')).toBe(false)
    expect(page.element('#login').hidden).toBe(false)
    expect(page.element('#problem').textContent).toMatch(/refused/)
  })

  it("shows a failed read's problem detail (a missing binding, a status token too short to open the page)", async () => {
    const detail = 'The ONCE_STATUS_TOKEN secret is shorter than 16 characters, so the status page stays closed.'
    const page = browser('https://gw.example/__once/status#token=s3cret', () => ({ status: 500, body: { type: 'https://hono-once.dev/problems/misconfigured', detail } }))
    page.run()
    await settle()
    expect(page.element('#problem').textContent).toBe(`The status read failed: 500 ${detail}`)
  })

  it("says why when the server's page is closed (no ONCE_STATUS_TOKEN set), and asks again", async () => {
    const detail = 'The status page is closed: set the ONCE_STATUS_TOKEN secret to open it.'
    const page = browser('https://gw.example/__once/status#token=s3cret-token-0123', () => ({ status: 401, body: { detail } }))
    page.run()
    await settle()
    expect(page.element('#problem').textContent).toBe(`The status token was refused. ${detail}`)
    expect(page.element('#login').hidden).toBe(false)
  })

  it('asks again for a token no header can carry (a pasted line break, a non-Latin-1 character), sending nothing', async () => {
    for (const token of ['abc%0Adef', '%E2%82%AC-euro-token']) {
      const page = browser(`https://gw.example/__once/status#token=${token}`, () => ({ status: 200, body: status }))
      page.run()
      await settle()
      expect(page.requests).toEqual([])
      expect(page.storage.has('hono-once-status-token')).toBe(false)
      expect(page.element('#problem').textContent).toMatch(/cannot be sent in a header/)
    }
  })

  it('takes a malformed fragment as it is, and trims a pasted token', async () => {
    const page = browser('https://gw.example/__once/status#token=%E0-token', () => ({ status: 200, body: status }))
    page.run()
    await settle()
    expect(page.requests.map((r) => r.headers.authorization)).toEqual(['Bearer %E0-token'])
    const pasted = browser('https://gw.example/__once/status', () => ({ status: 200, body: status }))
    pasted.run()
    await settle()
    pasted.element('#login').listeners.submit!({ preventDefault: () => {}, target: { token: '  s3cret\n', reset: () => {} } })
    await settle()
    expect(pasted.requests.map((r) => r.headers.authorization)).toEqual(['Bearer s3cret'])
  })
})

/**
 * The client where the runtime has no `AbortSignal.any` (Safari < 17.4,
 * Chrome < 116, Firefox < 124): a call with a signal still runs, and the
 * signal still stops it. Node stands in for such a runtime here.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { onceFetch, OnceFetchError } from '../../src/client/index.js'

let server: Server
let url = ''
let hits = 0

beforeAll(async () => {
  // Answers after 300 ms, so a caller's abort can land while an attempt is under way.
  server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      hits++
      setTimeout(() => res.writeHead(201).end('ok'), 300)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/deposits`
})

afterAll(() => {
  server.closeAllConnections()
  server.close()
})

describe('a runtime without AbortSignal.any', () => {
  it('sends a call that has a signal, and the signal still stops one', async () => {
    const any = AbortSignal.any
    // @ts-expect-error a runtime that lacks it
    delete AbortSignal.any
    try {
      const res = await onceFetch(url, { method: 'POST', body: 'x', signal: new AbortController().signal }, { budget: false })
      expect(res.status).toBe(201)
      expect(hits).toBe(1)
      const controller = new AbortController()
      setTimeout(() => controller.abort(new Error('user left')), 50)
      const out = await onceFetch(url, { method: 'POST', body: 'x', signal: controller.signal }, { budget: false }).catch((e: unknown) => e)
      expect(out).toBeInstanceOf(OnceFetchError)
      expect(out).toMatchObject({ reason: 'aborted' })
    } finally {
      AbortSignal.any = any
    }
  })
})

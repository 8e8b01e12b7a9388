/**
 * onceFetch as a drop-in for fetch, against a real HTTP server (Node's fetch): a request's signal is read as fetch
 * reads it, and every failure is a rejection, never a synchronous throw.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OnceFetchError, onceFetch } from '../../src/client/index.js'

let url = ''
let hits = 0
const server = createServer((req, res) => {
  hits++
  req.resume().on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end('{}'))
})
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

const abortedRequest = () => new Request(url, { method: 'POST', body: 'x', signal: AbortSignal.abort() })

describe('onceFetch reads the signal as fetch does', () => {
  it("{ signal: null } drops the input Request's signal: an already aborted one does not stop the call", async () => {
    const plain = await fetch(abortedRequest(), { signal: null })
    expect(plain.status).toBe(201)
    hits = 0
    const res = await onceFetch(abortedRequest(), { signal: null })
    expect(res.status).toBe(201)
    expect(hits).toBe(1)
  })

  it("keeps the input Request's signal without init, with an init that has none, and with signal: undefined", async () => {
    for (const init of [undefined, { headers: { 'x-a': '1' } }, { signal: undefined }]) {
      await expect(fetch(abortedRequest(), init)).rejects.toThrow()
      const err = await onceFetch(abortedRequest(), init).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(OnceFetchError)
      expect((err as OnceFetchError).reason).toBe('aborted')
    }
  })

  it("init's own signal wins over the input's", async () => {
    const res = await onceFetch(abortedRequest(), { signal: new AbortController().signal })
    expect(res.status).toBe(201)
    const err = await onceFetch(new Request(url, { method: 'POST', body: 'x' }), { signal: AbortSignal.abort() }).catch((e: unknown) => e)
    expect((err as OnceFetchError).reason).toBe('aborted')
  })
})

describe('onceFetch fails as fetch does: by rejecting', () => {
  it.each([
    ['a bad option', () => onceFetch(url, { method: 'POST', body: 'x' }, { retries: 99 }), /retries/],
    ['an unknown option', () => onceFetch(url, { method: 'POST', body: 'x' }, { retry: 1 } as never), /retry: unrecognized option/],
    ['options that are not an object', () => onceFetch(url, {}, 'fast' as never), /expected an object/],
    ['a bad URL', () => onceFetch('http://[bad', { method: 'POST' }), /./],
    ['a bad method', () => onceFetch(url, { method: 'GET ME' }), /./],
  ])('%s', async (_name, call, message) => {
    let p: Promise<Response> | undefined
    expect(() => {
      p = call()
    }).not.toThrow()
    await expect(p).rejects.toThrow(message)
  })
})

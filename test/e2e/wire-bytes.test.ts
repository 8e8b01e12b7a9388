import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWranglerDev, type DevServer } from '../../scripts/wrangler-dev.js'

const persistTo = mkdtempSync(join(tmpdir(), 'hono-once-bytes-'))
let dev: DevServer
beforeAll(async () => {
  dev = await startWranglerDev({ config: 'test/e2e/fixtures/wrangler.toml', persistTo })
})
afterAll(async () => {
  await dev?.stop('SIGKILL')
  rmSync(persistTo, { recursive: true, force: true })
})

/** A POST whose answer is read as raw bytes (Node's fetch would gunzip it). */
function rawPost(path: string, key: string | undefined, extra: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const url = new URL(dev.url)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'POST', headers: { ...(key === undefined ? {} : { 'idempotency-key': `"${key}"` }), 'accept-encoding': 'gzip', ...extra } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Sends `head` (request line and headers, raw bytes) over a socket and returns the status line and body. */
function rawRequest(head: Buffer): Promise<string> {
  const url = new URL(dev.url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(head))
    let out = ''
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')))
    socket.on('end', () => resolve(out))
    socket.on('error', reject)
  })
}

describe('bytes on the wire, under wrangler dev', () => {
  it('replays a reply the handler already gzipped byte for byte, never gzipped twice (issue 7.7)', async () => {
    const key = `gz-${Date.now()}`
    const first = await rawPost('/gzip', key)
    const again = await rawPost('/gzip', key)
    expect(first.status).toBe(201)
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(again.headers['content-encoding']).toBe('gzip')
    expect(again.body.equals(first.body)).toBe(true)
    expect(JSON.parse(gunzipSync(again.body).toString())).toMatchObject({ report: expect.stringContaining('all good') })
  })

  it('replays a reply whose Content-Encoding (br, gzip) the runtime applies as the runtime does: it decodes to the first answer (review s29 S10)', async () => {
    const decode = (coding: unknown, body: Buffer) => (coding === 'br' ? brotliDecompressSync(body) : coding === 'gzip' ? gunzipSync(body) : body).toString()
    for (const coding of ['br', 'gzip']) {
      const key = `${coding}-runtime-${Date.now()}`
      const first = await rawPost(`/${coding}-by-runtime`, key, { 'accept-encoding': coding })
      const again = await rawPost(`/${coding}-by-runtime`, key, { 'accept-encoding': coding })
      expect(first.headers['content-encoding'], coding).toBe(coding)
      expect(again.headers['idempotent-replayed']).toBe('true')
      expect(again.headers['content-encoding'], coding).toBe(coding)
      expect(decode(again.headers['content-encoding'], again.body), coding).toBe(decode(first.headers['content-encoding'], first.body))
      expect(JSON.parse(decode(coding, again.body)), coding).toMatchObject({ report: expect.stringContaining('all good') })
    }
  })

  it("sends an OnceObject app's already-gzipped reply as it is: the first answer, the replay from the object, and an ungated request", async () => {
    const key = `gz-object-${Date.now()}`
    const first = await rawPost('/object-gzip', key)
    const again = await rawPost('/object-gzip', key)
    const keyless = await rawPost('/object-gzip', undefined)
    expect(first.status).toBe(201)
    expect(again.headers['idempotent-replayed']).toBe('true')
    for (const answer of [first, again, keyless]) {
      expect(answer.headers['content-encoding']).toBe('gzip')
      expect(JSON.parse(gunzipSync(answer.body).toString())).toMatchObject({ report: expect.stringContaining('all good') })
    }
    expect(again.body.equals(first.body)).toBe(true)
  })

  it("sends an origin's own gzip answer on Workers as it is: the receiver's first answer and its replay from D1 (review s27 origin F8)", async () => {
    const id = { 'once-request-id': `gz-origin-${Date.now()}` }
    const first = await rawPost('/origin-gzip', undefined, id)
    const again = await rawPost('/origin-gzip', undefined, id)
    expect(first.status).toBe(201)
    for (const answer of [first, again]) {
      expect(answer.headers['once-applied']).toBe('?1')
      expect(answer.headers['content-encoding']).toBe('gzip')
      expect(JSON.parse(gunzipSync(answer.body).toString())).toMatchObject({ report: expect.stringContaining('all good') })
    }
    expect(again.body.equals(first.body)).toBe(true)
  })

  it('refuses keys wrapped in bytes outside printable ASCII; only SP and HTAB around a value are stripped by the runtime (issue 7.12)', async () => {
    const key = `bytes-${Date.now()}`
    const send = (value: Buffer) =>
      rawRequest(Buffer.concat([Buffer.from(`POST /echo-key HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\nIdempotency-Key: `), value, Buffer.from('\r\n\r\n')]))
    const plain = await send(Buffer.from(key))
    expect(plain).toMatch(/^HTTP\/1.1 201/)
    expect(await send(Buffer.from(` \t${key}\t `))).toMatch(/^HTTP\/1.1 201[\s\S]*Idempotent-Replayed: true/i)
    const around = {
      VT: Buffer.from([0x0b]),
      FF: Buffer.from([0x0c]),
      NBSP: Buffer.from([0xc2, 0xa0]),
      BOM: Buffer.from([0xef, 0xbb, 0xbf]),
      'U+2028': Buffer.from([0xe2, 0x80, 0xa8]),
      'U+3000': Buffer.from([0xe3, 0x80, 0x80]),
    }
    for (const [name, bytes] of Object.entries(around)) {
      for (const value of [Buffer.concat([Buffer.from(key), bytes]), Buffer.concat([bytes, Buffer.from(key)])]) {
        const answer = await send(value)
        // 400 from once() (or from the runtime itself): never the plain key's replay.
        expect(answer, `${name}: ${answer.slice(0, 200)}`).toMatch(/^HTTP\/1.1 400/)
      }
    }
  })
})

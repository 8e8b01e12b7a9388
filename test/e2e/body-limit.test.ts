import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWranglerDev, type DevServer } from '../../scripts/wrangler-dev.js'

const persistTo = mkdtempSync(join(tmpdir(), 'hono-once-limit-'))
let dev: DevServer
let agent: Agent
beforeAll(async () => {
  dev = await startWranglerDev({ config: 'test/e2e/fixtures/wrangler.toml', persistTo })
  agent = new Agent({ keepAlive: true, maxSockets: 8 })
})
afterAll(async () => {
  agent?.destroy()
  await dev?.stop('SIGKILL')
  rmSync(persistTo, { recursive: true, force: true })
})

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))
const key = () => `"limit-${crypto.randomUUID()}"`

/** How a body is sent: its size, the size of each write, the pause between writes, and whether its length is declared. */
interface Shape {
  total: number
  chunk: number
  delayMs: number
  declared?: boolean
}

/** Over a kept-alive connection (node:http, chunked unless declared): the status line and the start of the body. */
function overHttp({ total, chunk, delayMs, declared }: Shape): Promise<string> {
  const url = new URL(dev.url)
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'idempotency-key': key() }
    if (declared) headers['content-length'] = String(total)
    const req = request({ host: url.hostname, port: url.port, path: '/small', method: 'POST', agent, headers }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d.toString()))
      res.on('end', () => resolve(`${res.statusCode} ${body.slice(0, 160)}`))
    })
    req.on('error', (err) => resolve(`error ${err.message}`))
    void (async () => {
      for (let sent = 0; sent < total; sent += chunk) {
        if (req.destroyed) return
        req.write(Buffer.alloc(Math.min(chunk, total - sent), 97))
        if (delayMs) await pause(delayMs)
      }
      req.end()
    })()
  })
}

/** Over a raw socket: the chunked framing written by hand, chunk by chunk; the status line. */
function overSocket({ total, chunk, delayMs }: Shape): Promise<string> {
  const url = new URL(dev.url)
  return new Promise((resolve) => {
    let out = ''
    const socket = connect(Number(url.port), url.hostname, async () => {
      socket.write(`POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nIdempotency-Key: ${key()}\r\nConnection: close\r\n\r\n`)
      for (let sent = 0; sent < total && !socket.destroyed; sent += chunk) {
        const n = Math.min(chunk, total - sent)
        socket.write(`${n.toString(16)}\r\n${'a'.repeat(n)}\r\n`)
        if (delayMs) await pause(delayMs)
      }
      if (!socket.destroyed) socket.write('0\r\n\r\n')
    })
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')))
    socket.on('close', () => resolve(out.split('\r\n')[0] ?? ''))
    socket.on('error', (err) => resolve(`error ${err.message}`))
  })
}

const runs = async (): Promise<number> => ((await (await fetch(`${dev.url}/small/runs`)).json()) as { runs: number }).runs

describe('a body over maxBodyBytes (1,024 bytes here), under wrangler dev (issue 16.5)', () => {
  it('is a 413 before the handler runs, whatever the chunking and timing, every time', async () => {
    const shapes: Shape[] = []
    for (const [total, chunk] of [[1025, 1025], [1100, 1025], [4096, 1024], [4096, 100], [2048, 1], [200_000, 16_384]] as const) {
      for (const delayMs of chunk === 1 ? [0] : [0, 1, 10]) shapes.push({ total, chunk, delayMs })
    }
    shapes.push({ total: 4096, chunk: 512, delayMs: 5, declared: true }, { total: 200_000, chunk: 16_384, delayMs: 0, declared: true })
    const before = await runs()
    const answers: string[] = []
    for (let round = 0; round < 4; round++) {
      // Each round sends every shape at once, both ways, so timings vary from round to round.
      answers.push(...(await Promise.all(shapes.flatMap((s) => (s.declared ? [overHttp(s)] : [overHttp(s), overSocket(s)])))))
    }
    const wrong = answers.filter((a) => !/^(HTTP\/1\.1 )?413\b/.test(a))
    expect(wrong, wrong.join('\n')).toEqual([])
    expect(answers.filter((a) => a.includes('body-too-large')).length).toBeGreaterThan(0)
    expect(await runs()).toBe(before)
  })

  it('lets a chunked body of exactly the limit through, whole', async () => {
    const before = await runs()
    const answer = await overHttp({ total: 1024, chunk: 100, delayMs: 1 })
    expect(answer).toMatch(/^201 .*"bytes":1024/)
    expect(await runs()).toBe(before + 1)
  })
})

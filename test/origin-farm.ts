/**
 * Vitest globalSetup (runs in Node): an "origin farm" on 127.0.0.1 that
 * tests running inside workerd drive over HTTP, since they cannot start
 * servers themselves. Each test asks for its own origins, so tests never
 * share counters or faults:
 *
 * - `POST /origins` `{ name, latencyMs?, secrets?, persist? }` → `{ name, url, id }`: a real bank origin
 *   (`examples/origin/server.ts`: @hono/node-server, onceReceiver, node:sqlite);
 * - `POST /origins/:id/restart` → the same origin, new process state, same database file and port (a crash);
 * - `POST /origins/:id/stop` → gone (connections refused);
 * - `POST /bad` `{ mode }` → a raw TCP server that misbehaves on purpose (see BAD_MODES).
 *
 * The farm's URL reaches the tests through `provide('farm', …)` / `inject('farm')`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createNetServer, type Server as NetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import type { TestProject } from 'vitest/node'

// The same declaration as in test/env.d.ts, which the Node program does not see.
declare module 'vitest' {
  export interface ProvidedContext {
    farm: string
  }
}
import { startOrigin, type RunningOrigin } from '../examples/origin/server.js'

/** Broken answers a bad origin can give, one per connection. */
/** The encoded-answer modes: the Content-Encoding named and the bytes sent (each decodes to {"ok":"<mode>"}, but x-custom and bad-deflate). */
const ENCODED: Record<string, () => [string, Buffer]> = {
  deflate: () => ['deflate', deflateSync(Buffer.from('{"ok":"deflated"}'))],
  // Raw deflate under the name deflate: what some servers send (RFC 9110 says zlib).
  'deflate-raw': () => ['deflate', deflateRawSync(Buffer.from('{"ok":"deflated"}'))],
  'x-custom': () => ['x-custom', Buffer.from('{"ok":"custom"}')],
  gzip: () => ['gzip', gzipSync(Buffer.from('{"ok":"gzip"}'))],
  'x-gzip': () => ['x-gzip', gzipSync(Buffer.from('{"ok":"x-gzip"}'))],
  // Codings are case-insensitive (RFC 9110 §8.4.1): the runtime decodes this one as it does gzip.
  'gzip-upper': () => ['GZIP', gzipSync(Buffer.from('{"ok":"gzip-upper"}'))],
  br: () => ['br', brotliCompressSync(Buffer.from('{"ok":"br"}'))],
  // Two codings, deflate applied first: decoded gzip then deflate.
  'deflate-gzip': () => ['deflate, gzip', gzipSync(deflateSync(Buffer.from('{"ok":"deflate-gzip"}')))],
  // Named deflate, but neither zlib nor raw deflate.
  'bad-deflate': () => ['deflate', Buffer.from('{"ok":"not deflated"}')],
}

const BAD_MODES = {
  /** Headers, then half the promised body, then the connection closes. */
  'cut-body': 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"half":',
  /** Content-Length larger than the body, then close. */
  'short-length': 'HTTP/1.1 201 Created\r\ncontent-length: 50\r\n\r\n{"ok":true}',
  /** An applied 201 whose body is `{"ok":"…"}` in the named Content-Encoding (built below; see ENCODED). */
  deflate: '',
  'deflate-raw': '',
  'x-custom': '',
  gzip: '',
  'x-gzip': '',
  'gzip-upper': '',
  br: '',
  'deflate-gzip': '',
  'bad-deflate': '',
  /** A redirect to somewhere else (must not be followed). */
  redirect: 'HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n',
  /** Not HTTP at all. */
  garbage: 'SSH-2.0-OpenSSH_9.6\r\n\u0000\u0001\u0002 nonsense \r\n\r\n',
  /** Header lines that break the grammar. */
  'bad-headers': 'HTTP/1.1 200 OK\r\nx-ok: fine\r\nbad header line\r\n: empty-name\r\ncontent-length: 2\r\n\r\nok',
  /** A body far over any sane limit (10 MB of 'a', chunked). */
  huge: 'huge',
  /** Accepts the connection and never answers. */
  hang: 'hang',
  /** A 20 MB body of "a", gzip-encoded to ~20 KB, with Content-Length the encoded size (as every compressing server sends it). */
  'gzip-bomb': 'gzip-bomb',
} as const

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'hono-once-farm-'))
  const origins = new Map<number, { origin: RunningOrigin; options: Parameters<typeof startOrigin>[0] }>()
  const bad: NetServer[] = []
  let next = 1

  const farm: Server = createHttpServer(async (req, res) => {
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    try {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      const input = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {}
      const path = req.url ?? ''
      if (req.method === 'POST' && path === '/origins') {
        const id = next++
        const options = {
          name: String(input.name ?? `o${id}`),
          latencyMs: Number(input.latencyMs ?? 0),
          dbPath: input.persist ? join(dir, `origin-${id}.db`) : ':memory:',
          ...(typeof input.secrets === 'object' && input.secrets !== null ? { secrets: input.secrets as Record<string, string> } : {}),
        }
        const origin = await startOrigin(options)
        origins.set(id, { origin, options })
        return send(200, { id, name: origin.name, url: origin.url })
      }
      const m = /^\/origins\/(\d+)\/(restart|stop)$/.exec(path)
      if (req.method === 'POST' && m) {
        const entry = origins.get(Number(m[1]))
        if (!entry) return send(404, { error: 'no such origin' })
        await entry.origin.close()
        if (m[2] === 'stop') return send(200, { stopped: true })
        const origin = await startOrigin({ ...entry.options, port: entry.origin.port })
        origins.set(Number(m[1]), { origin, options: entry.options })
        return send(200, { id: Number(m[1]), name: origin.name, url: origin.url })
      }
      if (req.method === 'POST' && path === '/bad') {
        const mode = String(input.mode) as keyof typeof BAD_MODES
        if (!(mode in BAD_MODES)) return send(400, { error: `mode must be one of ${Object.keys(BAD_MODES).join(', ')}` })
        const server = createNetServer((socket) => {
          socket.on('error', () => {})
          socket.once('data', (head: Buffer) => {
            if (mode === 'hang') return
            if (mode === 'gzip-bomb') {
              const gz = gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x61))
              socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\ncontent-length: ${gz.length}\r\n\r\n`)
              socket.end(gz)
              return
            }
            // Review s31 (input): an answer in an encoding named by the origin (applied, as a receiver marks it), with
            // the Accept-Encoding it was asked with in x-seen-accept-encoding.
            const encoded = ENCODED[mode as keyof typeof ENCODED]
            if (encoded) {
              const [name, body] = encoded()
              const seen = /^accept-encoding:[ \t]*(.*?)[ \t]*$/im.exec(String(head))?.[1] ?? ''
              socket.write(`HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-encoding: ${name}\r\nonce-applied: ?1\r\nx-seen-accept-encoding: ${seen}\r\ncontent-length: ${body.length}\r\n\r\n`)
              socket.end(body)
              return
            }
            if (mode === 'huge') {
              socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n')
              const chunk = 'a'.repeat(64 * 1024)
              for (let i = 0; i < 160; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
              socket.end('0\r\n\r\n')
              return
            }
            socket.end(BAD_MODES[mode])
          })
        })
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
        bad.push(server)
        const { port } = server.address() as { port: number }
        return send(200, { url: `http://127.0.0.1:${port}` })
      }
      send(404, { error: 'unknown farm route' })
    } catch (err) {
      send(500, { error: String(err) })
    }
  })
  await new Promise<void>((r) => farm.listen(0, '127.0.0.1', r))
  const { port } = farm.address() as { port: number }
  project.provide('farm', `http://127.0.0.1:${port}`)

  return async () => {
    for (const s of bad) s.close()
    await Promise.all([...origins.values()].map(({ origin }) => origin.close().catch(() => {})))
    await new Promise<void>((r) => farm.close(() => r()))
    rmSync(dir, { recursive: true, force: true })
  }
}

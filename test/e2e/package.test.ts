import { execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'

describe('the built package', () => {
  it('builds to ESM with types, and hono-once/client works in Node over a real socket', async () => {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'pipe' })
    const built = '../../dist/client/index.js' // not a literal import: dist/ exists only after the build above
    const client = (await import(built)) as typeof import('../../src/client/index.js')

    // An origin that applies each key once, and answers 503 to the first attempt of every call.
    const applied = new Map<string, number>()
    const attempts = new Map<string, number>()
    const server = createServer((req, res) => {
      const key = String(req.headers['idempotency-key'])
      attempts.set(key, (attempts.get(key) ?? 0) + 1)
      if (attempts.get(key) === 1) return void res.writeHead(503, { 'retry-after': '0' }).end()
      applied.set(key, (applied.get(key) ?? 0) + 1)
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as AddressInfo
    try {
      const calls = await Promise.all(
        Array.from({ length: 10 }, () => client.onceFetch(`http://127.0.0.1:${port}/pay`, { method: 'POST', body: '{}' }, { budget: false })),
      )
      expect(calls.map((r) => r.status)).toEqual(Array(10).fill(201))
      expect(calls.map((r) => client.onceInfo(r)?.attempts)).toEqual(Array(10).fill(2))
      expect([...applied.values()]).toEqual(Array(10).fill(1))
    } finally {
      server.close()
    }
  })
})

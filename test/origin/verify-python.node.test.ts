// docs/origin.md shows how to verify the edge's signature in Python with the standard library alone. This runs that
// very block (read from the markdown) against requests signed by src/shared/signature.ts, and checks that it accepts
// and refuses exactly what the receiver's own verifyRequest() does, so the snippet cannot rot.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { contentDigest } from '../../src/shared/content-digest.js'
import { signRequest, verifyRequest } from '../../src/shared/signature.js'
import { extractBlocks } from '../docs/blocks.js'

const python = spawnSync('python3', ['--version']).status === 0
if (!python) console.warn('verify-python.node.test.ts: skipped, python3 is not on this machine (the snippet in docs/origin.md is not checked)')

const snippet = (() => {
  const blocks = extractBlocks('docs/origin.md', readFileSync(join(process.cwd(), 'docs/origin.md'), 'utf8')).filter((b) => b.lang === 'python')
  expect(blocks, 'docs/origin.md has one python block').toHaveLength(1)
  return blocks[0]!.code
})()

const DRIVER = `
import json, sys
for case in json.load(sys.stdin):
    print(json.dumps(verify_once(case["method"], case["path"], case["query"], case["headers"], base64.b64decode(case["body"]), case["secrets"], case["now"])))
`

interface Case {
  name: string
  method: string
  path: string
  query: string
  headers: Record<string, string>
  body: string
  secrets: Record<string, string>
  now: number
}

const SECRET = 'python-verifies-this-0123456789'
const NOW = 1_800_000_000

/** A request as the edge sends it: Content-Digest, then the RFC 9421 signature over it and the Once-* headers. */
async function edgeRequest(url: string, body: string, extra: Record<string, string> = {}, nowSeconds = NOW) {
  const headers = new Headers({
    'content-type': 'application/json',
    'idempotency-key': '"k-1"',
    'once-request-id': '01J0000000000000000000000',
    'once-domain': 'acct a1',
    'once-sequence': '7',
    'once-attempt': '1',
    ...extra,
  })
  headers.set('content-digest', await contentDigest(new TextEncoder().encode(body)))
  const signed = signRequest({ keyid: 'ONCE_SIGNING_SECRET', secret: SECRET }, { method: 'POST', url, headers }, { nowSeconds })
  headers.set('signature-input', signed.signatureInput)
  headers.set('signature', signed.signature)
  return headers
}

function asCase(name: string, url: string, headers: Headers, body: string, secrets: Record<string, string> = { ONCE_SIGNING_SECRET: SECRET }): Case {
  const u = new URL(url)
  const fields: Record<string, string> = {}
  headers.forEach((value, key) => (fields[key] = value))
  return { name, method: 'POST', path: u.pathname, query: u.search.slice(1), headers: fields, body: Buffer.from(body).toString('base64'), secrets, now: NOW }
}

function runPython(cases: Case[]): (string | null)[] {
  const run = spawnSync('python3', ['-I', '-c', `${snippet}\n${DRIVER}`], { input: JSON.stringify(cases), encoding: 'utf8' })
  expect(run.stderr).toBe('')
  expect(run.status).toBe(0)
  return run.stdout.trim().split('\n').map((line) => JSON.parse(line) as string | null)
}

describe.skipIf(!python)("docs/origin.md's Python verifier (standard library only)", () => {
  it('accepts what the receiver accepts and refuses what it refuses, for the reason it names', async () => {
    const url = 'https://eu.example.com/accounts/a1/deposits'
    const withQuery = 'https://eu.example.com/accounts/a1/deposits?currency=EUR&note=a%20b'
    const body = '{"amount":100}'
    const good = await edgeRequest(url, body)
    const retyped = new Headers(good)
    retyped.set('once-sequence', '8')
    const noop = new Headers(good)
    noop.set('once-noop', '?1')
    const unsigned = new Headers(good)
    unsigned.delete('signature')
    const cases: [Case, string | null][] = [
      [asCase('signed by the edge', url, good, body), null],
      [asCase('with a query', withQuery, await edgeRequest(withQuery, body), body), null],
      [asCase('the query changed', `${withQuery}&x=1`, await edgeRequest(withQuery, body), body), 'mismatch'],
      [asCase('a Once-* header changed', url, retyped, body), 'mismatch'],
      [asCase('a Once-* header added', url, noop, body), 'uncovered'],
      [asCase('another body', url, good, '{"amount":1000}'), 'digest'],
      [asCase('expired', url, await edgeRequest(url, body, {}, NOW - 301), body), 'expired'],
      [asCase('created over 60 s ahead', url, await edgeRequest(url, body, {}, NOW + 61), body), 'expired'],
      [asCase('an unknown keyid', url, good, body, { OTHER: SECRET }), 'unknown-key'],
      [asCase('another secret', url, good, body, { ONCE_SIGNING_SECRET: 'not-the-secret-0123456789' }), 'mismatch'],
      [asCase('no signature', url, unsigned, body), 'missing'],
    ]
    const verdicts = runPython(cases.map(([c]) => c))
    expect(Object.fromEntries(cases.map(([c], i) => [c.name, verdicts[i]]))).toEqual(Object.fromEntries(cases.map(([c, want]) => [c.name, want])))

    // The receiver's verifier agrees on every case but the body (it checks that after, with checkContentDigest).
    for (const [c, want] of cases) {
      const request = new Request(`https://eu.example.com${c.path}${c.query ? `?${c.query}` : ''}`, { method: 'POST', headers: c.headers })
      const verdict = await verifyRequest(request, { secrets: c.secrets, nowSeconds: NOW })
      expect(verdict.ok, c.name).toBe(want === null || want === 'digest')
    }
  })
})

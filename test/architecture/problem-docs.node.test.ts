// One name per concept across the code and the docs: every problem type the code can answer with is documented,
// with the status the code gives it, in docs/errors.md (the edge's) or docs/origin.md (the receiver's), and the docs
// name no problem type the code does not have.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { problem, type ProblemKind } from '../../src/shared/problem.js'

const read = (file: string) => readFileSync(join(process.cwd(), file), 'utf8')
const tableRows = (text: string) => text.split('\n').filter((line) => line.startsWith('|'))
const rows = [...tableRows(read('docs/errors.md')), ...tableRows(read('docs/origin.md'))]

// The catalogue's kinds, by the types it can build: a kind added to it and not here fails to type-check.
const KINDS: Record<ProblemKind, true> = {
  'key-missing': true,
  'key-malformed': true,
  'scope-missing': true,
  'body-too-large': true,
  'headers-too-large': true,
  'key-reused': true,
  'in-flight': true,
  'stable-area-unavailable': true,
  misconfigured: true,
  'reply-lost': true,
  'handler-timeout': true,
  'origin-failed': true,
  'origin-timeout': true,
  'request-abandoned': true,
  'not-found': true,
  'domain-invalid': true,
  'header-unsignable': true,
  unauthorized: true,
  'bad-request': true,
  'handler-failed': true,
  'signature-invalid': true,
  'request-id-missing': true,
  'sequence-gap': true,
  'sequence-conflict': true,
  'sequence-pruned': true,
  'store-unavailable': true,
}

describe('the problem types in the docs', () => {
  it('document every type the code answers with, with its status', () => {
    const missing = (Object.keys(KINDS) as ProblemKind[]).filter((kind) => {
      const { status } = problem(kind, { detail: '' })
      return !rows.some((row) => row.includes(`\`${kind}\``) && new RegExp(`\\b${status}\\b`).test(row))
    })
    expect(missing, 'problem types without a docs row giving their status (docs/errors.md, docs/origin.md)').toEqual([])
  })

  it('name no type the code does not have (a backticked kebab-case name in their tables is a type)', () => {
    const documented = rows.flatMap((row) => [...row.matchAll(/`([a-z]+(?:-[a-z]+)+|misconfigured|unauthorized)`/g)].map((m) => m[1]!))
    expect(documented.length).toBeGreaterThan(20)
    expect(documented.filter((name) => !(name in KINDS))).toEqual([])
  })
})

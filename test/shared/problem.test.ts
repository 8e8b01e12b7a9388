import { describe, expect, it } from 'vitest'
import { PROBLEM_BASE, problem, type ProblemKind } from '../../src/shared/problem.js'

describe('problem()', () => {
  it("writes the members in RFC 9457's order, then the extension members, as docs/errors.md lists them", async () => {
    const res = problem('key-reused', { detail: 'Same key, different body.', instance: '/deposits', idempotencyKey: 'k1', requestId: 'r1' })
    expect(res.status).toBe(422)
    expect(res.headers.get('content-type')).toBe('application/problem+json')
    expect(await res.text()).toBe(
      `{"type":"${PROBLEM_BASE}key-reused","title":"Idempotency-Key reused with a different request","status":422,"detail":"Same key, different body.","instance":"/deposits","retryable":false,"idempotency_key":"k1","request_id":"r1"}`,
    )
  })

  it('gives one type one status, title and retryable, whether the edge or the receiver answers it', async () => {
    const edge = problem('in-flight', { detail: 'edge', instance: '/a', idempotencyKey: 'k' })
    const receiver = problem('in-flight', { detail: 'receiver', instance: '/a', requestId: 'r' })
    const fixed = async (res: Response) => {
      const { type, title, status, retryable } = (await res.json()) as { type: string; title: string; status: number; retryable: boolean }
      return { type, title, status, retryable }
    }
    expect(await fixed(edge)).toEqual(await fixed(receiver))
  })

  it('carries expected_sequence and Once-Expected-Sequence together', async () => {
    const kind: ProblemKind = 'sequence-gap'
    const res = problem(kind, { detail: 'Need 3.', instance: '/a', requestId: 'r', expectedSequence: 3 })
    expect(res.headers.get('once-expected-sequence')).toBe('3')
    expect(await res.json()).toMatchObject({ expected_sequence: 3, retryable: true })
  })
})

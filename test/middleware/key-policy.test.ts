import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { PROBLEM_BASE } from '../../src/index.js'
import { bank, newKey, problemOf } from '../helpers.js'

/** Posts a raw body with a content type to the counting bank. */
const send = (app: ReturnType<typeof bank>['app'], key: string, body: BodyInit, type?: string) =>
  app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, ...(type ? { 'content-type': type } : {}) }, body }, env)

describe('normalizeJson never merges different numbers (issue 16.2)', () => {
  it.each([
    ['2^53 + 1 and 2^53', '{"amount":9007199254740993}', '{"amount":9007199254740992}'],
    ['two 20-digit account numbers', '{"to":12345678901234567890,"amount":1}', '{"to":12345678901234567891,"amount":1}'],
    ['decimals past a double', '{"amount":0.30000000000000000001}', '{"amount":0.3}'],
  ])('%s: the second is 422 key-reused, not the first one replayed', async (_name, first, second) => {
    const { app, effects } = bank({ fingerprint: { normalizeJson: true } })
    const key = newKey()
    expect((await send(app, key, first, 'application/json')).status).toBe(201)
    const other = await send(app, key, second, 'application/json')
    expect(other.status).toBe(422)
    expect((await problemOf(other)).type).toBe(`${PROBLEM_BASE}key-reused`)
    expect(effects.get(key)).toBe(1)
  })

  it('still replays the same value written another way', async () => {
    const { app, effects } = bank({ fingerprint: { normalizeJson: true } })
    const key = newKey()
    await send(app, key, '{"amount":100,"to":12345678901234567890}', 'application/json')
    const again = await send(app, key, '{ "to": 12345678901234567890, "amount": 1e2 }', 'application/json')
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(effects.get(key)).toBe(1)
  })
})

describe('forms in the fingerprint (issue 16.3)', () => {
  const form = (amount: string) => {
    const f = new FormData()
    f.append('amount', amount)
    f.append('receipt', new File(['scan bytes \r\n--'], 'receipt.txt', { type: 'text/plain' }))
    return f
  }

  it('the same FormData sent again with a new boundary replays (no option needed); another form is 422', async () => {
    const { app, effects } = bank()
    const key = newKey()
    expect((await send(app, key, form('100'))).status).toBe(201)
    const again = await send(app, key, form('100'))
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect((await send(app, key, form('101'))).status).toBe(422)
    expect(effects.get(key)).toBe(1)
  })

  it('normalizeForms: a form-urlencoded body re-encoded (+ or %20, hex case) replays; other values or order are 422', async () => {
    const { app, effects } = bank({ fingerprint: { normalizeForms: true } })
    const type = 'application/x-www-form-urlencoded'
    const key = newKey()
    expect((await send(app, key, 'note=rent+june&amount=100', type)).status).toBe(201)
    expect((await send(app, key, 'note=rent%20june&amount=1%30%30', type)).headers.get('idempotent-replayed')).toBe('true')
    expect((await send(app, key, 'amount=100&note=rent+june', type)).status).toBe(422)
    expect((await send(app, key, 'note=rent+june&amount=101', type)).status).toBe(422)
    expect(effects.get(key)).toBe(1)
  })
})

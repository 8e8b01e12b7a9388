/**
 * onceObject() takes once()'s `unscoped` option (review s29d R8): its default scope's warning advises it, and a
 * `scope` function's '' is refused (400 scope-missing) unless it is given.
 */
import { env } from 'cloudflare:workers'
import { type Context } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceObject, type OnceObjectOptions } from '../../src/index.js'
import { edge, newAccount, newKey } from './installed.js'

describe("R8: onceObject() and once()'s unscoped option", () => {
  it("accepts unscoped: 'shared', as the warning it logs advises", () => {
    const stub = (c: Context) => env.ONCE_ACCOUNT.get(env.ONCE_ACCOUNT.idFromName(c.req.param('name') ?? ''))
    expect(() => onceObject(stub, { unscoped: 'shared' } as OnceObjectOptions)).not.toThrow()
  })

  it("a scope function returning '' for anonymous callers: a 400 scope-missing, unless unscoped: 'shared' opts into sharing", async () => {
    const scope = (c: { req: { header(name: string): string | undefined } }) => c.req.header('x-user') ?? ''
    expect((await edge({ scope }).send(newAccount(), 'deposits', newKey())).status).toBe(400)
    expect((await edge({ scope, unscoped: 'shared' }).send(newAccount(), 'deposits', newKey())).status).toBe(201)
  })
})

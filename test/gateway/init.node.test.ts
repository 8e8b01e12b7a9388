/**
 * `npx hono-once init` as users run it: from a path with a space, through a symlink as npx does, next to a
 * wrangler.toml of their own that lacks what the gateway needs.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse as parseToml } from 'smol-toml'
// @ts-expect-error plain JavaScript without types (the bin)
import { missingFromToml, wranglerToml } from '../../bin/hono-once.mjs'

const bin = resolve('bin/hono-once.mjs')
const run = (script: string, cwd: string) => execFileSync(process.execPath, [script, 'init'], { cwd, encoding: 'utf8' })

describe('npx hono-once init: runs wherever the package is', () => {
  it('from a folder whose path has a space', () => {
    const root = mkdtempSync(join(tmpdir(), 'hono once '))
    cpSync(resolve('bin'), join(root, 'pkg dir/bin'), { recursive: true })
    mkdirSync(join(root, 'proj'))
    expect(run(join(root, 'pkg dir/bin/hono-once.mjs'), join(root, 'proj'))).toMatch(/wrote wrangler\.toml/)
    expect(existsSync(join(root, 'proj/wrangler.toml'))).toBe(true)
  })

  it('through a symlink, as node_modules/.bin/hono-once is, and by a relative path', () => {
    const root = mkdtempSync(join(tmpdir(), 'hono-once-link-'))
    mkdirSync(join(root, '.bin'))
    symlinkSync(bin, join(root, '.bin/hono-once'))
    mkdirSync(join(root, 'a'))
    expect(run(join(root, '.bin/hono-once'), join(root, 'a'))).toMatch(/wrote src\/index\.ts/)
    mkdirSync(join(root, 'b'))
    cpSync(resolve('bin'), join(root, 'b/bin'), { recursive: true })
    expect(run('bin/hono-once.mjs', join(root, 'b'))).toMatch(/wrote wrangler\.toml/)
  })
})

describe('npx hono-once init: next to a wrangler.toml it keeps', () => {
  it('prints the binding, the migration and ONCE_CONFIG that a kept wrangler.toml lacks', () => {
    const root = mkdtempSync(join(tmpdir(), 'hono-once-kept-'))
    writeFileSync(join(root, 'wrangler.toml'), 'name = "my-app"\nmain = "src/index.ts"\ncompatibility_date = "2026-11-01"\n')
    const out = run(bin, root)
    expect(out).toMatch(/kept wrangler\.toml/)
    expect(out).toMatch(/note: the kept wrangler\.toml has no StableArea binding, no StableArea migration, no ONCE_CONFIG/)
    // What it prints, appended to the file, is a wrangler.toml wrangler reads: the binding, the migration and a config.
    const added = out.slice(out.indexOf('\n\n') + 2, out.indexOf('\nNext:'))
    const toml = parseToml(readFileSync(join(root, 'wrangler.toml'), 'utf8') + added) as { durable_objects: { bindings: object[] }; migrations: object[]; vars: { ONCE_CONFIG: string } }
    expect(toml.durable_objects.bindings).toEqual([{ name: 'ONCE', class_name: 'StableArea' }])
    expect(toml.migrations).toEqual([{ tag: 'hono-once-v1', new_sqlite_classes: ['StableArea'] }])
    expect(JSON.parse(toml.vars.ONCE_CONFIG)).toHaveProperty('routes')
  })

  it('says only what is missing, and nothing for a complete one (its own template)', () => {
    expect(missingFromToml(wranglerToml('x'))).toBeUndefined()
    const partial = 'name = "x"\n[[durable_objects.bindings]]\nname = "ONCE"\nclass_name = "StableArea"\n[vars]\nONCE_CONFIG = "{}"\n'
    expect(missingFromToml(partial)).toMatch(/has no StableArea migration, which the gateway needs/)
  })
})

// A kept wrangler.toml whose binding and migration are only in comments (review s30b F4).

describe('init next to a kept wrangler.toml: init hint and commented-out TOML', () => {
  it('names the binding and the migration that exist only in comments', () => {
    const toml = [
      'name = "app"',
      'main = "src/index.ts"',
      '# [[durable_objects.bindings]]',
      '# name = "ONCE"',
      '# class_name = "StableArea"',
      '# [[migrations]]',
      '# tag = "v1"',
      '# new_sqlite_classes = ["StableArea"]',
      '[vars]',
      "ONCE_CONFIG = '{}'",
    ].join('\n')
    const note = missingFromToml(toml) as string | undefined
    expect(note).toMatch(/StableArea binding/)
    expect(note).toMatch(/StableArea migration/)
  })
})

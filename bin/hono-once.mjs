#!/usr/bin/env node
/**
 * `npx hono-once init [dir] [--name <worker>] [--force]`: scaffolds a Worker project that deploys the
 * hono-once gateway from the npm package: `wrangler.toml` (the StableArea binding and its SQLite migration,
 * an `ONCE_CONFIG` example, the secrets to set) and `src/index.ts` re-exporting `hono-once/gateway`.
 *
 * Plain JavaScript (no build step, Node >= 18); it writes files and nothing else.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const USAGE = `Usage: npx hono-once init [dir] [--name <worker name>] [--force]

Writes, in dir (default: the current directory):
  wrangler.toml   the gateway Worker: StableArea binding, its migration, an ONCE_CONFIG example
  src/index.ts    export { default, StableArea } from 'hono-once/gateway'
Existing files are kept unless --force.`

/** The Worker's source: the gateway and its Durable Object class, from the package. */
export const INDEX_TS = `// The hono-once gateway, deployed from the npm package. wrangler bundles it from node_modules/hono-once.
// Its config is the ONCE_CONFIG var in wrangler.toml; see node_modules/hono-once/docs/gateway.md.
export { default, StableArea } from 'hono-once/gateway'
`

/** Why init wrote nothing in a folder it cannot scaffold (not a usage error). */
export class InitRefused extends Error {}

/** wrangler's JSON config files, which it reads before a wrangler.toml. */
const JSON_CONFIGS = ['wrangler.json', 'wrangler.jsonc']

/** What a wrangler.json(c) needs for the gateway, as JSON: the binding, its migration and ONCE_CONFIG. */
function jsonFragment() {
  const config = {
    origins: [{ name: 'eu', url: 'https://eu.origin.example.com' }, { name: 'us', url: 'https://us.origin.example.com' }],
    routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id', ackQuorum: 1 }, { path: '/accounts/*', methods: ['GET'], strategy: 'hedge', hedgeAfterMs: 'auto' }],
    keys: { ttlSeconds: 86400, leaseMs: 10000 },
  }
  return JSON.stringify(
    {
      durable_objects: { bindings: [{ name: 'ONCE', class_name: 'StableArea' }] },
      migrations: [{ tag: 'hono-once-v1', new_sqlite_classes: ['StableArea'] }],
      vars: { ONCE_CONFIG: JSON.stringify(config) },
    },
    null,
    2,
  )
}

/** What Cloudflare accepts as a Worker's name. */
const WORKER_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/**
 * The wrangler config for a Worker named `name`.
 *
 * @param {string} name - the Worker's name
 * @returns {string} the TOML text
 */
export function wranglerToml(name) {
  return `# The hono-once gateway: an exactly-once front for your regional origins (npx hono-once init).
# Docs: node_modules/hono-once/docs/gateway.md
#
# Secrets to set before \`npx wrangler deploy\` (for \`wrangler dev\`, put them in .dev.vars):
#   npx wrangler secret put ONCE_SIGNING_SECRET   # signs every forwarded request; give it to your origins: onceReceiver({ secrets: { ONCE_SIGNING_SECRET: … } })
#   npx wrangler secret put ONCE_STATUS_TOKEN     # opens GET /__once/status (without it the page answers 401; at least 16 characters)
name = ${JSON.stringify(name)}
main = "src/index.ts"
compatibility_date = "2026-11-01"

${TOML_BINDING}
${TOML_MIGRATION}
[vars]
${TOML_CONFIG}`
}

/** The gateway's parts of a wrangler.toml: the StableArea binding, its migration, and ONCE_CONFIG (under [vars]). */
const TOML_BINDING = `# The stable area: where each idempotency key's record and stored reply live (SQLite-backed Durable Object).
[[durable_objects.bindings]]
name = "ONCE"
class_name = "StableArea"
`
const TOML_MIGRATION = `# Creates the StableArea class. An app that already has migrations adds a new tag after its last one instead.
[[migrations]]
tag = "hono-once-v1"
new_sqlite_classes = ["StableArea"]
`
const TOML_CONFIG = `# Origins, routes and key policy (JSON; every field: docs/gateway.md). Validated at the first request:
# a bad field answers a 500 problem, named in the Worker's log (wrangler tail) and to a caller with the status token.
# Keys are kept per caller, by a hash of the Authorization header (keys.scope): a write without one is a 400
# scope-missing. A browser app on another origin needs a "cors" block.
ONCE_CONFIG = '''
{
  "origins": [
    { "name": "eu", "url": "https://eu.origin.example.com" },
    { "name": "us", "url": "https://us.origin.example.com" }
  ],
  "routes": [
    { "path": "/accounts/:id/*", "methods": ["POST"], "strategy": "replicate", "domain": "param:id", "ackQuorum": 1 },
    { "path": "/accounts/*", "methods": ["GET"], "strategy": "hedge", "hedgeAfterMs": "auto" }
  ],
  "keys": { "ttlSeconds": 86400, "leaseMs": 10000 }
}
'''
`

/**
 * What a kept wrangler.toml lacks of what the gateway needs, as TOML to add: the binding, the migration, ONCE_CONFIG.
 *
 * @param {string} text - the kept file's text
 * @returns {string | undefined} the note to print, or undefined when it has them all
 */
export function missingFromToml(text) {
  // What is commented out is not there (a `#` outside a quoted string starts a TOML comment).
  const toml = text.replace(/^([^'"#\n]*(?:(?:"[^"\n]*"|'[^'\n]*')[^'"#\n]*)*)#.*$/gm, '$1')
  const missing = []
  if (!/class_name\s*=\s*["']StableArea["']/.test(toml)) missing.push(['StableArea binding', TOML_BINDING])
  if (!/new_sqlite_classes\s*=\s*\[[^\]]*["']StableArea["']/.test(toml)) missing.push(['StableArea migration', TOML_MIGRATION])
  if (!/^\s*ONCE_CONFIG\s*=/m.test(toml)) missing.push(['ONCE_CONFIG', `[vars]\n${TOML_CONFIG}`])
  if (missing.length === 0) return undefined
  return (
    `note: the kept wrangler.toml has no ${missing.map(([what]) => what).join(', no ')}, which the gateway needs. Add them ` +
    `(a migration after the file's last one, with a tag of its own; ONCE_CONFIG under the file's [vars] table if it has one, ` +
    `else with this [vars] line at the end of the file):\n\n${missing.map(([, text]) => text).join('\n')}`
  )
}

/**
 * Writes the project files into `dir`.
 *
 * @param {string} dir - the project folder (created when missing)
 * @param {{ name?: string, force?: boolean }} [options] - the Worker's name (default: the folder's name), overwrite
 * @returns {{ written: string[], kept: string[] }} paths written, and existing paths left alone
 * @throws {TypeError} naming `--name` when it is not a Worker name
 */
export function init(dir, options = {}) {
  const root = resolve(dir)
  if (options.name !== undefined && !WORKER_NAME.test(options.name)) {
    throw new TypeError(`--name ${JSON.stringify(options.name)}: a Worker name is 1–63 lower-case letters, digits and dashes, not starting or ending with a dash`)
  }
  // wrangler reads wrangler.json(c) before wrangler.toml: a toml written next to one would be ignored, the
  // deploy left without the binding, the migration and the config.
  const json = JSON_CONFIGS.find((file) => existsSync(join(root, file)))
  if (json) {
    throw new InitRefused(
      `this project's wrangler config is ${json}, which wrangler reads instead of a wrangler.toml; nothing was written. Add these to ${json} and export the gateway from your entry (export { default, StableArea } from 'hono-once/gateway'); if it has migrations already, append this one after its last instead of replacing them:\n${jsonFragment()}`,
    )
  }
  const name = options.name ?? (basename(root).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '') || 'hono-once-gateway')
  const files = { 'wrangler.toml': wranglerToml(name), 'src/index.ts': INDEX_TS }
  const written = []
  const kept = []
  for (const [path, text] of Object.entries(files)) {
    const target = join(root, path)
    if (existsSync(target) && !options.force) {
      kept.push(path)
      continue
    }
    mkdirSync(join(target, '..'), { recursive: true })
    writeFileSync(target, text)
    written.push(path)
  }
  return { written, kept }
}

function main(argv) {
  let parsed
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { name: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  } catch (error) {
    console.error(`hono-once: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`)
    return 2
  }
  const [command, dir = '.', ...rest] = parsed.positionals
  if (parsed.values.help || command === undefined) {
    console.log(USAGE)
    return command === undefined && !parsed.values.help ? 2 : 0
  }
  if (command !== 'init' || rest.length > 0) {
    console.error(`hono-once: unknown command ${JSON.stringify([command, ...rest].join(' '))}\n\n${USAGE}`)
    return 2
  }
  let done
  try {
    done = init(dir, { name: parsed.values.name, force: parsed.values.force })
  } catch (error) {
    if (error instanceof InitRefused) {
      console.error(`hono-once: ${error.message}`)
      return 1
    }
    if (!(error instanceof TypeError)) throw error
    console.error(`hono-once: ${error.message}\n\n${USAGE}`)
    return 2
  }
  const { written, kept } = done
  for (const path of written) console.log(`wrote ${join(dir, path)}`)
  for (const path of kept) console.log(`kept ${join(dir, path)} (exists; --force overwrites it)`)
  const toml = kept.includes('wrangler.toml') && missingFromToml(readFileSync(join(dir, 'wrangler.toml'), 'utf8'))
  if (toml) console.log(toml)
  if (kept.includes('src/index.ts') && !readFileSync(join(dir, 'src/index.ts'), 'utf8').includes('hono-once/gateway')) {
    console.log(`note: the kept src/index.ts does not export the gateway; add: export { default, StableArea } from 'hono-once/gateway'`)
  }
  console.log(`
Next:
  1. Fill in ONCE_CONFIG in wrangler.toml (your origins and routes).
  2. For npx wrangler dev, put the secrets in .dev.vars (this folder; keep it out of git):
       ONCE_SIGNING_SECRET=<at least 16 random characters, e.g. from: openssl rand -base64 32>
       ONCE_STATUS_TOKEN=<another one>
     For the deployed Worker: npx wrangler secret put ONCE_SIGNING_SECRET && npx wrangler secret put ONCE_STATUS_TOKEN
  3. npx wrangler dev    (try it locally)   then   npx wrangler deploy`)
  return 0
}

// Run only as the bin, not when imported (the tests import init()). Compared by real path: argv[1] is the
// .bin/hono-once symlink under npx, a Windows path under npm's .cmd shim, and may hold spaces (a URL's pathname
// would be percent-encoded).
if (isMain(process.argv[1])) process.exitCode = main(process.argv.slice(2))

/**
 * Whether `invoked` (argv[1]) is this file.
 *
 * @param {string | undefined} invoked - the script node was asked to run
 * @returns {boolean}
 */
function isMain(invoked) {
  if (!invoked) return false
  try {
    return realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

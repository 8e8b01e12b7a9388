/** What the bench ran on, for bench/results.md. */
import { readFileSync } from 'node:fs'
import os from 'node:os'

function versionOf(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(new URL(`../../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** CPU model, cores, memory, OS, runtimes and date, as Markdown lines. */
export function describeMachine(): string[] {
  const cpus = os.cpus()
  const models = [...new Set(cpus.map((c) => c.model.trim()))].join(', ') || 'unknown'
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' / ')
  return [
    `- date: ${new Date().toISOString().replace('T', ' ').slice(0, 16)} UTC`,
    `- CPU: ${models}; ${cpus.length} cores (os.availableParallelism ${os.availableParallelism()})`,
    `- memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB (free at start ${(os.freemem() / 2 ** 30).toFixed(1)} GiB); load average at start (1/5/15 min): ${load}`,
    `- OS: ${os.type()} ${os.release()} ${os.arch()}`,
    `- Node ${process.version} (client, origins, peer); wrangler ${versionOf('wrangler')}, workerd ${versionOf('workerd')} (hono-once); hono ${versionOf('hono')}, @hono/node-server ${versionOf('@hono/node-server')}, @node-idempotency/core ${versionOf('@node-idempotency/core')}`,
  ]
}

/**
 * `npm start`: serves the bank example with `wrangler dev` (real Durable
 * Objects in workerd, state kept in .wrangler/state), prints a demo against
 * it, and keeps serving until Ctrl-C. `--demo-only` exits after the demo.
 */
import { runDemo } from '../examples/bank/demo.js'
import { startWranglerDev } from './wrangler-dev.js'

const demoOnly = process.argv.includes('--demo-only')
const port = Number(process.env.PORT ?? 8787)

console.log(`Starting the bank example on http://127.0.0.1:${port} (wrangler dev)…`)
const dev = await startWranglerDev({ port, persistTo: '.wrangler/state' })
const stop = async (code: number) => {
  await dev.stop()
  process.exit(code)
}
process.on('SIGINT', () => void stop(0))
process.on('SIGTERM', () => void stop(0))

try {
  await runDemo(dev.url)
} catch (err) {
  console.error('demo failed:', err, '\n', dev.output())
  await stop(1)
}
if (demoOnly) await stop(0)
console.log(`Serving on ${dev.url} — try:
  curl -X POST ${dev.url}/accounts/alice/deposits -H 'Idempotency-Key: "dep-1"' -H 'content-type: application/json' -d '{"amount":100}'
Ctrl-C stops it.`)

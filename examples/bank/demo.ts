import { createOnceFetch, onceInfo } from '../../src/client/index.js'

/**
 * The printed tour `npm start` gives of a running bank: five POSTs with one
 * key move the money once, and the client survives a dropped connection.
 *
 * @param base - where the bank Worker listens
 * @param print - where lines go
 * @returns the balances seen, for tests
 * @example
 * await runDemo('http://127.0.0.1:8787')
 */
export async function runDemo(base: string, print: (line: string) => void = console.log): Promise<{ afterFive: number; afterClient: number }> {
  const account = `demo-${Date.now().toString(36)}`
  const key = `deposit-${crypto.randomUUID()}`
  print(`\n1) Five POSTs of 100 to /accounts/${account}/deposits with one Idempotency-Key: "${key}"`)
  for (let i = 1; i <= 5; i++) {
    const res = await fetch(`${base}/accounts/${account}/deposits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
      body: JSON.stringify({ amount: 100 }),
    })
    const body = (await res.json()) as { balance: number }
    print(`   POST #${i}: ${res.status}  balance=${body.balance}  Idempotent-Replayed: ${res.headers.get('idempotent-replayed') ?? '-'}`)
  }
  const afterFive = await balance(base, account)
  print(`   GET balance: ${afterFive}   (the deposit was applied once)`)

  print('\n2) hono-once/client: the connection drops after the bank has applied the deposit; the client retries with the same key')
  let dropped = false
  const call = createOnceFetch({
    baseDelayMs: 200,
    fetch: async (request) => {
      const res = await fetch(request)
      if (dropped) return res
      dropped = true
      await res.body?.cancel()
      throw new TypeError('connection reset (simulated, after the server answered)')
    },
    onRetry: (r) => print(`   attempt ${r.attempt} failed (${r.reason}: ${String((r.error as Error | undefined)?.message ?? r.response?.status)}); retrying in ${r.delayMs} ms with the same key`),
  })
  const res = await call(`${base}/accounts/${account}/deposits`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount: 250 }),
  })
  const info = onceInfo(res)
  print(`   answer: ${res.status} after ${info?.attempts} attempts, replayed=${info?.replayed}, key=${info?.key}`)
  const afterClient = await balance(base, account)
  print(`   GET balance: ${afterClient}   (100 + 250: applied once despite the retry)\n`)
  return { afterFive, afterClient }
}

async function balance(base: string, account: string): Promise<number> {
  return ((await (await fetch(`${base}/accounts/${account}`)).json()) as { balance: number }).balance
}

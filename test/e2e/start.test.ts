import { describe, expect, it } from 'vitest'
import { runDemo } from '../../examples/bank/demo.js'
import { startWranglerDev } from '../../scripts/wrangler-dev.js'

describe('npm start (the bank example under wrangler dev)', () => {
  it('five POSTs with one key change the balance once; the client survives a dropped connection', async () => {
    const dev = await startWranglerDev({ config: 'wrangler.toml' })
    try {
      const lines: string[] = []
      const { afterFive, afterClient } = await runDemo(dev.url, (l) => lines.push(l))
      expect(afterFive).toBe(100)
      expect(afterClient).toBe(350)
      expect(lines.filter((l) => l.includes('Idempotent-Replayed: true'))).toHaveLength(4)
      expect(lines.join('\n')).toMatch(/after 2 attempts, replayed=true/)
    } finally {
      await dev.stop()
    }
  })
})

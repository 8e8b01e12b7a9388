import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        // Unit and integration tests inside workerd, with real Durable Objects.
        plugins: [cloudflareTest({ wrangler: { configPath: './test/wrangler.toml' } })],
        test: {
          name: 'workers',
          // Real origin servers on loopback that the tests start over HTTP.
          globalSetup: ['./test/origin-farm.ts'],
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/e2e/**', '**/*.node.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        // The middleware against the oldest hono the peer range claims (package.json: hono-min is hono@4.6.0).
        plugins: [cloudflareTest({ wrangler: { configPath: './test/wrangler.toml' } })],
        resolve: { alias: [{ find: /^hono(\/.*)?$/, replacement: 'hono-min$1' }] },
        test: {
          name: 'hono-min',
          include: ['test/middleware/{once,commit,lease,scope,misconfig,replay-headers,roll-forward,key-policy,fingerprint,form-read-before}.test.ts', 'test/origin/{receiver,d1-store}.test.ts', 'test/once-object/{contract,bank}.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        // Node-side code (origin servers, stores on node:sqlite), in Node 22.
        test: { name: 'node', include: ['test/**/*.node.test.ts'], exclude: ['test/e2e/**'], environment: 'node', testTimeout: 30_000 },
      },
      {
        // End-to-end: `wrangler dev` processes on loopback, killed and restarted.
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], environment: 'node', testTimeout: 120_000, hookTimeout: 60_000, fileParallelism: false },
      },
    ],
  },
})

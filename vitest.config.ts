import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

/** Workers test files that need a runtime of their own (see the `workers-fresh` project). */
const FRESH_RUNTIME = [
  'test/shared/edge-signing.test.ts',
  'test/middleware/{scope,scope-policy}.test.ts',
  'test/gateway/{scope,gateway,status,status-read,counters,origin-names}.test.ts',
  'test/durable/{stable-area,replica-join,colliding-domains,directory,directory-pushes}.test.ts',
  'test/architecture/schema.test.ts',
]

export default defineConfig({
  test: {
    // Vitest's default is one worker less than the cores: on a 2-core machine, one file at a time. The workerd and Node
    // tests wait on loopback servers more than they compute, so two at a time (the e2e project runs after them, alone).
    maxWorkers: 2,
    projects: [
      {
        // Unit and integration tests inside workerd, with real Durable Objects. The files share one runtime per
        // vitest worker (isolate: false; a workerd start per file cost the suite about four minutes), so each
        // test makes its own keys, domains and objects (newKey(), crypto.randomUUID()).
        plugins: [cloudflareTest({ wrangler: { configPath: './test/wrangler.toml' } })],
        test: {
          name: 'workers',
          isolate: false,
          // Real origin servers on loopback that the tests start over HTTP.
          globalSetup: ['./test/origin-farm.ts'],
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/e2e/**', '**/*.node.test.ts', ...FRESH_RUNTIME],
          testTimeout: 30_000,
        },
      },
      {
        // Tests of what is once per isolate or per Worker (a warning given once, the status object every
        // stable area reports to): each file in a runtime of its own.
        plugins: [cloudflareTest({ wrangler: { configPath: './test/wrangler.toml' } })],
        test: {
          name: 'workers-fresh',
          globalSetup: ['./test/origin-farm.ts'],
          include: FRESH_RUNTIME,
          testTimeout: 30_000,
        },
      },
      {
        // The middleware against the oldest hono the peer range claims (package.json: hono-min is hono@4.6.0).
        plugins: [cloudflareTest({ wrangler: { configPath: './test/wrangler.toml' } })],
        resolve: { alias: [{ find: /^hono(\/.*)?$/, replacement: 'hono-min$1' }] },
        test: {
          name: 'hono-min',
          include: ['test/middleware/{once,answer-first,commit,lease,scope,misconfig,replay-headers,roll-forward,key-policy,fingerprint,form-read-before}.test.ts', 'test/origin/{receiver,d1-store}.test.ts', 'test/once-object/{contract,bank}.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        // Node-side code (origin servers, stores on node:sqlite), in Node 22.
        test: { name: 'node', include: ['test/**/*.node.test.ts'], exclude: ['test/e2e/**'], environment: 'node', testTimeout: 30_000 },
      },
      {
        // End-to-end: `wrangler dev` processes on loopback, killed and restarted.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // One file at a time, after the other projects: its faults are timed, and it starts wrangler dev processes.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})

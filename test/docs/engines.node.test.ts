import { readFileSync } from 'node:fs'
import semver from 'semver'
import { describe, expect, it } from 'vitest'

interface Manifest {
  engines?: { node?: string }
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}
const manifest = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Manifest
const own = manifest('package.json')

describe("the package's Node range (engines) is within what its runtime dependencies claim", () => {
  const claimed = own.engines?.node ?? '*'

  it('claims Node >= 20.3: the client runs there (AbortSignal.any, the global crypto its keys need); the README says what each other part needs', () => {
    expect(semver.minVersion(claimed)?.version).toBe('20.3.0')
  })

  // A dependency whose engines start above ours prints EBADENGINE at a user's `npm install`.
  for (const name of [...Object.keys(own.dependencies ?? {}), ...Object.keys(own.peerDependencies ?? {})]) {
    it(`${name}: no EBADENGINE on any Node the package claims`, () => {
      const range = manifest(`node_modules/${name}/package.json`).engines?.node
      if (range === undefined) return
      expect(semver.subset(claimed, range), `${name} wants node ${range}; package.json claims ${claimed}`).toBe(true)
    })
  }
})

/**
 * A headless Chromium for the browser tests, with no apt step: `CHROMIUM_PATH` when set, else a system
 * Chromium when there is one, else the one `npm install` brought (`@sparticuz/chromium`, a devDependency that
 * ships a Chromium inside the package and unpacks it to the temp dir on first use).
 *
 * @module
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import puppeteer, { type Browser } from 'puppeteer-core'

const run = promisify(execFile)

/** Where system packages put Chromium (Debian, Ubuntu, Fedora, Google's package). */
const SYSTEM_BROWSERS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable']

/** The flags every launch gets: headless, no sandbox (containers run as root), no network of its own. */
const COMMON_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Which browser a test drives, and why that one. */
export interface BrowserChoice {
  executablePath: string
  source: 'CHROMIUM_PATH' | 'system' | '@sparticuz/chromium'
  args: string[]
  /** puppeteer's `headless`: the packaged build is chrome-headless-shell, which has only the old headless mode. */
  headless: true | 'shell'
  /** How long getting the executable took (the packaged one unpacks on first use). */
  resolveMs: number
}

/** Shared libraries a Chromium needs from the system, with the Debian/Ubuntu package that has each. */
const LIBRARY_PACKAGES: Record<string, string> = {
  'libnss3.so': 'libnss3',
  'libnssutil3.so': 'libnss3',
  'libsmime3.so': 'libnss3',
  'libnspr4.so': 'libnspr4',
  'libplc4.so': 'libnspr4',
  'libplds4.so': 'libnspr4',
  'libexpat.so.1': 'libexpat1',
  'libfontconfig.so.1': 'libfontconfig1',
  'libdbus-1.so.3': 'libdbus-1-3',
}

/**
 * The message a failed launch throws: what is missing and how to get it.
 *
 * @param choice - the browser that failed
 * @param missing - shared libraries `ldd` could not find (may be empty)
 * @param cause - the launch error's text
 * @returns one message that names the libraries, their packages and the ways out
 */
export function launchFailure(choice: BrowserChoice, missing: string[], cause: string): string {
  const fromCause = [...cause.matchAll(/error while loading shared libraries: ([^\s:]+)/g)].map((m) => m[1]!)
  const libs = [...new Set([...missing, ...fromCause])]
  const packages = [...new Set(libs.map((lib) => LIBRARY_PACKAGES[lib] ?? lib.replace(/\.so.*$/, '')))]
  const lines = [`Chromium (${choice.source}: ${choice.executablePath}) did not start.`]
  if (libs.length > 0) {
    lines.push(
      `Missing system libraries: ${libs.join(', ')}.`,
      `Install them (Debian/Ubuntu): apt-get install -y ${packages.join(' ')}` + ` (Fedora/Amazon Linux: dnf install -y nss nspr; Alpine: apk add nss).`,
    )
  }
  lines.push('Or point CHROMIUM_PATH at a Chromium that runs here (e.g. CHROMIUM_PATH=/usr/bin/chromium npm test).', `Cause: ${cause}`)
  return lines.join('\n')
}

/**
 * Picks the browser: `CHROMIUM_PATH`, then a system Chromium, then the packaged one.
 *
 * @returns the executable and the flags to launch it with
 * @throws Error when `CHROMIUM_PATH` names a file that does not exist
 * @example
 * const choice = await chooseBrowser()
 */
export async function chooseBrowser(): Promise<BrowserChoice> {
  const started = Date.now()
  const fromEnv = process.env.CHROMIUM_PATH
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH=${fromEnv} does not exist: unset it to use a system or the packaged Chromium`)
    return { executablePath: fromEnv, source: 'CHROMIUM_PATH', args: COMMON_ARGS, headless: true, resolveMs: 0 }
  }
  const system = SYSTEM_BROWSERS.find((path) => existsSync(path))
  if (system) return { executablePath: system, source: 'system', args: COMMON_ARGS, headless: true, resolveMs: 0 }
  const { default: chromium } = await import('@sparticuz/chromium')
  const executablePath = await chromium.executablePath()
  // Not chromium.args: those are tuned for AWS Lambda (one process, the GPU in-process over SwiftShader) and,
  // measured on a 2-core container under load, made 6 launches of 6 fail (target closed, ECONNRESET) where the
  // plain headless flags below started 6 of 6.
  return { executablePath, source: '@sparticuz/chromium', args: COMMON_ARGS, headless: 'shell', resolveMs: Date.now() - started }
}

/** A launch error's text: puppeteer rejects with Errors, and sometimes with a socket's error event. */
function errorText(error: unknown): string {
  if (error instanceof Error) return error.message
  const inner = (error as { error?: unknown } | null)?.error
  if (inner instanceof Error) return `${inner.message} (the browser's DevTools socket closed: it crashed or was killed)`
  return String(error)
}

/** Shared libraries `ldd` reports as "not found" for `executable` (empty when ldd is absent). */
async function missingLibraries(executable: string): Promise<string[]> {
  try {
    const { stdout } = await run('ldd', [executable], { timeout: 10_000 })
    return [...stdout.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]!)
  } catch {
    return []
  }
}

/**
 * Launches headless Chromium with puppeteer-core; a failed launch throws a message naming what is missing.
 *
 * @param profileDir - a fresh user-data dir
 * @returns the browser and the choice behind it
 * @throws Error naming the missing libraries and how to install them, or how to point at another Chromium
 * @example
 * const { browser } = await launchBrowser(mkdtempSync(join(tmpdir(), 'profile-')))
 */
export async function launchBrowser(profileDir: string): Promise<{ browser: Browser; choice: BrowserChoice }> {
  const choice = await chooseBrowser()
  try {
    const browser = await puppeteer.launch({ executablePath: choice.executablePath, headless: choice.headless, args: [...choice.args, `--user-data-dir=${profileDir}`] })
    return { browser, choice }
  } catch (error) {
    const cause = errorText(error)
    throw new Error(launchFailure(choice, await missingLibraries(choice.executablePath), cause), { cause: error })
  }
}

/** The progress line: one line rewritten in place on a terminal, a line every few seconds otherwise. */

const started = Date.now()
let last = ''
let lastPrinted = 0
const tty = process.stderr.isTTY === true
/** Room on the terminal line (a pty without a size reports 0 columns). */
const width = () => Math.max(20, (process.stderr.columns || 120) - 1)

function elapsed(): string {
  const s = Math.round((Date.now() - started) / 1000)
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
}

/**
 * Shows what is running: `[2:31] 3/6 hedge · round 2/5 · 340/500`.
 *
 * @param text - what is running now
 * @param force - print now even off a terminal
 */
export function progress(text: string, force = false): void {
  const line = `[${elapsed()}] ${text}`
  if (tty) {
    process.stderr.write(`\r\x1b[2K${line.slice(0, width())}`)
    last = line
    return
  }
  const now = Date.now()
  if (force || now - lastPrinted >= 5000) {
    process.stderr.write(`${line}\n`)
    lastPrinted = now
  }
  last = line
}

/** Prints a message on its own line (keeping the progress line below it on a terminal). */
export function log(text: string): void {
  if (tty && last) process.stderr.write('\r\x1b[2K')
  process.stdout.write(`${text}\n`)
  if (tty && last) process.stderr.write(last.slice(0, width()))
}

/** Clears the progress line. */
export function done(): void {
  if (tty && last) process.stderr.write('\r\x1b[2K')
  last = ''
}

/** Seconds since the bench started. */
export function secondsSinceStart(): number {
  return (Date.now() - started) / 1000
}

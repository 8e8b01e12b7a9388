import { Hono } from 'hono'

/**
 * Why Hono cannot serve a route path, or undefined when it can. Hono
 * compiles its router at the first request, so a path it cannot compile
 * would throw at every request (the status page too); and it reads a brace
 * only as a parameter's regex (`:name{regex}`) and a `?` only as an
 * optional parameter's mark (`:name?`), so any other brace, `?` or `#` is
 * literal text that no request path holds (the query and the fragment are
 * not part of it, and `%3F`/`%23` are not decoded for matching): a route
 * that never matches. All are refused at start-up instead.
 *
 * @param path - a route's path pattern
 * @returns why it is refused, or undefined
 * @example
 * pathProblem('/a/:id{[}') // 'Hono cannot compile it (Invalid regular expression: /[/: …)…'
 * pathProblem('/accounts/{id}') // 'a "{" opens only a parameter's regex …'
 */
export function pathProblem(path: string): string | undefined {
  return uncompiled(path) ?? strayBrace(path) ?? strayDelimiter(path)
}

/** A `#`, or a `?` that does not end a parameter's segment (`:name?`, `:name{regex}?`), outside a parameter's regex. */
function strayDelimiter(path: string): string | undefined {
  for (let i = 0; i < path.length; i++) {
    const ch = path[i]
    if (ch === '{') {
      // strayBrace has vouched for every brace: this one opens a regex, skipped whole (its `?` and `#` are the regex's).
      i = regexEnd(path, i + 1)
      if (i < 0) return undefined
    } else if (ch === '#') {
      return `a "#" starts a URL's fragment, which is never sent: no request path holds one (nor is %23 decoded for matching), so the route would never match`
    } else if (ch === '?') {
      const segment = path.slice(path.lastIndexOf('/', i) + 1, i)
      const optional = /^:[^/:{}?#]+(\{.*\})?$/.test(segment) && (i + 1 === path.length || path[i + 1] === '/')
      if (!optional) {
        return `a "?" only makes a parameter optional (:name?); here Hono reads it as literal text, which no request path holds (the query string is not part of the path, nor is %3F decoded for matching), so the route would never match: give the path without a query`
      }
    }
  }
  return undefined
}

/** The router's own error: the path on a router of its own, compiled by a first match (as the gateway's is at the first request). */
function uncompiled(path: string): string | undefined {
  try {
    new Hono().get(path, (c) => c.body(null)).router.match('GET', '/')
    return undefined
  } catch (err) {
    return `Hono cannot compile it (${err instanceof Error ? err.message : String(err)}): a parameter's regex (:name{regex}) must be a valid JavaScript regular expression, without named groups`
  }
}

/** A brace that is not part of a `:name{regex}` parameter closing its segment. */
function strayBrace(path: string): string | undefined {
  for (let i = 0; i < path.length; i++) {
    if (path[i] === '}') return `the "}" at ${i} closes nothing: a parameter's regex is written :name{regex}`
    if (path[i] !== '{') continue
    const name = /(?:^|\/):([^/:{}?]+)$/.exec(path.slice(0, i))?.[1]
    if (name === undefined) {
      const word = /\{([^/{}]*)\}/.exec(path.slice(i))?.[1]
      return `a "{" opens only a parameter's regex (:name{regex}); Hono reads this one as literal text, so the route would never match${word ? ` (write a path parameter as :${word})` : ''}`
    }
    const end = regexEnd(path, i + 1)
    if (end < 0) return `the "{" at ${i} is never closed: a parameter's regex is written :name{regex}`
    if (end === i + 1) return `the regex of :${name} is empty: write :${name} for any segment, or :${name}{regex}`
    // Hono reads `:name{regex}` only as a whole segment (an optional one ends with `?`); anything after it makes the segment literal.
    if (!/^(\/|\?$|$)/.test(path.slice(end + 1))) return `a parameter's regex ends its segment (:${name}{regex} then "/" or the end), so Hono would read ${JSON.stringify(path.slice(path.lastIndexOf('/', i) + 1, path.indexOf('/', end) < 0 ? undefined : path.indexOf('/', end)))} as literal text`
    i = end
  }
  return undefined
}

/** Index of the brace closing a regex that starts at `from`: nested quantifier braces, escapes and character classes skipped; -1 if none. */
function regexEnd(path: string, from: number): number {
  let depth = 0
  let inClass = false
  for (let i = from; i < path.length; i++) {
    const ch = path[i]
    if (ch === '\\') i++
    else if (inClass) inClass = ch !== ']'
    else if (ch === '[') inClass = true
    else if (ch === '{') depth++
    else if (ch === '}' && depth-- === 0) return i
  }
  return -1
}

/**
 * A stand-in for `globalThis.fetch` that answers only requests to this test file's own hosts (names ending in
 * `.<suffix>.test`, which no other file uses: the workers project's files share one runtime, whose Durable Object
 * alarms may still be sending other files' requests through fetch) and passes every other request to the real fetch.
 *
 * @param realFetch - the fetch to pass other requests to
 * @param suffix - the file's own host suffix, e.g. `keyless-caller` for `eu.keyless-caller.test`
 * @param answer - the test's origin
 * @returns the stand-in
 * @example
 * globalThis.fetch = ownOrigin(realFetch, 'keyless-caller', (req) => new Response('ok', { status: 201 }))
 */
export function ownOrigin(realFetch: typeof fetch, suffix: string, answer: (req: Request) => Response | Promise<Response>): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init)
    return new URL(req.url).hostname.endsWith(`.${suffix}.test`) ? answer(req) : realFetch(req)
  }) as typeof fetch
}

import type { GatewayStatus } from './status.js'

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)

/**
 * The status page: a table of origins (state, breaker, p50/p95) and a
 * latency chart, rendered from `status` and refreshed every second from
 * the JSON of the same URL. Self-contained: no scripts or styles from
 * elsewhere.
 *
 * @param status - what `/__once/status` gathered
 * @returns the HTML document
 * @example
 * return c.html(statusPage(await gatherStatus(c, state)))
 */
export function statusPage(status: GatewayStatus): string {
  const data = JSON.stringify(status).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hono-once status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}
.up{color:#0a7d28}.down,.suspect{color:#c0212a;font-weight:600}.probing,.lagging,.joining,.draining{color:#b36b00}
svg{border:1px solid #ddd;background:#fafafa}small{color:#777}
</style></head><body>
<h1>hono-once</h1>
<h2>Origins</h2>
<table id="origins"><thead><tr><th>origin</th><th>state</th><th>breaker</th><th>p50 ms</th><th>p95 ms</th></tr></thead><tbody>${rows(status)}</tbody></table>
<h2>Latency (recent requests)</h2>
<svg id="chart" width="640" height="180" role="img" aria-label="latency per origin"></svg>
<h2>Domains</h2><table id="domains"><thead><tr><th>domain</th><th>head</th><th>replicas (acknowledged / lag)</th></tr></thead><tbody></tbody></table>
<p id="counts"></p><p><small id="at"></small></p>
<script>
const colors=['#1f77b4','#d62728','#2ca02c','#9467bd','#ff7f0e','#8c564b'];
const esc=s=>String(s).replace(/[&<>"']/g,c=>'&#'+c.charCodeAt(0)+';');
function render(s){
  document.querySelector('#origins tbody').innerHTML=s.origins.map(o=>'<tr data-origin="'+esc(o.name)+'"><td>'+esc(o.name)+'</td><td class="state '+esc(o.state)+'">'+esc(o.state)+'</td><td>'+esc(o.breaker)+'</td><td>'+(o.p50Ms??'–')+'</td><td>'+(o.p95Ms??'–')+'</td></tr>').join('');
  document.querySelector('#domains tbody').innerHTML=s.domains.map(d=>'<tr><td>'+esc(d.domain)+'</td><td>'+d.head+'</td><td>'+d.replicas.map(r=>esc(r.name)+': '+esc(r.state)+' '+r.acked+' / '+r.lag).join(', ')+'</td></tr>').join('');
  const max=Math.max(10,...s.origins.flatMap(o=>o.recentMs));
  document.getElementById('chart').innerHTML=s.origins.map((o,i)=>{const pts=o.recentMs.map((v,j)=>(j*640/59).toFixed(1)+','+(175-v*165/max).toFixed(1)).join(' ');return '<polyline fill="none" stroke-width="2" stroke="'+colors[i%colors.length]+'" points="'+pts+'"><title>'+esc(o.name)+'</title></polyline><text x="8" y="'+(16+i*14)+'" fill="'+colors[i%colors.length]+'">'+esc(o.name)+'</text>'}).join('');
  document.getElementById('counts').textContent='admits '+s.counts.admits+' · replays '+s.counts.replays+' · conflicts '+s.counts.conflicts+' · mismatches '+s.counts.mismatches+(s.suspects.length?' · suspect: '+s.suspects.map(x=>x.name+'@'+x.domain).join(', '):'');
  document.getElementById('at').textContent='as of '+s.generatedAt;
}
render(${data});
setInterval(async()=>{try{const r=await fetch(location.pathname,{headers:{accept:'application/json'},credentials:'same-origin'});if(r.ok)render(await r.json())}catch{}},1000);
</script></body></html>`
}

function rows(status: GatewayStatus): string {
  return status.origins
    .map((o) => `<tr data-origin="${escape(o.name)}"><td>${escape(o.name)}</td><td class="state ${o.state}">${o.state}</td><td>${o.breaker}</td><td>${o.p50Ms ?? '–'}</td><td>${o.p95Ms ?? '–'}</td></tr>`)
    .join('')
}

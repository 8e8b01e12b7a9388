/** Where the page keeps the token: this tab only, gone when it closes; never a cookie, never the URL. */
const TOKEN_KEY = 'hono-once-status-token'

/**
 * The status page: a table of origins (state, breaker, p50/p95), a latency
 * chart, each replica's join progress (domains up to date / known), the
 * ordering domains in most trouble and the counts. The document
 * holds no figures, so it is served without the token: it asks for the
 * token once (or takes it from a `#token=…` fragment, which never reaches
 * the server, and drops it from the address bar), keeps it in
 * `sessionStorage`, and reads the JSON of the same URL with
 * `Authorization: Bearer …`, again every `refreshMs` the JSON names (not
 * while the tab is hidden). Self-contained: no scripts or styles from
 * elsewhere.
 *
 * @returns the HTML document
 * @example
 * return c.html(statusPage())
 */
export function statusPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hono-once status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}
.up{color:#0a7d28}.down,.suspect,.stale{color:#c0212a;font-weight:600}.probing,.lagging,.joining,.draining{color:#b36b00}
svg{border:1px solid #ddd;background:#fafafa}small{color:#777}#problem{color:#c0212a}
</style></head><body>
<h1>hono-once</h1>
<form id="login" hidden><p><label>Status token (ONCE_STATUS_TOKEN) <input type="password" name="token" autocomplete="off" required></label>
<button>Open</button></p><p><small>Kept in this tab only (sessionStorage) and sent as Authorization: Bearer.</small></p></form>
<p id="problem" role="alert"></p>
<h2>Origins</h2>
<table id="origins"><thead><tr><th>origin</th><th>state</th><th>breaker</th><th>p50 ms</th><th>p95 ms</th></tr></thead><tbody></tbody></table>
<h2>Latency (recent requests)</h2>
<svg id="chart" width="640" height="180" role="img" aria-label="latency per origin"></svg>
<h2>Replicas: join progress</h2>
<table id="joins"><thead><tr><th>replica</th><th>up to date</th><th>joining</th><th>needs a resync</th><th>not told yet</th></tr></thead><tbody></tbody></table>
<h2>Domains</h2><p><small id="domain-count"></small></p>
<table id="domains"><thead><tr><th>domain</th><th>head</th><th>replicas (state acknowledged / lag)</th></tr></thead><tbody></tbody></table>
<p id="counts"></p><p><small id="at"></small></p>
<script>
const KEY=${JSON.stringify(TOKEN_KEY)};
const colors=['#1f77b4','#d62728','#2ca02c','#9467bd','#ff7f0e','#8c564b'];
const esc=s=>String(s).replace(/[&<>"']/g,c=>'&#'+c.charCodeAt(0)+';');
const $=s=>document.querySelector(s);
const sendable=t=>/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(t);
const unsendable='That token cannot be sent in a header (a line break, or a character outside printable ASCII): paste it again.';
const given=/^#token=(.+)$/.exec(location.hash);
if(given){let t=given[1];try{t=decodeURIComponent(t)}catch{}sessionStorage.setItem(KEY,t.trim());history.replaceState(null,'',location.pathname+location.search)}
let timer,refreshMs=5000;
function ask(why){$('#login').hidden=false;$('#problem').textContent=why||''}
$('#login').addEventListener('submit',e=>{e.preventDefault();const t=String(new FormData(e.target).get('token')||'').trim();if(t){sessionStorage.setItem(KEY,t);e.target.reset();$('#login').hidden=true;load()}});
function render(s){
  $('#origins tbody').innerHTML=s.origins.map(o=>'<tr data-origin="'+esc(o.name)+'"><td>'+esc(o.name)+'</td><td class="state '+esc(o.state)+'">'+esc(o.state)+'</td><td>'+esc(o.breaker)+'</td><td>'+esc(o.p50Ms??'–')+'</td><td>'+esc(o.p95Ms??'–')+'</td></tr>').join('');
  $('#domains tbody').innerHTML=s.domains.map(d=>'<tr><td>'+esc(d.domain)+'</td><td>'+esc(d.head)+'</td><td>'+d.replicas.map(r=>esc(r.name)+': <span class="'+esc(r.state)+'">'+esc(r.state)+'</span> '+esc(r.acked)+' / '+esc(r.lag)).join(', ')+'</td></tr>').join('');
  $('#joins tbody').innerHTML=(s.joins||[]).map(j=>'<tr data-replica="'+esc(j.name)+'"><td>'+esc(j.name)+'</td><td class="'+(j.upToDate===j.domains?'up':'joining')+'">'+esc(j.upToDate)+' / '+esc(j.domains)+'</td><td>'+esc(j.joining)+'</td><td class="'+(j.resync?'stale':'')+'">'+esc(j.resync)+'</td><td>'+esc(j.waiting)+'</td></tr>').join('');
  $('#domain-count').textContent=s.domainCount+' domains reported; the '+s.domains.length+' in most trouble first';
  const max=Math.max(10,...s.origins.flatMap(o=>o.recentMs));
  $('#chart').innerHTML=s.origins.map((o,i)=>{const pts=o.recentMs.map((v,j)=>(j*640/59).toFixed(1)+','+(175-v*165/max).toFixed(1)).join(' ');return '<polyline fill="none" stroke-width="2" stroke="'+colors[i%colors.length]+'" points="'+pts+'"><title>'+esc(o.name)+'</title></polyline><text x="8" y="'+(16+i*14)+'" fill="'+colors[i%colors.length]+'">'+esc(o.name)+'</text>'}).join('');
  $('#counts').textContent='admits '+s.counts.admits+' · replays '+s.counts.replays+' · conflicts '+s.counts.conflicts+' · mismatches '+s.counts.mismatches+(s.suspects.length?' · suspect: '+s.suspects.map(x=>x.name+'@'+x.domain).join(', '):'');
  $('#at').textContent='as of '+s.generatedAt+(s.reportedAt?' · counts reported up to '+s.reportedAt:' · no counts reported yet');
}
async function load(){
  clearTimeout(timer);
  const token=sessionStorage.getItem(KEY);
  if(!token)return ask();
  if(!sendable(token)){sessionStorage.removeItem(KEY);return ask(unsendable)}
  try{
    const r=await fetch(location.pathname,{headers:{accept:'application/json',authorization:'Bearer '+token},credentials:'omit',cache:'no-store'});
    if(r.status===401){sessionStorage.removeItem(KEY);const p=await r.json().catch(()=>null);return ask('The status token was refused.'+(p&&typeof p.detail==='string'?' '+p.detail:''))}
    if(r.ok){const s=await r.json();refreshMs=Math.max(1000,s.refreshMs||refreshMs);$('#problem').textContent=s.unavailable||'';render(s)}
    else{const p=await r.json().catch(()=>null);$('#problem').textContent='The status read failed: '+r.status+(p&&typeof p.detail==='string'?' '+p.detail:'')}
  }catch(e){$('#problem').textContent='The status read failed: '+e}
  if(!document.hidden)timer=setTimeout(load,refreshMs);
}
document.addEventListener('visibilitychange',()=>{if(!document.hidden)load();else clearTimeout(timer)});
load();
</script></body></html>`
}

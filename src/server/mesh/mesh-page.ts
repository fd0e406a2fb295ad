import type { HttpRoute } from '../../shared/metrics/http-listener.js'
import type { MeshView } from './mesh-view.js'

/** How often the page asks for /mesh.json (ms). Clients report within about a second of a change. */
export const MESH_PAGE_REFRESH_MS = 2000

/**
 * The hub's mesh page: self-contained HTML, CSS and JS (no build step, nothing loaded from elsewhere) that draws
 * the peers around the hub as SVG and every pair's path, polling /mesh.json. Labels are set as text, never as HTML.
 */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wgnat mesh</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:16px 24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} #meta{color:#555;margin-bottom:8px} #err{color:#b00020;font-weight:600}
#wrap{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
svg{background:#fff;border:1px solid #ddd;border-radius:8px;width:640px;max-width:100%;height:auto}
.tunnel{stroke:#ccc;stroke-width:1}
.edge{fill:none;stroke-width:3}
.edge.direct{stroke:#1a9850}
.edge.trying{stroke:#e6a100;stroke-dasharray:8 5}
.edge.hub{stroke:#4575b4;stroke-dasharray:2 5;stroke-width:2.5}
.edge.unreachable{stroke:#d73027;stroke-dasharray:1 6;stroke-width:3}
.edge.unknown{stroke:#bbb;stroke-dasharray:1 8;stroke-width:1.5}
.node circle{fill:#fff;stroke:#333;stroke-width:2}.node.offline circle{stroke:#aaa;fill:#eee}
.hubnode circle{fill:#333}.hubnode text{fill:#fff;font-weight:600}
text{font-size:13px;text-anchor:middle}.label{font:12px ui-monospace,monospace}.sub{font-size:11px;fill:#555}
table{border-collapse:collapse;background:#fff;border:1px solid #ddd}
th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.badge.direct{background:#1a9850}.badge.trying{background:#e6a100}.badge.hub{background:#4575b4}.badge.unreachable{background:#d73027}.badge.unknown{background:#999}
#legend span{margin-right:12px}
</style></head>
<body>
<h1>wgnat mesh <span id="iface"></span></h1>
<div id="meta">loading…</div><div id="err"></div>
<div id="legend"><span class="badge direct">direct</span><span class="badge hub">via hub</span><span class="badge trying">trying</span><span class="badge unreachable">unreachable</span><span class="badge unknown">not reported</span></div>
<div id="wrap">
<svg id="mesh" viewBox="0 0 640 560" role="img" aria-label="mesh"></svg>
<table id="pairs"><thead><tr><th>pair</th><th>path</th><th>NAT</th><th>endpoints</th></tr></thead><tbody></tbody></table>
</div>
<script src="mesh.js"></script>
</body></html>
`

const SCRIPT = `'use strict';
const NS = 'http://www.w3.org/2000/svg';
const SHOWN = { direct: 'direct', hub: 'via hub', trying: 'trying', unreachable: 'unreachable', unknown: 'not reported' };
function el (name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
function draw (v) {
  document.getElementById('iface').textContent = v.interface;
  const counts = {};
  for (const p of v.pairs) counts[p.path] = (counts[p.path] || 0) + 1;
  const plural = (n, word) => n + ' ' + word + (n === 1 ? '' : 's');
  document.getElementById('meta').textContent = plural(v.nodes.length, 'peer') + ', ' + plural(v.pairs.length, 'pair') + ': ' +
    Object.entries(counts).map(([k, n]) => n + ' ' + SHOWN[k]).join(', ') + (v.relay ? '' : ' (the hub does not relay)') +
    ' · updated ' + new Date().toLocaleTimeString();
  document.getElementById('err').textContent = '';
  const svg = document.getElementById('mesh');
  svg.replaceChildren();
  // The hub sits above the ring of peers, so a straight (direct) line between two peers never crosses it, and a
  // pair through the hub is drawn as a curve bent up to it.
  const cx = 320, cy = 50, ry = 345, r = 190;
  const pos = new Map();
  v.nodes.forEach((n, i) => {
    const a = Math.PI + 2 * Math.PI * i / Math.max(1, v.nodes.length);
    pos.set(n.publicKey, [cx + r * Math.cos(a), ry + r * Math.sin(a) * 0.75]);
  });
  const label = new Map(v.nodes.map((n) => [n.publicKey, n.label]));
  for (const n of v.nodes) { const [x, y] = pos.get(n.publicKey); svg.append(el('line', { class: 'tunnel', x1: cx, y1: cy, x2: x, y2: y })); }
  for (const p of v.pairs) {
    const [x1, y1] = pos.get(p.a), [x2, y2] = pos.get(p.b);
    // Via the hub: a curve bent through the hub; every other path: the straight line between the two.
    const d = p.path === 'hub' ? 'M' + x1 + ' ' + y1 + ' Q' + cx + ' ' + cy + ' ' + x2 + ' ' + y2 : 'M' + x1 + ' ' + y1 + ' L' + x2 + ' ' + y2;
    const e = el('path', { class: 'edge ' + p.path, d, 'data-pair': label.get(p.a) + '-' + label.get(p.b), 'data-path': p.path });
    e.append(el('title', {}, label.get(p.a) + ' - ' + label.get(p.b) + ': ' + SHOWN[p.path]));
    svg.append(e);
  }
  const hub = el('g', { class: 'hubnode' });
  hub.append(el('circle', { cx, cy, r: 30 }), el('text', { x: cx, y: cy + 5 }, 'hub'));
  svg.append(hub);
  for (const n of v.nodes) {
    const [x, y] = pos.get(n.publicKey);
    const g = el('g', { class: 'node' + (n.online ? '' : ' offline'), 'data-key': n.publicKey });
    g.append(el('circle', { cx: x, cy: y, r: 38 }), el('text', { x, y: y + 4, class: 'label' }, n.label),
      el('text', { x, y: y + 54, class: 'sub' }, n.natClass + (n.endpoint ? ' · ' + n.endpoint : '')));
    svg.append(g);
  }
  const body = document.querySelector('#pairs tbody');
  body.replaceChildren();
  const nat = new Map(v.nodes.map((n) => [n.publicKey, n.natClass]));
  for (const p of v.pairs) {
    const tr = document.createElement('tr');
    tr.dataset.pair = label.get(p.a) + '-' + label.get(p.b);
    tr.dataset.path = p.path;
    const badge = document.createElement('span');
    badge.className = 'badge ' + p.path;
    badge.textContent = SHOWN[p.path];
    const cells = [label.get(p.a) + ' – ' + label.get(p.b), badge, nat.get(p.a) + ' / ' + nat.get(p.b), (p.aEndpoint || '-') + ' / ' + (p.bEndpoint || '-')];
    for (const c of cells) { const td = document.createElement('td'); if (typeof c === 'string') td.textContent = c; else td.append(c); tr.append(td); }
    body.append(tr);
  }
}
async function refresh () {
  try {
    const res = await fetch('mesh.json', { cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    draw(await res.json());
  } catch (err) {
    document.getElementById('err').textContent = 'cannot reach wgnat-server: ' + err.message + ' (retrying)';
  }
}
refresh();
setInterval(refresh, ${MESH_PAGE_REFRESH_MS});
`

/** Only what the page itself needs: its own script and JSON, inline styles; nothing from elsewhere. */
const CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** `/` (the page), `/mesh.js` and `/mesh.json` (the view, as `wgnat-server status --json` prints it). */
export function meshRoutes (view: () => MeshView): HttpRoute {
  return (_req, res, url) => {
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }
    switch (url.pathname) {
      case '/':
        res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP }).end(PAGE)
        return true
      case '/mesh.js':
        res.writeHead(200, { ...headers, 'content-type': 'text/javascript; charset=utf-8' }).end(SCRIPT)
        return true
      case '/mesh.json':
        res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(view()))
        return true
      default:
        return false
    }
  }
}

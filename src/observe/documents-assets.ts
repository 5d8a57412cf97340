/**
 * The Documents view's stylesheet and script, served from the dashboard's own origin
 * (`/documents/assets/*`): the Content-Security-Policy runs no inline script. The script only
 * adds to a page that works without it: it refreshes the page's main element every 5 s (not
 * while someone types in the search form or reads a Retry answer) and sends the Retry button's
 * request (`POST /api/documents/:id/retry`, JSON, same origin, so the Host/Origin guard lets it
 * through and a page on another site cannot).
 */

export const STYLE = `
:root { --bg: #f6f7f9; --card: #fff; --fg: #1f2430; --muted: #6b7280; --line: #e3e6eb; --accent: #2d4a6b;
  --ok: #1f8a4c; --bad: #c2362b; --run: #2f6fd1; --wait: #8a6d1f; font-family: system-ui, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font-size: 14px; }
header.top { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.2rem; background: var(--accent); color: #fff; }
header.top a { color: #fff; text-decoration: none; }
header.top .brand { font-weight: 700; font-size: 1.1rem; }
header.top nav { display: flex; gap: 1rem; }
header.top nav a[aria-current] { border-bottom: 2px solid #fff; }
header.top .env { margin-left: auto; opacity: .85; font-size: .85rem; }
main { padding: 1rem 1.2rem; max-width: 1600px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
h1 { font-size: 1.25rem; margin: .2rem 0 .8rem; } h2 { font-size: 1rem; margin: .2rem 0 .6rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .02em; }
td.num, th.num { text-align: right; white-space: nowrap; }
.muted { color: var(--muted); } .small { font-size: .8rem; } .mono, code { font-family: ui-monospace, monospace; font-size: .85em; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 999px; font-size: .8rem; font-weight: 600; color: #fff; white-space: nowrap; }
.badge.written { background: var(--ok); } .badge.failed { background: var(--bad); } .badge.running { background: var(--run); } .badge.queued { background: var(--wait); }
.bar { display: flex; width: 140px; height: 8px; background: var(--line); border-radius: 4px; overflow: hidden; margin: .3rem 0 .2rem; }
.bar .done { background: var(--ok); } .bar .failed { background: var(--bad); }
.counts { font-size: .8rem; } .bad { color: var(--bad); font-weight: 600; }
form.search { display: flex; gap: .5rem; margin-bottom: .6rem; }
form.search input { flex: 1; max-width: 28rem; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; }
select, button { padding: .35rem .6rem; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; } button:disabled { opacity: .5; cursor: default; }
nav.states { display: flex; gap: .4rem; align-items: center; margin-bottom: .6rem; flex-wrap: wrap; }
.chip { padding: .15rem .6rem; border: 1px solid var(--line); border-radius: 999px; color: var(--fg); text-decoration: none; font-size: .85rem; }
.chip.on { background: var(--accent); color: #fff; border-color: var(--accent); }
nav.pager { display: flex; gap: 1rem; justify-content: center; padding-top: .6rem; color: var(--muted); }
a { color: var(--accent); } a.out { margin-right: .4rem; white-space: nowrap; }
tr.trouble td { background: #fdf1f0; }
section.notes { border-left: 4px solid var(--bad); background: #fdf1f0; padding: .4rem .8rem; margin-bottom: 1rem; } section.notes h2 { margin: .2rem 0; font-size: 1rem; } section.notes ul { margin: .2rem 0; padding-left: 1.2rem; }
svg.spark polyline { fill: none; stroke: var(--run); stroke-width: 1.5; } svg.spark line { stroke: var(--line); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1.2rem; margin: 0 0 1rem; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
td.message { white-space: pre-wrap; word-break: break-word; }
`;

export const SCRIPT = `'use strict';
(function () {
  var main = document.getElementById('main');
  var quietUntil = 0;
  function typing() {
    var a = document.activeElement;
    return a && (a.tagName === 'INPUT' || a.tagName === 'SELECT');
  }
  function refresh() {
    if (document.hidden || typing() || Date.now() < quietUntil || !main) return;
    fetch(location.href, { headers: { Accept: 'text/html' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text || typing() || Date.now() < quietUntil) return;
        var fresh = new DOMParser().parseFromString(text, 'text/html').getElementById('main');
        if (!fresh) return;
        main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
        bind();
      })
      .catch(function () {});
  }
  function bind() {
    var button = document.getElementById('retry');
    if (!button || button.dataset.bound) return;
    button.dataset.bound = '1';
    button.addEventListener('click', function () {
      var out = document.getElementById('retry-result');
      button.disabled = true;
      quietUntil = Date.now() + 10000;
      fetch('/api/documents/' + encodeURIComponent(button.dataset.doc) + '/retry', {
        method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: '{}'
      })
        .then(function (res) {
          return res.json().catch(function () { return {}; }).then(function (body) {
            if (!res.ok) { out.textContent = 'Refused: ' + (body.error || res.status); button.disabled = false; return; }
            var n = (body.reopened || []).length;
            out.textContent = n > 0 ? 'Retrying ' + n + ' unit' + (n === 1 ? '' : 's') + '.' : body.rewrite ? 'Writing the outputs again.' : 'Nothing to retry.';
          });
        })
        .catch(function (err) { out.textContent = 'Failed: ' + err.message; button.disabled = false; });
    });
  }
  bind();
  setInterval(refresh, 5000);
})();
`;

/**
 * The HTML of `/documents` (the list, with the workers' throughput) and `/documents/:id` (one
 * document, its failed units and Retry). Rendered on the server from the same JSON the API
 * gives (documents.ts), so the page works without script; documents-assets.ts adds a refresh
 * every 5 s and the Retry button's request.
 *
 * Everything that comes from outside (file names, paths, models, error messages) goes through
 * `html`'s escaping: only `raw()` pieces made here are left as markup.
 */
import { formatDuration, formatRate, VIEW_STATES, type ViewState } from './progress.ts';
import type { DocumentJson, FailuresResult, ListResult } from './documents.ts';
import { sparkline, type WorkerRate } from './worker-rates.ts';
import { workerNote, workerProblem, writerProblem, type WriterBeat } from './workers.ts';

class Raw {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/** Markup made here, left unescaped. */
export function raw(text: string): Raw {
  return new Raw(text);
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function piece(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return v.map(piece).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

/** A template whose interpolations are escaped (arrays joined; `raw()` kept as markup). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0]!;
  values.forEach((v, i) => (out += piece(v) + strings[i + 1]!));
  return new Raw(out);
}

export interface PageContext {
  prefix: string;
  readOnly: boolean;
}

function shell(title: string, ctx: PageContext, body: Raw): string {
  return `<!doctype html>${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · docbatch</title><link rel="stylesheet" href="/documents/assets/style.css"><script src="/documents/assets/app.js" defer></script></head>
<body><header class="top"><a class="brand" href="/">docbatch</a><nav><a href="/">Queues</a><a href="/documents" aria-current="page">Documents</a></nav>
<span class="env">prefix ${ctx.prefix}${ctx.readOnly ? ' · read-only' : ''}</span></header><main id="main">${body}</main></body></html>`.text}`;
}

const number = (n: number) => n.toLocaleString('en-US');
/** A token total as the API gives it: `1,234`, `≥1,234` (some units had no usage), `?` (none reported). */
const tokens = (n: number | null, withoutUsage: number) => (n === null ? '?' : `${withoutUsage > 0 ? '≥' : ''}${number(n)}`);

function when(iso: string | null): Raw {
  if (!iso) return raw('<span class="muted">—</span>');
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`;
}

function stateBadge(state: ViewState, phase: string): Raw {
  const note = phase === 'complete' ? ' (writing)' : '';
  return html`<span class="badge ${state}">${state}${note}</span>`;
}

/** The units bar: answered, failed, left. */
function unitsBar(d: DocumentJson): Raw {
  const pct = (n: number) => (d.units > 0 ? ((n / d.units) * 100).toFixed(2) : '0');
  return html`<div class="bar" title="${d.done} answered, ${d.failed} failed, ${d.units - d.done - d.failed} left of ${d.units}"><span class="done" style="width:${pct(d.done)}%"></span><span class="failed" style="width:${pct(d.failed)}%"></span></div>
<span class="counts">${d.done}${d.failed > 0 ? html` / <span class="bad">${d.failed} failed</span>` : ''} / ${d.units}</span>`;
}

function outputs(d: DocumentJson): Raw {
  if (d.outputs.length === 0) return raw('<span class="muted">—</span>');
  return html`${d.outputs.map((o) => html`<a class="out" href="${o.url}" title="${o.path}">${o.name}</a> `)}`;
}

function unitWord(kind: string): string {
  return kind.replace(/s$/, '');
}

function workersSection(rates: WorkerRate[]): Raw {
  if (rates.length === 0) return html`<section class="workers"><h2>Workers</h2><p class="muted">No worker has a heartbeat under this prefix: start one (<code>docbatch worker</code>).</p></section>`;
  const rows = rates.map(({ beat, kind, now, series }) => {
    const problem = workerProblem(beat);
    return html`<tr class="${problem ? 'trouble' : ''}"><td>${beat.name}</td><td>${beat.model ?? '—'}</td><td class="muted">${beat.engine}</td>
<td>${problem ? html`<span class="badge failed">${problem}</span>` : html`<span class="badge written">taking work</span>${workerNote(beat) ? html`<div class="muted small">${workerNote(beat)}</div>` : ''}`}</td>
<td class="num">${beat.silent ? '—' : beat.window}</td><td class="num">${beat.silent ? '—' : beat.inFlight}</td><td class="num rate">${now === null ? '—' : `${now.toFixed(2)} ${kind}/s`}</td>
<td>${raw(sparkline(series))}</td></tr>`;
  });
  return html`<section class="workers"><h2>Workers</h2><table><thead><tr><th>worker</th><th>model</th><th>engine</th><th>state</th><th class="num">window</th><th class="num">in flight</th><th class="num">${unitWord(rates[0]!.kind)}s per second</th><th>last 30 min</th></tr></thead><tbody>${rows}</tbody></table>
<p class="muted small">Rates from each worker's heartbeat (every 5 s). Per-queue completed and failed jobs per minute: the <a href="/">queues</a>' metrics charts.</p></section>`;
}

function stateLinks(list: ListResult, q: string, state: ViewState | undefined): Raw {
  const link = (s: ViewState | undefined, label: string, n: number | null) => {
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    if (s) params.set('state', s);
    const href = `/documents${params.size > 0 ? `?${params}` : ''}`;
    return html`<a href="${href}" class="chip${s === state ? ' on' : ''}">${label}${n === null ? '' : html` <b>${n}</b>`}</a>`;
  };
  return html`<nav class="states" aria-label="filter by state">${link(undefined, 'all', null)}${VIEW_STATES.map((s) => link(s, s, list.states[s]))}${list.truncated ? html`<span class="muted small">(counts of the newest ${number(list.scanned)})</span>` : ''}</nav>`;
}

/** Work that waits and nothing will take (queue-notes.ts), above everything else. */
function notesSection(notes: readonly string[]): Raw {
  if (notes.length === 0) return raw('');
  return html`<section class="notes" role="alert"><h2>Waiting for nothing</h2><ul>${notes.map((n) => html`<li>${n}</li>`)}</ul></section>`;
}

/** One line of writers under the workers: each, and whether it writes. */
function writersLine(writers: readonly WriterBeat[]): Raw {
  if (writers.length === 0) return html`<p class="muted small writers">Writers: none has a heartbeat under this prefix (<code>docbatch writer</code>).</p>`;
  return html`<p class="small writers">Writers: ${writers.map((w, i) => {
    const problem = writerProblem(w);
    return html`${i > 0 ? ', ' : ''}<b>${w.name}</b> ${problem ? html`<span class="badge failed">${problem}</span>` : html`<span class="badge written">writing</span>`} <span class="muted">(${w.written.toLocaleString('en-US')} written since start${w.failed > 0 ? `, ${w.failed} failed` : ''})</span>`;
  })}</p>`;
}

export function listPage(ctx: PageContext, list: ListResult, query: { q: string; state: ViewState | undefined }, rates: WorkerRate[], notes: readonly string[] = [], writers: readonly WriterBeat[] | null = null): string {
  const rows = list.documents.map(
    (d) => html`<tr data-id="${d.id}"><td class="doc"><a href="/documents/${d.id}">${d.name}</a><div class="muted small">${d.source}</div><div class="muted small mono">${d.id}</div></td>
<td>${d.kind} · ${d.task}${d.model ? html`<div class="muted small">${d.model}</div>` : ''}</td><td>${stateBadge(d.state, d.phase)}</td><td class="units">${unitsBar(d)}</td>
<td class="num">${formatRate(d.rate)}</td><td class="num">${d.state === 'running' ? formatDuration(d.eta_seconds) : '—'}</td>
<td class="num">${d.prompt_tokens === null && d.completion_tokens === null ? '?' : tokens((d.prompt_tokens ?? 0) + (d.completion_tokens ?? 0), d.units_without_usage)}${d.cost_usd !== null ? html`<div class="muted small">$${d.cost_usd.toFixed(4)}</div>` : ''}</td>
<td>${when(d.started_at)}</td><td>${when(d.finished_at)}</td><td>${outputs(d)}</td></tr>`,
  );
  const params = (page: number) => {
    const p = new URLSearchParams();
    if (query.q) p.set('q', query.q);
    if (query.state) p.set('state', query.state);
    p.set('page', String(page));
    return `/documents?${p}`;
  };
  const pager = html`<nav class="pager" aria-label="pages">${list.page > 1 ? html`<a href="${params(list.page - 1)}" rel="prev">← newer</a>` : ''}<span>page ${list.page} of ${list.pages} · ${number(list.total)} documents</span>${list.page < list.pages ? html`<a href="${params(list.page + 1)}" rel="next">older →</a>` : ''}</nav>`;
  const body = html`${notesSection(notes)}${workersSection(rates)}${writers ? writersLine(writers) : ''}<section><h1>Documents</h1>
<form class="search" method="get" action="/documents" role="search"><input type="search" name="q" value="${query.q}" placeholder="file name, path or id" aria-label="search by file name or id">
<select name="state" aria-label="state"><option value="">any state</option>${VIEW_STATES.map((s) => html`<option value="${s}"${raw(s === query.state ? ' selected' : '')}>${s}</option>`)}</select><button type="submit">Search</button></form>
${stateLinks(list, query.q, query.state)}
<table class="documents"><thead><tr><th>document</th><th>kind · task</th><th>state</th><th>units done / failed / all</th><th class="num">rate</th><th class="num">eta</th><th class="num">tokens</th><th>started</th><th>finished</th><th>outputs</th></tr></thead>
<tbody id="documents">${rows.length > 0 ? rows : html`<tr><td colspan="10" class="muted">No document${query.q || query.state ? ' matches' : ' yet'}.</td></tr>`}</tbody></table>${pager}</section>`;
  return shell('Documents', ctx, body);
}

export function detailPage(ctx: PageContext, d: DocumentJson, failures: FailuresResult, queue: string): string {
  const field = (label: string, value: unknown) => html`<dt>${label}</dt><dd>${value}</dd>`;
  const canRetry = !ctx.readOnly && (d.failed > 0 || d.phase === 'failed') && d.state !== 'running' && d.state !== 'queued';
  const retryLabel = d.failed > 0 ? `Retry ${d.failed} failed unit${d.failed === 1 ? '' : 's'}` : 'Write again';
  const rows = failures.failures.map(
    (f) => html`<tr><td class="num">${f.unit}</td><td>${f.page !== undefined ? `page ${f.page}` : f.conversation_id !== undefined ? `${f.conversation_id} · chunk ${f.chunk}` : '—'}</td><td><code>${f.code}</code></td><td class="message">${f.message}</td></tr>`,
  );
  const failuresBlock =
    d.failed === 0 && !d.write_error
      ? html`<p class="muted">No unit failed.</p>`
      : html`${failures.note ? html`<p class="muted">${failures.note}</p>` : ''}${rows.length > 0 ? html`<table class="failures"><thead><tr><th class="num">unit</th><th>where</th><th>code</th><th>message</th></tr></thead><tbody>${rows}</tbody></table>` : ''}${failures.more > 0 ? html`<p class="muted">… and ${failures.more} more.</p>` : ''}`;
  const body = html`<p><a href="/documents">← all documents</a></p><h1>${d.name}</h1>
<dl class="facts">${field('id', html`<span class="mono">${d.id}</span>`)}${field('input', d.source)}${field('kind · task · unit', `${d.kind} · ${d.task} · ${d.unit}`)}${field('model', d.model ?? 'whatever the engine serves')}
${field('state', stateBadge(d.state, d.phase))}${field('units', unitsBar(d))}${field('rate', formatRate(d.rate))}${field('time left', d.state === 'running' ? formatDuration(d.eta_seconds) : '—')}
${field('tokens', `${tokens(d.prompt_tokens, d.units_without_usage)} prompt, ${tokens(d.completion_tokens, d.units_without_usage)} generated${d.units_without_usage > 0 ? ` (no usage reported for ${d.units_without_usage} unit${d.units_without_usage === 1 ? '' : 's'})` : ''}`)}${field('engine time', `${d.engine_seconds.toFixed(1)} s${d.cost_usd !== null ? ` · $${d.cost_usd.toFixed(4)}` : ''}`)}
${field('enqueued', when(d.enqueued_at))}${field('started', when(d.started_at))}${field('finished', when(d.finished_at))}${field('written', when(d.written_at))}
${field('outputs', outputs(d))}${d.write_error ? field('write error', html`<code>${d.write_error.code}</code> ${d.write_error.message}`) : ''}${field('jobs', html`<a href="/queue/${queue}">queue ${queue}</a>`)}</dl>
<section><h2>Failed units${d.failed > 0 ? ` (${d.failed})` : ''}</h2>${failuresBlock}
${canRetry ? html`<p><button type="button" id="retry" data-doc="${d.id}">${retryLabel}</button> <span id="retry-result" role="status"></span></p><p class="muted small">Runs only the failed units again (successful ones are never sent again), then writes the outputs anew: what <code>docbatch retry ${d.id}</code> does.</p>` : ctx.readOnly && d.failed > 0 ? html`<p class="muted">Read-only dashboard: retry with <code>docbatch retry ${d.id}</code>.</p>` : ''}</section>`;
  return shell(d.name, ctx, body);
}

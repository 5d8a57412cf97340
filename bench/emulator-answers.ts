/**
 * What structured output costs the engine emulator: its own CPU per request (read from
 * /proc/<pid>/stat of the emulator process) and the requests/s a closed loop gets, for free-text
 * replies and for JSON answers of a 14-field invoice schema, plain, with first-sight flaws, and
 * with altered fields. Every request has its own content (nothing repeats, so every one is a
 * "first sight"). The emulator runs fast (speed 1000) so its engine steps cost little; free-text
 * replies are held to the JSON answers' length (about 120 tokens) so the steps are alike.
 *
 *   node_modules/.bin/node bench/emulator-answers.ts [--requests 2000] [--concurrency 64]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '64' } } });
const N = Number(values.requests);
const C = Number(values.concurrency);
const TICKS_PER_SEC = 100; // USER_HZ on Linux

const SCHEMA = {
  type: 'object',
  properties: {
    invoice_number: { type: 'string' },
    issue_date: { type: 'string', format: 'date' },
    total: { type: 'number' },
    paid: { type: 'boolean' },
    status: { enum: ['open', 'overdue', 'paid'] },
    items: { type: 'array', items: { type: 'object', properties: { item: { type: 'string' }, quantity: { type: 'integer' } }, required: ['item', 'quantity'] } },
    tags: { type: 'array', items: { type: 'string' } },
    customer: { type: 'object', properties: { name: { type: 'string', title: 'Customer name' }, city: { type: 'string' } } },
  },
  required: ['invoice_number', 'issue_date', 'total', 'customer'],
};

function invoice(i: number): string {
  return [
    `Invoice number: INV-${100000 + i}`,
    `Issue date: March ${1 + (i % 28)}, 2024`,
    `Total: $${(1000 + i).toLocaleString('en-US')}.50`,
    `Paid: ${i % 2 ? 'yes' : 'no'}`,
    'Status: Overdue',
    'Item: Widget',
    `Quantity: ${i % 9}`,
    'Item: Gadget',
    'Quantity: 5',
    'Tags: red, blue, green',
    'Customer name: Ada Lovelace',
    'City: London',
    'Some body text of the page that the model reads along with the fields above.',
  ].join('\n');
}

interface Case {
  name: string;
  flags: string[];
  body: (i: number) => Record<string, unknown>;
}

const json = { response_format: { type: 'json_schema', json_schema: { name: 'invoice', schema: SCHEMA } }, max_tokens: 400 };
const CASES: Case[] = [
  { name: 'free text (120 tokens)', flags: ['--output-tokens-min', '120', '--output-tokens-max', '120'], body: () => ({ max_tokens: 400 }) },
  { name: 'JSON, 14 fields', flags: [], body: () => json },
  { name: 'JSON + flaws 0.1/0.1/0.1', flags: ['--cutoff', '0.1', '--loop', '0.1', '--invalid-json', '0.1'], body: () => json },
  { name: 'JSON + alterFields 0.5', flags: ['--alter-fields', '0.5'], body: () => json },
];

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC;
}

async function runCase(c: Case): Promise<{ rps: number; cpuMsPerRequest: number }> {
  const main = join(import.meta.dirname, '..', 'src', 'emulator', 'main.ts');
  const child = spawn(process.execPath, [main, '--port', '0', '--speed', '1000', ...c.flags], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`emulator exited ${code}`)));
  });
  const agent = new Agent({ connections: C });
  const send = async (i: number): Promise<void> => {
    const body = { messages: [{ role: 'user', content: invoice(i) }], ...c.body(i) };
    const res = await request(`${url}/v1/chat/completions`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  };
  for (let i = 0; i < C; i++) await send(-1 - i); // warm up (JIT, tokenizer tables)
  const cpu0 = cpuSeconds(child.pid as number);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < N) await send(next++);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(child.pid as number) - cpu0;
  await agent.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return { rps: N / seconds, cpuMsPerRequest: (cpu * 1000) / N };
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`emulator answers: ${N} requests per case, ${C} concurrent, load average ${load}`);
console.log('| case | requests/s | emulator CPU ms per request |');
console.log('|---|---|---|');
for (const c of CASES) {
  const r = await runCase(c);
  console.log(`| ${c.name} | ${r.rps.toFixed(0)} | ${r.cpuMsPerRequest.toFixed(2)} |`);
}

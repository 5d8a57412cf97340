import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { splitExport, type ChunkRecord } from '../../../src/ingest/chat/split.ts';
import { ChatgptTree, readSidecar, tempDir, writeJson } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

let n = 0;
async function split(conversations: unknown[], budgetTokens = 3500) {
  const path = writeJson(tmp.dir, `c${++n}.json`, conversations);
  const sidecar = join(tmp.dir, `c${n}.sidecar.jsonl`);
  const result = await splitExport(path, { kind: 'chat', format: 'chatgpt' }, sidecar, { file: `c${n}.json`, budgetTokens });
  const bytes = readFileSync(sidecar);
  const records = readSidecar(bytes, result.units) as unknown as ChunkRecord[];
  return { result, records, text: bytes.toString('utf8') };
}

/** Message ids of one conversation in chunk order, each chunk's own ids only. */
function idsOf(records: ChunkRecord[], conversation: string): string[] {
  return records.filter((r) => r.conversation_id === conversation).flatMap((r) => r.message_ids);
}

describe('ChatGPT tree → shown branch', () => {
  it('follows parent links from current_node and leaves out edits, regenerations and hidden messages', async () => {
    const t = new ChatgptTree();
    const sys = t.add(t.rootId, { role: 'system', text: 'HIDDEN-system-prompt', hidden: true });
    const ctx = t.add(sys, { role: 'user', hidden: true, content: { content_type: 'user_editable_context', user_profile: 'HIDDEN-profile', user_instructions: 'HIDDEN-instr' } });
    const q1 = t.add(ctx, { role: 'user', text: 'KEPT-question-one' });
    // Two answers: the first was regenerated; current_node descends from the second.
    const a1old = t.add(q1, { role: 'assistant', text: 'ABANDONED-answer-first-try' });
    t.add(a1old, { role: 'user', text: 'ABANDONED-follow-up' });
    const a1 = t.add(q1, { role: 'assistant', text: 'KEPT-answer-one' });
    // The user edited question two: the first version is abandoned.
    t.chain(a1, ['ABANDONED-question-two-v1', 'ABANDONED-answer-two-v1']);
    const [q2, a2] = t.chain(a1, ['KEPT-question-two-v2', 'KEPT-answer-two-v2']) as [string, string];
    const conv = t.build({ id: 'conv-1', current_node: a2 });

    const { result, records, text } = await split([conv]);
    expect(idsOf(records, 'conv-1')).toEqual([q1, a1, q2, a2]);
    expect(text).not.toMatch(/ABANDONED|HIDDEN/);
    expect(records[0]?.text).toBe(
      'user: KEPT-question-one\n\nassistant: KEPT-answer-one\n\nuser: KEPT-question-two-v2\n\nassistant: KEPT-answer-two-v2',
    );
    expect(result.skipped).toEqual({ hidden: 2 });
    expect(result.messages).toBe(4);
  });

  it('walking children[0] would be wrong: the shown branch is not the first child', async () => {
    const t = new ChatgptTree();
    const q = t.add(t.rootId, { text: 'Q' });
    const first = t.add(q, { role: 'assistant', text: 'ABANDONED-first-child' });
    const second = t.add(q, { role: 'assistant', text: 'KEPT-second-child' });
    expect(t.mapping[q]?.children[0]).toBe(first);
    const { records, text } = await split([t.build({ id: 'c', current_node: second })]);
    expect(idsOf(records, 'c')).toEqual([q, second]);
    expect(text).not.toContain('ABANDONED');
  });

  it('renders or skips every content type of the reference, counting what it skips', async () => {
    const t = new ChatgptTree();
    let at = t.rootId;
    const add = (spec: Parameters<ChatgptTree['add']>[1]): string => (at = t.add(at, spec));
    const multimodal = add({
      role: 'user',
      content: {
        content_type: 'multimodal_text',
        parts: [
          { content_type: 'image_asset_pointer', asset_pointer: 'file-service://file-abc', width: 1024, height: 768, size_bytes: 1 },
          '',
          'What is in <b>this</b> picture? {{not a template}}',
          { content_type: 'image_asset_pointer', asset_pointer: 'file-service://file-def' },
          { content_type: 'hologram_pointer', data: 1 },
        ],
      },
    });
    const code = add({ role: 'assistant', recipient: 'python', content: { content_type: 'code', language: 'python', text: 'print(6 * 7)' } });
    const out = add({ role: 'tool', name: 'python', content: { content_type: 'execution_output', text: '42' } });
    add({ role: 'assistant', content: { content_type: 'thoughts', thoughts: [{ summary: 'SKIP-thinking', content: 'SKIP-thought-body' }] } });
    add({ role: 'assistant', content: { content_type: 'reasoning_recap', content: 'SKIP-Thought for 4 seconds' } });
    const browse = add({ role: 'tool', name: 'browser', content: { content_type: 'tether_browsing_display', result: 'L0: search results', summary: null } });
    const quote = add({ role: 'tool', name: 'browser', content: { content_type: 'tether_quote', url: 'https://ex.org/a', title: 'Ex', text: 'quoted words' } });
    const sysErr = add({ role: 'tool', content: { content_type: 'system_error', name: 'Timeout', text: 'tool timed out' } });
    add({ role: 'assistant', content: { content_type: 'brand_new_type_2031', payload: 'SKIP-unknown' } });
    add({ role: 'assistant', content: { content_type: 'text', parts: ['', '   '] } });
    const last = add({ role: 'assistant', text: 'done' });

    const { result, records, text } = await split([t.build({ id: 'types', current_node: last })]);
    expect(idsOf(records, 'types')).toEqual([multimodal, code, out, browse, quote, sysErr, last]);
    expect(records[0]?.text).toBe(
      [
        'user: [image 1024x768]\nWhat is in <b>this</b> picture? {{not a template}}\n[image]',
        'assistant → python: ```python\nprint(6 * 7)\n```',
        'tool (python): 42',
        'tool (browser): L0: search results',
        'tool (browser): [quote: Ex https://ex.org/a]\nquoted words',
        'tool: [error: Timeout] tool timed out',
        'assistant: done',
      ].join('\n\n'),
    );
    expect(text).not.toContain('SKIP-');
    expect(result.skipped).toEqual({
      'part:hologram_pointer': 1,
      'content_type:thoughts': 1,
      'content_type:reasoning_recap': 1,
      'content_type:brand_new_type_2031': 1,
      empty: 1,
    });
  });

  it('falls back to the newest leaf when current_node is missing or dangling, and counts it', async () => {
    const make = (id: string, current: string | null | undefined) => {
      const t = new ChatgptTree();
      const q = t.add(t.rootId, { text: `${id}-q` });
      const older = t.add(q, { role: 'assistant', text: `${id}-older`, createTime: 100 });
      const newer = t.add(q, { role: 'assistant', text: `${id}-newer`, createTime: 200 });
      return { conv: t.build({ id, current_node: current }), q, older, newer };
    };
    const missing = make('missing', undefined);
    const nul = make('null', null);
    const dangling = make('dangling', 'no-such-node');
    const { result, records } = await split([missing.conv, nul.conv, dangling.conv]);
    for (const c of [missing, nul, dangling]) {
      expect(idsOf(records, (c.conv as { id: string }).id)).toEqual([c.q, c.newer]);
    }
    expect(result.skipped).toEqual({ 'fallback:current_node_missing': 2, 'fallback:current_node_dangling': 1 });
  });

  it('stops at a cycle in parent links and at a parent that names no node', async () => {
    const t = new ChatgptTree();
    const a = t.add(t.rootId, { text: 'cycle-a' });
    const b = t.add(a, { role: 'assistant', text: 'cycle-b' });
    const node = t.mapping;
    (node[a] as { parent: string }).parent = b; // a → b → a
    const cyc = t.build({ id: 'cyc', current_node: b });

    const u = new ChatgptTree();
    const x = u.add(u.rootId, { text: 'orphan-x' });
    (u.mapping[x] as { parent: string }).parent = 'gone';
    const y = u.add(x, { role: 'assistant', text: 'orphan-y' });
    const orphan = u.build({ id: 'orphan', current_node: y });

    const { result, records } = await split([cyc, orphan]);
    expect(idsOf(records, 'cyc')).toEqual([a, b]);
    expect(idsOf(records, 'orphan')).toEqual([x, y]);
    expect(result.skipped).toEqual({ 'cycle:parent_links': 1, 'fallback:parent_dangling': 1 });
  }, 10_000);

  it('counts conversations with no visible message and keeps null create_time and any Unicode intact', async () => {
    const empty = new ChatgptTree();
    const h = empty.add(empty.rootId, { role: 'system', text: 'x', hidden: true });
    const emptyConv = empty.build({ id: 'empty', current_node: h });
    const t = new ChatgptTree();
    const texts = ['東京の天気は？ 🌧️👨‍👩‍👧', 'مرحبا بالعالم — שלום', 'Ωμέγα, Привет, e\u0301 z\u0335\u0321', 'tab\there\r\nand "quotes" \\ backslash \u0000 nul'];
    const ids = t.chain(t.rootId, texts);
    for (const id of ids) (t.mapping[id]?.message as { create_time: null }).create_time = null;
    const conv = t.build({ id: 'intl', current_node: ids.at(-1) as string, create_time: null });
    const { result, records } = await split([emptyConv, conv]);
    expect(result.conversations).toBe(2);
    expect(result.emptyConversations).toBe(1);
    expect(records).toHaveLength(1);
    expect(records[0]?.create_time).toBeNull();
    expect(records[0]?.text).toBe(texts.map((x, k) => `${k % 2 === 0 ? 'user' : 'assistant'}: ${x}`).join('\n\n'));
  });
});

// The shared corpus sits beside the repo (../shared) on developer machines and in CI.
const samplePath = join(import.meta.dirname, '../../../../shared/corpus/chat/sample-conversations.json');

describe.skipIf(!existsSync(samplePath))('the shared sample export', () => {
  it('keeps exactly the branch ending at current_node of every conversation, in order', async () => {
    const conversations = JSON.parse(readFileSync(samplePath, 'utf8')) as Array<{
      id: string;
      current_node: string;
      mapping: Record<string, { parent: string | null; children: string[]; message: null | { content: { content_type: string; parts?: unknown[] }; metadata?: Record<string, unknown> } }>;
    }>;
    const sidecar = join(tmp.dir, 'sample.sidecar.jsonl');
    const result = await splitExport(samplePath, { kind: 'chat', format: 'chatgpt' }, sidecar, { file: 'sample', budgetTokens: 800 });
    const bytes = readFileSync(sidecar);
    const records = readSidecar(bytes, result.units) as unknown as ChunkRecord[];

    let branching = 0;
    for (const conv of conversations) {
      // Independently: the ancestors of current_node, and every other node as abandoned.
      const onBranch: string[] = [];
      for (let id: string | null = conv.current_node; id !== null; id = conv.mapping[id]?.parent ?? null) onBranch.unshift(id);
      const branchSet = new Set(onBranch);
      const expected = onBranch.filter((id) => {
        const m = conv.mapping[id]?.message;
        if (!m || m.metadata?.['is_visually_hidden_from_conversation'] === true) return false;
        return !['thoughts', 'reasoning_recap'].includes(m.content.content_type);
      });
      expect(idsOf(records, conv.id)).toEqual(expected);
      const ownText = records.filter((r) => r.conversation_id === conv.id).map((r) => r.text).join('\n');
      for (const [id, node] of Object.entries(conv.mapping)) {
        if (node.children.length > 1) branching++;
        const parts = node.message?.content.parts?.filter((p): p is string => typeof p === 'string' && p.length > 0) ?? [];
        for (const part of parts) {
          if (branchSet.has(id) && node.message?.metadata?.['is_visually_hidden_from_conversation'] !== true) expect(ownText).toContain(part);
          else expect(bytes.toString('utf8')).not.toContain(JSON.stringify(part).slice(1, -1));
        }
      }
    }
    expect(branching).toBeGreaterThan(0); // the sample does have abandoned branches
    for (const r of records) expect(r.tokens).toBeLessThanOrEqual(800);
    expect(result.skipped['hidden']).toBeGreaterThan(0);
  });
});

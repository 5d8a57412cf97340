/**
 * Writes a synthetic ChatGPT `conversations.json` of a given size, deterministically from a
 * seed, in the shapes a real export has: a hidden system message and custom-instruction context
 * at the top, regenerated answers and edited questions (abandoned branches), code and its
 * output, reasoning that is not shown, images, a few very long messages, many languages, and
 * the per-node metadata that makes up much of a real file. Streamed to disk, never held whole.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { pick, rng, SAMPLE_KINDS, sampleText, type SampleKind } from './text-corpus.ts';

export interface GenerateOptions {
  path: string;
  /** Stop after the file reaches this many bytes. */
  targetBytes: number;
  seed: number;
}

export interface GenerateResult {
  bytes: number;
  conversations: number;
  nodes: number;
}

const WEIGHTED_KINDS: SampleKind[] = [...SAMPLE_KINDS, 'english', 'english', 'english', 'english', 'code', 'code', 'chat-mix', 'chat-mix'];

export async function generateChatgptExport(options: GenerateOptions): Promise<GenerateResult> {
  const rand = rng(options.seed);
  // A pool of texts to draw from keeps generation fast; sizes vary from a line to ~40 KB.
  const pool: string[] = [];
  for (let k = 0; k < 1500; k++) {
    const size = k % 100 === 0 ? 40_000 : k % 10 === 0 ? 6000 : 80 + Math.floor(rand() * 1500);
    pool.push(sampleText(pick(rand, WEIGHTED_KINDS), Math.floor(rand() * 2 ** 31), size));
  }
  const out = createWriteStream(options.path, { highWaterMark: 1 << 20 });
  let bytes = 0;
  let conversations = 0;
  let nodes = 0;
  const write = async (s: string): Promise<void> => {
    bytes += Buffer.byteLength(s);
    if (!out.write(s)) await once(out, 'drain');
  };
  await write('[');
  let clock = 1_690_000_000;
  while (bytes < options.targetBytes) {
    const conv = conversation(rand, pool, conversations, (clock += 3600 * rand()));
    nodes += Object.keys(conv.mapping).length;
    await write(`${conversations > 0 ? ', ' : ''}${JSON.stringify(conv)}`);
    conversations++;
  }
  await write(']');
  out.end();
  await once(out, 'close');
  return { bytes, conversations, nodes };
}

type Node = { id: string; message: Record<string, unknown> | null; parent: string | null; children: string[] };

function conversation(rand: () => number, pool: string[], index: number, start: number) {
  const mapping: Record<string, Node> = {};
  let n = 0;
  let t = start;
  const id = (): string => {
    const h = (Math.floor(rand() * 2 ** 32).toString(16) + (index * 1000 + n++).toString(16)).padStart(12, '0');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(0, 3)}-a${h.slice(3, 6)}-${h.slice(-12).padStart(12, '0')}`;
  };
  const add = (parent: string | null, message: ((nodeId: string) => Record<string, unknown>) | null): string => {
    const nodeId = parent === null ? 'client-created-root' : id();
    mapping[nodeId] = { id: nodeId, message: message ? message(nodeId) : null, parent, children: [] };
    if (parent !== null) mapping[parent]?.children.push(nodeId);
    return nodeId;
  };
  const msg = (role: string, content: Record<string, unknown>, extra: Record<string, unknown> = {}) => (nodeId: string) => ({
    id: nodeId,
    author: { role, name: extra['name'] ?? null, metadata: {} },
    create_time: rand() < 0.03 ? null : (t += 5 + rand() * 60),
    update_time: null,
    content,
    status: 'finished_successfully',
    end_turn: role === 'assistant' ? true : null,
    weight: 1,
    metadata: {
      model_slug: 'gpt-4o',
      default_model_slug: 'gpt-4o',
      request_id: `${id()}`,
      message_type: 'next',
      parent_id: nodeId,
      finish_details: role === 'assistant' ? { type: 'stop', stop_tokens: [200002] } : undefined,
      citations: [],
      content_references: [],
      ...(extra['hidden'] ? { is_visually_hidden_from_conversation: true } : {}),
    },
    recipient: extra['recipient'] ?? 'all',
    channel: null,
  });
  const text = (s: string) => ({ content_type: 'text', parts: [s] });

  const root = add(null, null);
  let at = add(root, msg('system', text(''), { hidden: true }));
  if (rand() < 0.4) {
    at = add(at, msg('user', { content_type: 'user_editable_context', user_profile: 'I am a developer.', user_instructions: 'Be concise.' }, { hidden: true }));
  }
  const turns = 1 + Math.floor(rand() * rand() * 40);
  for (let k = 0; k < turns; k++) {
    // An edited question: the old version and its answer stay as an abandoned branch.
    if (rand() < 0.08) {
      const old = add(at, msg('user', text(pick(rand, pool))));
      add(old, msg('assistant', text(pick(rand, pool))));
    }
    const r = rand();
    if (r < 0.05) {
      at = add(at, msg('user', { content_type: 'multimodal_text', parts: [
        { content_type: 'image_asset_pointer', asset_pointer: `file-service://file-${id()}`, width: 1024, height: 768, size_bytes: 123456 },
        pick(rand, pool),
      ] }));
    } else at = add(at, msg('user', text(pick(rand, pool))));
    if (rand() < 0.1) {
      at = add(at, msg('assistant', { content_type: 'thoughts', thoughts: [{ summary: 'Thinking', content: pick(rand, pool) }] }));
      at = add(at, msg('assistant', { content_type: 'reasoning_recap', content: 'Thought for 7 seconds' }));
    }
    if (rand() < 0.1) {
      at = add(at, msg('assistant', { content_type: 'code', language: 'python', text: pick(rand, pool) }, { recipient: 'python' }));
      at = add(at, msg('tool', { content_type: 'execution_output', text: pick(rand, pool) }, { name: 'python' }));
    }
    // A regenerated answer: the first try is abandoned.
    if (rand() < 0.1) add(at, msg('assistant', text(pick(rand, pool))));
    at = add(at, msg('assistant', text(pick(rand, pool))));
  }
  const convId = id();
  return {
    title: pick(rand, pool).slice(0, 40),
    create_time: start,
    update_time: t,
    mapping,
    moderation_results: [],
    current_node: at,
    plugin_ids: null,
    conversation_id: convId,
    conversation_template_id: null,
    gizmo_id: null,
    is_archived: false,
    safe_urls: [],
    default_model_slug: 'gpt-4o',
    id: convId,
  };
}

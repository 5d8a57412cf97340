/**
 * Builders for chat-export fixtures made inside the tests: ChatGPT conversation trees (with
 * branches, hidden messages, every content type), Claude and JSONL exports, and a minimal zip
 * writer (stored or deflated entries) so a .zip can be made on the fly without the zip CLI.
 */
import { constants as zlibConstants, crc32, deflateRawSync } from 'node:zlib';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NodeSpec {
  role?: string;
  name?: string | null;
  recipient?: string;
  content?: Record<string, unknown>;
  /** Shorthand for content {content_type:'text', parts:[text]}. */
  text?: string;
  hidden?: boolean;
  createTime?: number | null;
}

/** A ChatGPT conversation tree; node ids are readable (`n1`, `n2`, ...). */
export class ChatgptTree {
  readonly mapping: Record<string, { id: string; message: unknown; parent: string | null; children: string[] }> = {};
  readonly rootId: string;
  #next = 1;
  #clock = 1_700_000_000;

  constructor(rootId = 'client-created-root') {
    this.rootId = rootId;
    this.mapping[rootId] = { id: rootId, message: null, parent: null, children: [] };
  }

  add(parent: string, spec: NodeSpec): string {
    const id = `n${this.#next++}`;
    const content = spec.content ?? { content_type: 'text', parts: [spec.text ?? `text of ${id}`] };
    this.mapping[id] = {
      id,
      parent,
      children: [],
      message: {
        id,
        author: { role: spec.role ?? 'user', name: spec.name ?? null, metadata: {} },
        create_time: spec.createTime === undefined ? (this.#clock += 10) : spec.createTime,
        update_time: null,
        content,
        status: 'finished_successfully',
        end_turn: null,
        weight: 1,
        metadata: spec.hidden ? { is_visually_hidden_from_conversation: true } : {},
        recipient: spec.recipient ?? 'all',
      },
    };
    this.mapping[parent]?.children.push(id);
    return id;
  }

  /** A chain of alternating user/assistant text messages below `parent`; returns the ids. */
  chain(parent: string, texts: string[]): string[] {
    const ids: string[] = [];
    let at = parent;
    texts.forEach((text, k) => {
      at = this.add(at, { role: k % 2 === 0 ? 'user' : 'assistant', text });
      ids.push(at);
    });
    return ids;
  }

  build(extra: { id: string; title?: string; current_node?: string | null; create_time?: number | null }): Record<string, unknown> {
    return {
      title: extra.title ?? `title ${extra.id}`,
      create_time: extra.create_time === undefined ? 1_700_000_000.5 : extra.create_time,
      update_time: 1_700_000_999.5,
      mapping: this.mapping,
      moderation_results: [],
      current_node: extra.current_node,
      conversation_id: extra.id,
      id: extra.id,
      default_model_slug: 'gpt-4o',
    };
  }
}

/** A temp dir removed by the returned function. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'docbatch-chat-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeJson(dir: string, name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

export function writeBytes(dir: string, name: string, bytes: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** A minimal zip archive (no zip64, no data descriptors): enough for yauzl to read. */
export function makeZip(entries: Array<{ name: string; data: Buffer | string; deflate?: boolean }>): Buffer {
  return zipOf(
    entries.map((e) => {
      const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
      const stored = e.deflate === false;
      return { name: e.name, body: stored ? data : deflateRawSync(data), method: stored ? 0 : 8, size: data.length, crc: crc32(data) };
    }),
  );
}

/**
 * An archive of entries whose bodies are given already compressed, with the sizes to declare.
 * `flags` are ORed into the general-purpose bit flags (bit 0: encrypted); `method` may be any
 * number (99: WinZip AES).
 */
export function zipOf(entries: Array<{ name: string; body: Buffer; method: number; size: number; crc: number; flags?: number }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const { body, method, crc, size } = e;
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800 | (e.flags ?? 0), 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800 | (e.flags ?? 0), 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/**
 * A decompression bomb made in a few milliseconds: `conversations.json` is `[c, c, c, ...]` (one
 * conversation repeated) inflating to about `inflatedBytes`, from a zip about a thousand times
 * smaller. A 16 MiB run of `,c` is deflated once, ending in a full flush (byte-aligned, no
 * back-references across it), and that compressed run is repeated: deflate segments cut that
 * way concatenate into one valid stream. `declaredBytes` makes the header lie about the size.
 * The CRC-32 is left 0 (yauzl does not check it; nothing else reads these archives).
 */
export function bombZip(o: { conversation: unknown; inflatedBytes: number; declaredBytes?: number }): Buffer {
  const c = JSON.stringify(o.conversation);
  const head = Buffer.from(`[${c}`);
  const unit = `,${c}`;
  const run = Buffer.from(unit.repeat(Math.ceil((16 << 20) / unit.length)));
  const tail = Buffer.from(']');
  const times = Math.max(0, Math.ceil((o.inflatedBytes - head.length - tail.length) / run.length));
  const flush = { level: 9, finishFlush: zlibConstants.Z_FULL_FLUSH };
  const runDeflated = deflateRawSync(run, flush);
  const body = Buffer.concat([deflateRawSync(head, flush), ...Array.from({ length: times }, () => runDeflated), deflateRawSync(tail)]);
  const size = head.length + times * run.length + tail.length;
  return zipOf([{ name: 'conversations.json', body, method: 8, size: o.declaredBytes ?? size, crc: 0 }]);
}

/** The sidecar's lines, parsed, each checked against its unit range. */
export function readSidecar(bytes: Buffer, units: Array<{ offset: number; length: number }>): Array<Record<string, unknown>> {
  return units.map((u) => JSON.parse(bytes.subarray(u.offset, u.offset + u.length).toString('utf8')) as Record<string, unknown>);
}

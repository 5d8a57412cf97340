/**
 * Builders for chat-export fixtures made inside the tests: ChatGPT conversation trees (with
 * branches, hidden messages, every content type), Claude and JSONL exports, and a minimal zip
 * writer (stored or deflated entries) so a .zip can be made on the fly without the zip CLI.
 */
import { deflateRawSync, crc32 } from 'node:zlib';
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
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    const body = e.deflate === false ? data : deflateRawSync(data);
    const method = e.deflate === false ? 0 : 8;
    const name = Buffer.from(e.name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
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

/** The sidecar's lines, parsed, each checked against its unit range. */
export function readSidecar(bytes: Buffer, units: Array<{ offset: number; length: number }>): Array<Record<string, unknown>> {
  return units.map((u) => JSON.parse(bytes.subarray(u.offset, u.offset + u.length).toString('utf8')) as Record<string, unknown>);
}

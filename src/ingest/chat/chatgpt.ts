/**
 * One ChatGPT conversation (an element of `conversations.json`) → the conversation as shown.
 *
 * The tree, not the list, is the truth: the shown conversation is the path from the root to
 * `current_node`, found by following `parent` links back from current_node and reversing.
 * Sibling branches (edits, regenerations) are abandoned versions and are never read, so
 * neither their text nor their shape matters. When current_node is missing or names no node,
 * the newest leaf (greatest create_time; on a tie, the later in the mapping) stands in for it.
 */
import {
  FieldError, bounded, expectArray, expectObject, expectString, isObject, key, kindOf, MAX_ID_CHARS, MAX_ROLE_CHARS, MAX_TITLE_CHARS,
  optionalNumber, optionalString, type JsonObject,
} from './fields.ts';
import type { ChatMessage, Conversation, SkipCounter } from './types.ts';

export function readChatgptConversation(value: unknown, skips: SkipCounter): Conversation {
  const conv = expectObject(value, '(conversation)');
  const id = bounded(optionalString(conv['conversation_id'], 'conversation_id'), 'conversation_id', MAX_ID_CHARS) ?? bounded(expectString(conv['id'], 'id'), 'id', MAX_ID_CHARS);
  const title = bounded(optionalString(conv['title'], 'title'), 'title', MAX_TITLE_CHARS) ?? '';
  const createTime = optionalNumber(conv['create_time'], 'create_time');
  const mapping = expectObject(conv['mapping'], 'mapping');
  const current = optionalString(conv['current_node'], 'current_node');

  let leaf: string | undefined;
  if (current !== undefined && Object.hasOwn(mapping, current)) leaf = current;
  else {
    skips.add(current === undefined ? 'fallback:current_node_missing' : 'fallback:current_node_dangling');
    leaf = newestLeaf(mapping);
  }

  const path = leaf === undefined ? [] : branchTo(mapping, leaf, skips);
  const messages: ChatMessage[] = [];
  for (const nodeId of path) {
    const node = mapping[nodeId] as JsonObject;
    const raw = node['message'];
    if (raw === null || raw === undefined) continue; // the root
    const msg = renderMessage(raw, key(key('mapping', nodeId), 'message'), nodeId, skips);
    if (msg) messages.push(msg);
  }
  return { id, title, createTime, messages };
}

function nodeAt(mapping: JsonObject, id: string): JsonObject {
  return expectObject(mapping[id], key('mapping', id));
}

function parentOf(node: JsonObject, id: string): string | undefined {
  return optionalString(node['parent'], key(key('mapping', id), 'parent'));
}

/** Node ids from the root down to `leaf`. A cycle or a parent that names no node ends the walk. */
function branchTo(mapping: JsonObject, leaf: string, skips: SkipCounter): string[] {
  const path: string[] = [];
  const seen = new Set<string>();
  let id: string | undefined = leaf;
  while (id !== undefined) {
    if (seen.has(id)) {
      skips.add('cycle:parent_links');
      break;
    }
    seen.add(id);
    path.push(id);
    const parent = parentOf(nodeAt(mapping, id), id);
    if (parent !== undefined && !Object.hasOwn(mapping, parent)) {
      skips.add('fallback:parent_dangling');
      break;
    }
    id = parent;
  }
  return path.reverse();
}

/** The leaf (no child that exists) with the greatest message create_time; undefined for an empty mapping. */
function newestLeaf(mapping: JsonObject): string | undefined {
  let best: string | undefined;
  let bestTime = -Infinity;
  let last: string | undefined;
  for (const id of Object.keys(mapping)) {
    last = id;
    const node = nodeAt(mapping, id);
    const children = node['children'];
    const hasChild = Array.isArray(children) && children.some((c) => typeof c === 'string' && Object.hasOwn(mapping, c));
    if (hasChild) continue;
    const msg = node['message'];
    const t = isObject(msg) && typeof msg['create_time'] === 'number' ? msg['create_time'] : -Infinity;
    if (best === undefined || t >= bestTime) {
      best = id;
      bestTime = t;
    }
  }
  return best ?? last; // a mapping that is all cycle has no leaf: take its last node
}

function renderMessage(raw: unknown, at: string, nodeId: string, skips: SkipCounter): ChatMessage | undefined {
  const msg = expectObject(raw, at);
  const metadata = msg['metadata'];
  if (isObject(metadata) && metadata['is_visually_hidden_from_conversation'] === true) {
    skips.add('hidden');
    return undefined;
  }
  const author = expectObject(msg['author'], `${at}.author`);
  const role = bounded(expectString(author['role'], `${at}.author.role`), `${at}.author.role`, MAX_ROLE_CHARS);
  const name = bounded(optionalString(author['name'], `${at}.author.name`), `${at}.author.name`, MAX_ROLE_CHARS);
  const recipient = bounded(optionalString(msg['recipient'], `${at}.recipient`), `${at}.recipient`, MAX_ROLE_CHARS);
  const content = expectObject(msg['content'], `${at}.content`);
  const type = expectString(content['content_type'], `${at}.content.content_type`);

  let text: string;
  switch (type) {
    case 'text':
    case 'multimodal_text':
      text = renderParts(expectArray(content['parts'], `${at}.content.parts`), `${at}.content.parts`, skips);
      break;
    case 'code': {
      const code = expectString(content['text'], `${at}.content.text`);
      const lang = optionalString(content['language'], `${at}.content.language`);
      text = code.trim() ? `\`\`\`${lang && lang !== 'unknown' ? lang : ''}\n${code}\n\`\`\`` : '';
      break;
    }
    case 'execution_output':
      text = expectString(content['text'], `${at}.content.text`);
      break;
    case 'tether_browsing_display':
      text = [optionalString(content['result'], `${at}.content.result`), optionalString(content['summary'], `${at}.content.summary`)]
        .filter((s) => s !== undefined && s.trim() !== '')
        .join('\n');
      break;
    case 'tether_quote': {
      const quote = optionalString(content['text'], `${at}.content.text`) ?? '';
      const source = [optionalString(content['title'], `${at}.content.title`), optionalString(content['url'], `${at}.content.url`)]
        .filter((s) => s)
        .join(' ');
      text = quote.trim() ? (source ? `[quote: ${source}]\n${quote}` : quote) : '';
      break;
    }
    case 'system_error': {
      const errName = optionalString(content['name'], `${at}.content.name`) ?? 'error';
      text = `[error: ${errName}] ${optionalString(content['text'], `${at}.content.text`) ?? ''}`.trim();
      break;
    }
    default:
      // thoughts, reasoning_recap, user_editable_context, and any type newer than this code
      skips.add(`content_type:${type}`);
      return undefined;
  }
  if (text.trim() === '') {
    skips.add('empty');
    return undefined;
  }
  let label = name ? `${role} (${name})` : role;
  if (recipient && recipient !== 'all') label += ` → ${recipient}`;
  const id = bounded(optionalString(msg['id'], `${at}.id`), `${at}.id`, MAX_ID_CHARS) ?? bounded(nodeId, key('mapping', nodeId), MAX_ID_CHARS);
  return { id, role: label, text };
}

/** Text parts as they are, images as `[image WxH]`, other media as placeholders; empty parts dropped. */
function renderParts(parts: unknown[], at: string, skips: SkipCounter): string {
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (typeof part === 'string') {
      if (part.trim() !== '') out.push(part);
      continue;
    }
    if (part === null || part === undefined) continue;
    if (!isObject(part)) throw new FieldError(`${at}[${i}]`, `expected a string or an object, found ${kindOf(part)}`);
    const type = typeof part['content_type'] === 'string' ? part['content_type'] : '(none)';
    switch (type) {
      case 'image_asset_pointer': {
        const w = part['width'];
        const h = part['height'];
        out.push(typeof w === 'number' && typeof h === 'number' ? `[image ${w}x${h}]` : '[image]');
        break;
      }
      case 'audio_transcription': {
        const t = part['text'];
        if (typeof t === 'string' && t.trim() !== '') out.push(t);
        break;
      }
      case 'audio_asset_pointer':
      case 'real_time_user_audio_video_asset_pointer':
        out.push('[audio]');
        break;
      default:
        skips.add(`part:${type}`);
    }
  }
  return out.join('\n');
}

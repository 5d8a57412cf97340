/**
 * Turning a request's messages or prompt into what the engine needs, once, at admission: the
 * prompt token count, the images (decoded, measured with sharp, hashed), the text that the reply
 * describes, and the seed of the deterministic reply.
 */
import { createHash, type Hash } from 'node:crypto';
import sharp, { type Metadata } from 'sharp';
import { BodyDataUrl } from './body-json.ts';
import { imageHead, type ImageHead } from './image-head.ts';
import { badRequest, notImplemented, notMultimodal, tooManyImages } from './errors.ts';
import type { EmulatorOptions } from './options.ts';
import { countText, GENERATION_PROMPT, imageTokens, MESSAGE_OVERHEAD, type TokenPart } from './tokens.ts';

export interface ImageInfo {
  width: number;
  height: number;
  format: string;
  /** First 16 hex digits of sha256 of the decoded image bytes. */
  sha16: string;
  tokens: number;
}

export interface ParsedMessage {
  role: string;
  parts: (({ text: string }) | ImageInfo)[];
}

/** One engine sequence's input, ready to schedule. */
export interface PreparedPrompt {
  promptTokens: number;
  /** Images in the whole prompt. */
  imageCount: number;
  /** Images of the last user message (the reply lists them). */
  lastImages: ImageInfo[];
  /** The last text part of the last user message (the reply describes it); '' if none. */
  lastText: string;
  /** Every text in the prompt, for hang rules. */
  texts: string[];
  /** sha256 of the content: the same content always gets the same reply. */
  seed: Buffer;
  /** For /tokenize. */
  messages: ParsedMessage[] | null;
}

interface RawImage {
  url: string | BodyDataUrl;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const DATA_URL = /^data:([^,]*?),/s;

/** Decodes a data URL; remote URLs are refused (never fetched: an SSRF risk in real servers). */
function decodeDataUrl(url: string | BodyDataUrl): Buffer {
  let meta: string | undefined;
  if (url instanceof BodyDataUrl) {
    meta = url.meta;
  } else {
    if (/^https?:\/\//i.test(url)) {
      throw badRequest('The emulator never fetches remote images (http/https URLs); send a base64 data URL.');
    }
    meta = DATA_URL.exec(url)?.[1];
  }
  if (meta === undefined) throw badRequest(`Invalid image URL: expected a data URL, got ${JSON.stringify(String(url).slice(0, 40))}.`);
  if (!meta.split(';').includes('base64')) throw notImplemented('Only base64 data URLs are supported for now.');
  const bytes = url instanceof BodyDataUrl ? url.decodeBase64() : Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
  if (bytes.length === 0) throw badRequest('Failed to load image: the data URL is empty.');
  return bytes;
}

async function loadImage(raw: RawImage): Promise<ImageInfo> {
  const quick = raw.url instanceof BodyDataUrl ? readHead(raw.url) : undefined;
  if (quick) return quick;
  const bytes = decodeDataUrl(raw.url);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: 2 ** 28 }).metadata();
  } catch (err) {
    throw badRequest(`Failed to load image: ${(err as Error).message}`);
  }
  if (meta.format === 'svg' || !meta.width || !meta.height) throw badRequest(`Failed to load image: unsupported format ${meta.format}.`);
  const sha16 = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  return { width: meta.width, height: meta.height, format: meta.format, sha16, tokens: imageTokens(meta.width, meta.height) };
}

/**
 * A PNG or JPEG in a base64 URL cut from the body, read and hashed a slice at a time (never
 * decoded whole); undefined where sharp must look (another format, a header it cannot read).
 */
function readHead(url: BodyDataUrl): ImageInfo | undefined {
  if (!url.meta?.split(';').includes('base64')) return undefined;
  let head: ImageHead | undefined;
  let first = true;
  const hash = createHash('sha256');
  const read = url.eachDecoded((bytes) => {
    if (first) {
      first = false;
      head = imageHead(bytes);
      if (!head || head.width * head.height > 2 ** 28) return false;
    }
    hash.update(bytes);
  });
  if (!read || !head || head.width * head.height > 2 ** 28) return undefined;
  return { ...head, sha16: hash.digest('hex').slice(0, 16), tokens: imageTokens(head.width, head.height) };
}

type Part = { text: string } | { image: RawImage };

function parseParts(content: unknown, where: string): Part[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return [{ text: content }];
  if (!Array.isArray(content)) throw badRequest(`${where}.content must be a string or a list of parts.`);
  return content.map((p, i): Part => {
    const at = `${where}.content[${i}]`;
    if (!isObject(p)) throw badRequest(`${at} must be an object.`);
    if (p.type === 'text') {
      if (typeof p.text !== 'string') throw badRequest(`${at}.text must be a string.`);
      return { text: p.text };
    }
    if (p.type === 'image_url') {
      const iu = p.image_url;
      const url = typeof iu === 'string' || iu instanceof BodyDataUrl ? iu : isObject(iu) ? iu.url : undefined;
      if (typeof url !== 'string' && !(url instanceof BodyDataUrl)) throw badRequest(`${at}.image_url.url must be a string.`);
      return { image: { url } };
    }
    throw badRequest(`${at}: unsupported content part type ${JSON.stringify(p.type)}.`);
  });
}

function seedHash(): Hash {
  return createHash('sha256');
}

/** What the served model takes of images. */
export type ImagePolicy = Pick<EmulatorOptions, 'model' | 'maxImagesPerPrompt' | 'acceptsImages'>;

/** A chat conversation (the `messages` of one request, or one conversation of a batch). */
export async function prepareChat(messages: unknown, images: ImagePolicy, where = 'messages'): Promise<PreparedPrompt> {
  if (!Array.isArray(messages) || messages.length === 0) throw badRequest(`${where} must be a non-empty list.`);
  const raw = messages.map((m, i) => {
    if (!isObject(m) || typeof m.role !== 'string') throw badRequest(`${where}[${i}] must be an object with a string role.`);
    return { role: m.role, parts: parseParts(m.content, `${where}[${i}]`) };
  });
  const imageCount = raw.reduce((n, m) => n + m.parts.filter((p) => 'image' in p).length, 0);
  // vLLM asks for the model's multimodal processor before it counts or decodes an image.
  if (imageCount > 0 && !images.acceptsImages) throw notMultimodal(images.model);
  if (imageCount > images.maxImagesPerPrompt) throw tooManyImages(images.maxImagesPerPrompt);

  // Decode all images at once; sharp reads headers on the libuv pool.
  const parsed: ParsedMessage[] = await Promise.all(
    raw.map(async (m) => ({
      role: m.role,
      parts: await Promise.all(m.parts.map((p) => ('image' in p ? loadImage(p.image) : Promise.resolve(p)))),
    })),
  );

  const seed = seedHash();
  const texts: string[] = [];
  let promptTokens = GENERATION_PROMPT;
  for (const m of parsed) {
    promptTokens += MESSAGE_OVERHEAD;
    seed.update(`\u0000role:${m.role}`);
    for (const p of m.parts) {
      if ('text' in p) {
        promptTokens += countText(p.text);
        texts.push(p.text);
        seed.update('\u0000text:').update(p.text);
      } else {
        promptTokens += p.tokens;
        seed.update(`\u0000image:${p.sha16}`);
      }
    }
  }
  const lastUser = parsed.findLast((m) => m.role === 'user');
  const lastImages = lastUser ? lastUser.parts.filter((p): p is ImageInfo => !('text' in p)) : [];
  const lastTextPart = lastUser?.parts.findLast((p): p is { text: string } => 'text' in p);
  return { promptTokens, imageCount, lastImages, lastText: lastTextPart?.text ?? '', texts, seed: seed.digest(), messages: parsed };
}

/** One prompt of /v1/completions: a string, or token ids. */
export function prepareCompletion(prompt: string | number[]): PreparedPrompt {
  const text = typeof prompt === 'string' ? prompt : prompt.join(' ');
  const promptTokens = typeof prompt === 'string' ? countText(prompt) : prompt.length;
  const seed = seedHash().update(typeof prompt === 'string' ? '\u0000prompt:' : '\u0000ids:').update(text).digest();
  return { promptTokens, imageCount: 0, lastImages: [], lastText: text, texts: [text], seed, messages: null };
}

/** The parts of parsed messages as the tokenizer sees them. */
export function tokenParts(messages: readonly ParsedMessage[]): { role: string; parts: TokenPart[] }[] {
  return messages.map((m) => ({ role: m.role, parts: m.parts.map((p) => ('text' in p ? { text: p.text } : { width: p.width, height: p.height })) }));
}

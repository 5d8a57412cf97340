/**
 * The one reader of the environment. Every setting has one row in SETTINGS: its environment
 * variable, its flag, its default and its validation. Flags override the environment, the
 * environment overrides defaults. A bad value throws a ConfigError naming the setting, where the
 * value came from, and what is wrong. The README's configuration table is printed from SETTINGS
 * (`docbatch config --markdown`), so the two cannot drift apart.
 *
 * Secrets (rows marked `secret`) can also be read from a file, so they need not show in `ps` or
 * in the environment: `--<flag>-file PATH` and `<ENV>_FILE=PATH` (one trailing newline is
 * dropped). Giving a value and its file at the same level is an error; a secret given as a flag
 * still works, and `secretFlagWarnings` says that it shows in `ps`. URLs are shown with their
 * password masked (`redactUrl`), never whole, in messages.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { printable } from './printable.ts';
import { formatLocation, isS3Uri, parseS3Uri } from './s3-uri.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const num = (min: number) => z.coerce.number().min(min);
const str = () => z.string().min(1);
const optionalStr = () => z.string().min(1).optional();
const bool = () =>
  z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])]))
    .transform((v) => v === true || v === '1' || v === 'true' || v === 'yes' || v === 'on');

/** A comma-separated list of host names or addresses (no ports), `*.` allowed in front: a string[] out. */
const names = () =>
  z
    .string()
    .transform((v) => v.split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== ''))
    .pipe(z.array(z.string().regex(/^(\*\.)?[a-z0-9_.-]+$|^\[?[0-9a-f:.]+\]?$/, 'must be host names or addresses separated by commas, without ports (`*.example.com` for every name under it)')));

/** A folder, or an s3://bucket/prefix URI (checked here, so a bad one is a ConfigError at start). */
const location = () =>
  str().superRefine((v, ctx) => {
    if (!isS3Uri(v)) return;
    try {
      parseS3Uri(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

/**
 * The database a Redis URL names, as ioredis reads it (the path, `redis://host:6379/2`, else
 * `?db=2`), or null when it names none. A name that is not a number is an error: ioredis sent
 * it as `SELECT NaN`, refused, and the process died with an ioredis stack.
 */
export function redisDatabaseOf(v: string): number | null {
  const u = new URL(v);
  const named = u.pathname !== '' && u.pathname !== '/' ? decodeURIComponent(u.pathname.slice(1)) : u.searchParams.get('db');
  if (named === null) return null;
  if (!/^\d{1,9}$/.test(named)) throw new Error(`the database (the path of redis://host:6379/0, or ?db=) must be a number, not ${JSON.stringify(printable(named))}`);
  return Number(named);
}

const redisUrl = () =>
  url(['redis:', 'rediss:']).superRefine((v, ctx) => {
    try {
      redisDatabaseOf(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/**
 * The engine's URL: the client sends requests to its origin and path only, so a user, password,
 * query or fragment in it would be silently dropped (and printed in logs): refused instead.
 */
const engineUrl = () =>
  url(['http:', 'https:'])
    .refine((v) => {
      const u = URL.parse(v); // null: not a URL, said by url() already
      return u === null || (u.username === '' && u.password === '');
    }, 'must not carry a user or password (they would not be sent, and would show in logs): the engine takes an API key, set ENGINE_API_KEY or ENGINE_API_KEY_FILE')
    .refine((v) => {
      const u = URL.parse(v);
      return u === null || (u.search === '' && u.hash === '');
    }, 'must not have a query or fragment (they would not be sent)');

interface Setting {
  env: string;
  flag?: string;
  schema: z.ZodType;
  default?: unknown;
  /** Shown in the docs table instead of the literal default (e.g. "number of cores"). */
  defaultText?: string;
  describe: string;
  /** Never printed; also read from `<env>_FILE` and `--<flag>-file`. */
  secret?: boolean;
}

/** Every setting docbatch has. The key is the name in the typed Config. */
export const SETTINGS = {
  redisUrl: { env: 'REDIS_URL', flag: 'redis-url', schema: redisUrl(), default: 'redis://127.0.0.1:6379', describe: 'Redis holding the queues. `rediss://` for TLS; an ACL user goes in the URL (`redis://user:pass@host:6379/0`).', secret: true },
  prefix: { env: 'DOCBATCH_PREFIX', flag: 'prefix', schema: z.string().regex(/^[A-Za-z0-9_{}.-]+$/, 'may hold letters, digits and _ { } . - only'), default: 'docbatch', describe: 'Key prefix of every Redis key (use `{docbatch}` on Redis Cluster).' },
  engineUrl: { env: 'ENGINE_URL', flag: 'engine-url', schema: engineUrl(), default: 'http://127.0.0.1:8000', describe: 'The OpenAI-compatible server (vLLM) this worker sends to. No user, password or query in it: the key goes in ENGINE_API_KEY.' },
  engineApiKey: { env: 'ENGINE_API_KEY', flag: 'engine-api-key', schema: optionalStr(), describe: 'Sent as `Authorization: Bearer` (vLLM `--api-key`).', secret: true },
  engineRpm: { env: 'ENGINE_RPM', flag: 'engine-rpm', schema: int(1).optional(), describe: "The engine's requests-per-minute limit (a paid or shared endpoint): every worker sending to it keeps to it together, through Redis." },
  engineTpm: { env: 'ENGINE_TPM', flag: 'engine-tpm', schema: int(1).optional(), describe: "The engine's tokens-per-minute limit (prompt + max_tokens per request, counted when it leaves), shared like ENGINE_RPM." },
  engineRateWindowMs: { env: 'ENGINE_RATE_WINDOW_MS', flag: 'engine-rate-window', schema: int(100), default: 60 * SECOND, describe: 'The window ENGINE_RPM and ENGINE_TPM count in (endpoints count per minute).' },
  fallbackEngineUrls: { env: 'ENGINE_FALLBACK_URLS', flag: 'fallback-engine-url', schema: z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v), z.array(engineUrl())), default: [], defaultText: 'none', describe: 'Engines to send to while the primary is down past ENGINE_FALLBACK_AFTER_MS (comma-separated; the flag repeats). They should serve the same models; the primary is preferred again once it is up.' },
  fallbackApiKeys: { env: 'ENGINE_FALLBACK_API_KEYS', flag: 'fallback-api-keys', schema: z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()) : v), z.array(z.string())), default: [], defaultText: 'none', describe: 'API keys of the fallback engines, comma-separated in their order (empty for none).', secret: true },
  fallbackAfterMs: { env: 'ENGINE_FALLBACK_AFTER_MS', flag: 'fallback-after', schema: int(0), default: 30 * SECOND, describe: 'How long the primary engine must be down before units go to a fallback engine.' },
  pdfPassword: { env: 'PDF_PASSWORD', flag: 'password', schema: optionalStr(), describe: '`enqueue`: the password of encrypted PDFs.', secret: true },
  model: { env: 'MODEL', flag: 'model', schema: optionalStr(), defaultText: 'what `/v1/models` reports', describe: 'The model name sent to the engine.' },
  outDir: { env: 'OUT_DIR', flag: 'out', schema: location(), default: './out', describe: 'Where finished documents are written: a folder, or `s3://bucket/prefix` (object storage; see S3_FORCE_PATH_STYLE).' },
  blobDir: { env: 'BLOB_DIR', flag: 'blob-dir', schema: location(), default: './data/blobs', describe: 'Content-addressed store of inputs, shared by producers, workers and the writer: a folder on a shared filesystem (same path on every machine), or `s3://bucket/prefix` (nothing shared but the object store).' },
  batchSize: { env: 'BATCH_SIZE', flag: 'batch-size', schema: int(1, 4096), default: 16, describe: 'Units a worker holds beyond its window, prepared (rendered) ahead so the engine never waits for the CPU.' },
  maxInFlight: { env: 'MAX_IN_FLIGHT', flag: 'max-in-flight', schema: int(1, 16384), default: 256, describe: 'Upper bound of requests one worker keeps at the engine (the adaptive window never exceeds it).' },
  initialInFlight: { env: 'INITIAL_IN_FLIGHT', flag: 'initial-in-flight', schema: int(1, 16384), default: 16, describe: 'Window a worker starts with before the engine\'s signals move it.' },
  imageSize: { env: 'IMAGE_SIZE', flag: 'image-size', schema: int(64, 10000), default: 1288, describe: 'Longest side of a rendered page, in pixels.' },
  imageFormat: { env: 'IMAGE_FORMAT', flag: 'image-format', schema: z.enum(['png', 'jpeg']), default: 'png', describe: 'Page image format sent to the engine.' },
  imageQuality: { env: 'IMAGE_QUALITY', flag: 'image-quality', schema: int(1, 100), default: 85, describe: 'JPEG quality.' },
  renderers: { env: 'RENDERERS', flag: 'renderers', schema: int(1, 256), default: availableParallelism(), defaultText: 'number of cores', describe: 'Renderer processes per worker.' },
  renderTimeoutMs: { env: 'RENDER_TIMEOUT_MS', flag: 'render-timeout', schema: int(100), default: 60 * SECOND, describe: 'Wall-clock limit for one page render.' },
  // Rendering (src/render): the engine, and the memory of all renderers together.
  renderer: { env: 'RENDERER', flag: 'renderer', schema: z.enum(['pdfium', 'pdfjs']), default: 'pdfium', describe: 'Engine that draws pages: `pdfium` (PDFium in WebAssembly) or `pdfjs`. A page that fails, crashes or times out in one is drawn by the other before it fails; reports name the engine of each page.' },
  renderMemoryMb: { env: 'RENDER_MEMORY_MB', flag: 'render-memory', schema: int(256), default: Math.max(256, Math.floor(totalmem() / 1024 / 1024 / 2)), defaultText: 'half the machine\'s memory', describe: 'Resident memory of all renderer processes of a worker together, in MB: above it idle renderers are let go, then the largest busy one is killed (its page goes to the other engine).' },
  chunkTokens: { env: 'CHUNK_TOKENS', flag: 'chunk-tokens', schema: int(64, 1_000_000), default: 3500, describe: 'Token budget of one chat chunk (never above what the engine\'s context allows).' },
  chunkOverlapTokens: { env: 'CHUNK_OVERLAP_TOKENS', flag: 'chunk-overlap', schema: int(0, 1_000_000), default: 0, describe: 'Trailing messages of the previous chunk repeated for context, up to this many tokens (less than CHUNK_TOKENS).' },
  pageMaxTokens: { env: 'PAGE_MAX_TOKENS', flag: 'page-max-tokens', schema: int(1, 1_000_000), default: 4096, describe: '`max_tokens` for a page transcription.' },
  chatMaxTokens: { env: 'CHAT_MAX_TOKENS', flag: 'chat-max-tokens', schema: int(1, 1_000_000), default: 1024, describe: '`max_tokens` for a chunk summary.' },
  requestTimeoutMs: { env: 'REQUEST_TIMEOUT_MS', flag: 'request-timeout', schema: int(100), default: 10 * MINUTE, describe: 'A request with no answer after this is closed (which aborts it inside vLLM) and retried.' },
  attempts: { env: 'ATTEMPTS', flag: 'attempts', schema: int(1, 100), default: 5, describe: "Attempts per unit for retryable errors (waiting for a dead engine uses none). The worker that takes a unit decides with its own value, whatever the producer's was." },
  engineReleaseMs: { env: 'ENGINE_RELEASE_AFTER_MS', flag: 'engine-release-after', schema: int(0), default: 30 * SECOND, describe: "A worker whose engine is down this long hands its units back to the queue (no attempt used) for healthy workers, and takes none until its engine is back." },
  // ---- engine back-off (src/infer/dispatch.ts) ----
  engineRetryAfterMaxMs: { env: 'ENGINE_RETRY_AFTER_MAX_MS', flag: 'engine-retry-after-max', schema: int(0), default: 60 * SECOND, describe: "The longest a worker honours an engine's Retry-After (a 429 rate limit, a 503 \"server busy\"): a longer one is cut to this, after which the request is sent again (and refused again, if the endpoint still means it). A backing-off unit holds no slot in the window meanwhile." },
  engineStartTimeoutMs: { env: 'ENGINE_START_TIMEOUT_MS', flag: 'engine-start-timeout', schema: int(0), default: 10 * MINUTE, describe: 'How long a starting worker waits for its engine to answer (a model still loading) before it refuses to start.' },
  textOnly: { env: 'TEXT_ONLY', flag: 'text-only', schema: bool(), default: false, describe: "The worker's model takes no images: it starts anyway and takes only work queued for its model by name (never the shared queue)." },
  cleanIntervalMs: { env: 'GROW_INTERVAL_MS', flag: 'grow-interval', schema: int(10), default: 30 * SECOND, describe: 'After an out-of-memory, the window grows back by one per this long without another (a clean interval).' },
  ceilingHoldMs: { env: 'CEILING_HOLD_MS', flag: 'ceiling-hold', schema: int(0), default: 5 * MINUTE, describe: 'How long the window stays just below a size that ran out of memory before trying it again.' },
  lockDurationMs: { env: 'LOCK_DURATION_MS', flag: 'lock-duration', schema: int(1000), default: 60 * SECOND, describe: 'BullMQ lock of a unit in flight (renewed at half); a crashed worker\'s units return after about this long.' },
  stalledIntervalMs: { env: 'STALLED_INTERVAL_MS', flag: 'stalled-interval', schema: int(500), default: 30 * SECOND, describe: 'How often workers look for units whose worker died.' },
  shutdownTimeoutMs: { env: 'SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout', schema: int(0), default: 30 * SECOND, describe: 'On SIGTERM, how long in-flight units may take to finish before the worker forces its exit.' },
  workerName: { env: 'WORKER_NAME', flag: 'name', schema: str(), default: `${hostname()}-${process.pid}`, defaultText: 'host-pid', describe: 'Name of this worker in logs, metrics and the dashboard.' },
  feedDepth: { env: 'FEED_DEPTH', flag: 'feed-depth', schema: int(1, 1_000_000), default: 256, describe: "Units kept in each infer queue's BullMQ wait list; the rest wait in the fair feeding round (the dashboard's /api/backlog counts both)." },
  feedDocuments: { env: 'FEED_DOCUMENTS', flag: 'feed-documents', schema: int(1, 100_000), default: 64, describe: "Documents of one infer queue fed round-robin at once; the rest wait their turn in order (a higher --priority enters at once). It bounds the engine answers Redis holds for unfinished documents." },
  waitNotesAfterMs: { env: 'WAIT_NOTES_AFTER_MS', flag: 'notes-after', schema: int(0), default: 10 * SECOND, describe: "`enqueue --wait` and `retry --wait`: how long they wait before saying what holds the work up (no worker or writer with a heartbeat, a model no running worker serves, a paused queue; lines starting `!`). A worker sends its first heartbeat once its engine answers: raise it when workers start along with the command and their engines take a while to load; 0 says it at once." },
  exitWhenIdleS: { env: 'EXIT_WHEN_IDLE', flag: 'exit-when-idle', schema: int(1).optional(), describe: 'A worker that has found no work for this many seconds drains and exits 0 (spot instances, scaled pods).' },
  writeAttempts: { env: 'WRITE_ATTEMPTS', flag: 'write-attempts', schema: int(1, 30), default: 10, describe: "Tries of a document's write (backoff doubling from 1 s: 10 tries wait about 17 minutes) before the document is marked failed with WRITE_FAILED." },
  retentionDays: { env: 'RETENTION_DAYS', flag: 'retention-days', schema: num(0), default: 7, describe: "How long a written document's record (and its results archive) is kept for status, retry and resume; then `docbatch gc` (run by the writer) removes them." },
  schemaInPrompt: { env: 'SCHEMA_IN_PROMPT', flag: 'schema-in-prompt', schema: bool(), default: false, describe: "This worker's engine has no structured output: JSON tasks send no `response_format` and put their JSON Schema into the prompt instead (answers are validated against it either way). Without it, an engine that refuses `response_format` json_schema with a 400 is asked again at once the way it takes (vLLM's `guided_json`, then json_object, then the schema in the prompt), remembered per model, and so is one that ignores `response_format` silently, once 3 answers in a row are not JSON at all (docs/tasks.md); set it for an engine known to have no structured output, to skip finding out." },
  gpuHourlyUsd: { env: 'GPU_HOURLY_USD', flag: 'gpu-hourly-usd', schema: num(0).optional(), describe: 'Price of one GPU hour; reports then carry cost.' },
  budgetUsd: { env: 'BUDGET_USD', flag: 'budget-usd', schema: num(0).optional(), describe: 'Workers pause intake once the engine time spent costs this much (needs GPU_HOURLY_USD).' },
  metricsPort: { env: 'METRICS_PORT', flag: 'metrics-port', schema: int(0, 65535).optional(), describe: 'Port of the worker\'s `/metrics` and `/health` (off when unset; 0 picks one).' },
  metricsHost: { env: 'METRICS_HOST', flag: 'metrics-host', schema: str(), default: '127.0.0.1', describe: 'Address the worker\'s metrics server binds to.' },
  dashboardPort: { env: 'DASHBOARD_PORT', flag: 'port', schema: int(0, 65535), default: 3000, describe: 'Port of the dashboard.' },
  dashboardHost: { env: 'DASHBOARD_HOST', flag: 'host', schema: str(), default: '127.0.0.1', describe: 'Address the dashboard binds to; beyond loopback it requires credentials.' },
  dashboardUser: { env: 'DASHBOARD_USER', schema: optionalStr(), describe: 'Basic-auth user of the dashboard.' },
  dashboardPassword: { env: 'DASHBOARD_PASSWORD', schema: optionalStr(), describe: 'Basic-auth password of the dashboard.', secret: true },
  dashboardToken: { env: 'DASHBOARD_TOKEN', schema: optionalStr(), describe: 'Bearer token accepted by the dashboard (alternative to user/password).', secret: true },
  dashboardReadToken: { env: 'DASHBOARD_READ_TOKEN', schema: optionalStr(), describe: 'Bearer token that may only read figures: GET /metrics, /health and /api/backlog (for Prometheus and KEDA), nothing else.', secret: true },
  // ---- who the HTTP servers answer (hardening: DNS rebinding, cross-site requests) ----
  dashboardPublicNames: { env: 'DASHBOARD_PUBLIC_NAMES', flag: 'public-names', schema: names(), default: '', defaultText: 'none', describe: 'Host names (comma-separated; `*.example.com` for every name under it) the dashboard is reached by besides `localhost`, loopback and the address it binds to, e.g. behind a proxy. Requests naming any other Host are refused (403), against DNS rebinding.' },
  metricsPublicNames: { env: 'METRICS_PUBLIC_NAMES', flag: 'metrics-public-names', schema: names(), default: '', defaultText: 'none', describe: "Host names the worker's metrics server is reached by besides `localhost`, loopback and the address it binds to (comma-separated; `*.example.com` for every name under it)." },

  dashboardReadOnly: { env: 'DASHBOARD_READ_ONLY', flag: 'read-only', schema: bool(), default: false, describe: 'Dashboard shows queues but cannot retry, clean or remove jobs.' },
  // ---- input limits (hardening: decompression bombs, runaway exports) ----
  zipMaxRatio: { env: 'ZIP_MAX_RATIO', flag: 'zip-max-ratio', schema: num(1), default: 100, describe: "A .zip export whose conversations.json inflates to more than this many times its compressed size is refused (ZIP_TOO_LARGE): real exports compress 5 to 20 times, decompression bombs a thousand." },
  zipMaxBytes: { env: 'ZIP_MAX_BYTES', flag: 'zip-max-bytes', schema: int(1), default: 4 * 1024 ** 3, describe: "A .zip export whose conversations.json inflates to more bytes than this is refused (ZIP_TOO_LARGE), by its declared size and by the bytes actually inflated." },
  inputMaxPages: { env: 'INPUT_MAX_PAGES', flag: 'input-max-pages', schema: int(1), default: 100_000, describe: 'A PDF whose page tree claims more pages than this, or a TIFF with more pages (directories), is refused (PDF_TOO_MANY_PAGES, IMAGE_TOO_MANY_PAGES) before any page is read: a page-tree bomb of a few KB claims millions of pages; one queued page costs about 1 KB of Redis.' },
  exportMaxChunks: { env: 'EXPORT_MAX_CHUNKS', flag: 'export-max-chunks', schema: int(1), default: 1_000_000, describe: 'A chat export that makes more chunks than this is refused (EXPORT_TOO_MANY_CHUNKS) as soon as it crosses the bound; one queued chunk costs about 1 KB of Redis.' },

  // ---- object storage (BLOB_DIR / OUT_DIR / inputs as s3://; the AWS SDK reads AWS_REGION, AWS_ENDPOINT_URL(_S3) and credentials itself) ----
  s3ForcePathStyle: { env: 'S3_FORCE_PATH_STYLE', schema: bool(), default: false, describe: 'Address buckets by path (`endpoint/bucket/key`), for S3-compatible servers without virtual-host names (MinIO, s3rver, most on-premises stores).' },
  s3MaxAttempts: { env: 'S3_MAX_ATTEMPTS', schema: int(1, 20), default: 5, describe: "Attempts of each object-storage request: the AWS SDK's standard retry strategy, exponential backoff with jitter on throttling (429, 503 SlowDown), 5xx and network errors." },
  s3Checksums: { env: 'S3_CHECKSUMS', schema: z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.enum(['when_required', 'when_supported'])), default: 'when_required', describe: "Checksums sent with uploads: `when_required` sends one only where S3 requires it, so stores that do not know the `x-amz-checksum-*` headers (GCS interoperability, older MinIO) work; `when_supported` sends a CRC32 with every upload, as a bucket with S3 Object Lock and a default retention requires (it refuses uploads without: 'Content-MD5 OR x-amz-checksum- HTTP header is required')." },
  s3PartSizeMb: { env: 'S3_PART_SIZE_MB', schema: int(5, 5120), default: 16, describe: 'Objects larger than this many MiB (blobs, outputs) are uploaded as a multipart upload in parts of this size; smaller ones in one PUT. Either way an object appears whole or not at all.' },
  cacheDir: { env: 'CACHE_DIR', schema: str(), default: join(tmpdir(), 'docbatch-cache'), defaultText: '`docbatch-cache` in the OS temp dir', describe: 'With BLOB_DIR on s3://: where a worker keeps the PDFs and images it renders (downloaded once each) and temporary files; may be shared by the processes of one machine.' },
  cacheMaxBytes: { env: 'CACHE_MAX_BYTES', schema: int(0), default: 2 * 1024 ** 3, describe: 'Bound of CACHE_DIR: least recently used blobs go beyond it (a blob in use in the last minute never does).' },

  logLevel: { env: 'LOG_LEVEL', flag: 'log-level', schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), default: 'info', describe: 'Log level.' },
  logFormat: { env: 'LOG_FORMAT', flag: 'log-format', schema: z.enum(['json', 'pretty']), default: process.stderr.isTTY ? 'pretty' : 'json', defaultText: '`pretty` on a terminal, else `json`', describe: 'Log lines as JSON (for machines) or readable text (coloured only on a terminal; `FORCE_COLOR` and `NO_COLOR` are followed).' },
} as const satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
export type SettingKey = keyof Settings;
export type Config = { [K in SettingKey]: z.output<Settings[K]['schema']> };

/** Flags as parsed by the CLI: keyed by setting key; undefined means "not given". */
export type Flags = Partial<Record<SettingKey, unknown>>;

/** `--<flag>-file PATH` as parsed by the CLI: keyed by the (secret) setting's key. */
export type FileFlags = Partial<Record<SettingKey, string>>;

/** The environment variable holding the path of a secret's file: `REDIS_URL_FILE`. */
export function fileEnv(setting: { env: string }): string {
  return `${setting.env}_FILE`;
}

/** Reads a secret from its file (one trailing newline dropped); a ConfigError naming the setting otherwise. */
function readSecretFile(setting: Setting, path: string, source: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`setting ${setting.env} from ${source}: cannot read ${printable(path)} (${code})`, { cause: err });
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new ConfigError(`setting ${setting.env} from ${source}: ${printable(path)} is empty`);
  return value;
}

/** What kind of place a setting's value came from. */
export type SourceKind = 'default' | 'environment' | 'file' | 'flag';

/** Where a setting's value came from: its kind, and the flag or variable (`--batch-size`, `REDIS_URL_FILE`). */
export interface SettingSource {
  kind: SourceKind;
  /** The flag or environment variable that gave it (absent for a default). */
  name?: string;
}

/** `flag --batch-size`, `environment REDIS_URL`, `file REDIS_URL_FILE`, `default`. */
export function describeSource(source: SettingSource): string {
  return source.name ? `${source.kind} ${source.name}` : source.kind;
}

/** Where a setting's value comes from: flag, flag file, environment, environment file, default. */
function rawValue(key: SettingKey, setting: Setting, flags: Flags, files: FileFlags, env: NodeJS.ProcessEnv): { raw: unknown; source: string; from: SettingSource } {
  const fromFlag = flags[key];
  const flagFile = setting.secret ? files[key] : undefined;
  const fromEnv = env[setting.env];
  const envFile = setting.secret ? env[fileEnv(setting)] : undefined;
  const flagName = setting.flag ? `--${setting.flag}` : key;
  if (fromFlag !== undefined && flagFile !== undefined) {
    throw new ConfigError(`setting ${setting.env}: give ${flagName} or ${flagName}-file, not both`);
  }
  if (fromFlag !== undefined) return { raw: fromFlag, source: flagName, from: { kind: 'flag', name: flagName } };
  if (flagFile !== undefined) return { raw: readSecretFile(setting, flagFile, `${flagName}-file`), source: `${flagName}-file`, from: { kind: 'file', name: `${flagName}-file` } };
  const hasEnv = fromEnv !== undefined && fromEnv !== '';
  const hasEnvFile = envFile !== undefined && envFile !== '';
  if (hasEnv && hasEnvFile) {
    throw new ConfigError(`settings ${setting.env} and ${fileEnv(setting)} are both set: set one (the file keeps the secret out of the environment)`);
  }
  if (hasEnv) return { raw: fromEnv, source: `${setting.env} (environment)`, from: { kind: 'environment', name: setting.env } };
  if (hasEnvFile) return { raw: readSecretFile(setting, envFile, `${fileEnv(setting)} (environment)`), source: `${fileEnv(setting)} (environment)`, from: { kind: 'file', name: fileEnv(setting) } };
  return { raw: setting.default, source: 'default', from: { kind: 'default' } };
}

/** A value as shown in a message: URLs with their password masked, other secrets not at all. */
function shownValue(raw: unknown, secret: boolean): string {
  if (typeof raw === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(raw.trim())) return printable(JSON.stringify(redactUrl(raw)));
  return secret ? '[redacted]' : printable(JSON.stringify(raw) ?? String(raw));
}

/**
 * Whether readable log lines (LOG_FORMAT=pretty) are coloured. They go to standard error, so
 * only when that is a terminal: colour codes in a file or a pipe are noise. The conventions
 * everyone's tools follow come first: `FORCE_COLOR` (other than `0` or `false`) colours anyway,
 * `NO_COLOR` (any value but empty) never (https://no-color.org).
 */
export function logColour(env: NodeJS.ProcessEnv = process.env, stream: { isTTY?: boolean } = process.stderr): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return !['0', 'false'].includes(force.trim().toLowerCase());
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true;
}

export function loadConfig(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env, files: FileFlags = {}): Config {
  return loadConfigWithSources(flags, env, files).config;
}

/** The config, and where each value came from (`docbatch config`). */
export function loadConfigWithSources(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env, files: FileFlags = {}): { config: Config; sources: Record<SettingKey, SettingSource> } {
  const out: Record<string, unknown> = {};
  const sources = {} as Record<SettingKey, SettingSource>;
  for (const [key, setting] of Object.entries(SETTINGS) as Array<[SettingKey, Setting]>) {
    const { raw, source, from } = rawValue(key, setting, flags, files, env);
    sources[key] = from;
    const parsed = setting.schema.safeParse(raw);
    if (!parsed.success) {
      const reason = parsed.error.issues.map((i) => i.message).join('; ');
      throw new ConfigError(`setting ${setting.env} from ${source} = ${shownValue(raw, setting.secret === true)} is invalid: ${reason}`);
    }
    out[key] = parsed.data;
  }
  const config = out as Config;
  // A folder resolves against the working directory; an s3:// URI keeps its normal form.
  config.outDir = isS3Uri(config.outDir) ? formatLocation(parseS3Uri(config.outDir)) : resolve(config.outDir);
  config.blobDir = isS3Uri(config.blobDir) ? formatLocation(parseS3Uri(config.blobDir)) : resolve(config.blobDir);
  config.cacheDir = resolve(config.cacheDir);
  if (config.initialInFlight > config.maxInFlight) config.initialInFlight = config.maxInFlight;
  if (config.budgetUsd !== undefined && config.gpuHourlyUsd === undefined) {
    throw new ConfigError('setting BUDGET_USD needs GPU_HOURLY_USD: a budget in dollars needs a price per GPU hour');
  }
  // Overlap is repeated from the previous chunk inside the next one's budget: it must leave room
  // for at least one new message, or splitting a chat export has nothing to add.
  if (config.chunkOverlapTokens >= config.chunkTokens) {
    throw new ConfigError(
      `setting CHUNK_OVERLAP_TOKENS from ${describeSource(sources.chunkOverlapTokens)} = ${config.chunkOverlapTokens} is invalid: it must be less than CHUNK_TOKENS (${config.chunkTokens}, from ${describeSource(sources.chunkTokens)})`,
    );
  }
  const auth = [config.dashboardUser, config.dashboardPassword];
  if (auth.filter(Boolean).length === 1) {
    throw new ConfigError('settings DASHBOARD_USER and DASHBOARD_PASSWORD go together: set both or neither');
  }
  return { config, sources };
}

/** One warning per secret given as a flag: its value shows in `ps` (and /proc) to every user of the machine. */
export function secretFlagWarnings(flags: Flags): string[] {
  const out: string[] = [];
  for (const [key, setting] of Object.entries(SETTINGS) as Array<[SettingKey, Setting]>) {
    if (!setting.secret || !setting.flag || flags[key] === undefined) continue;
    out.push(`--${setting.flag} shows in \`ps\` to every user of this machine: prefer --${setting.flag}-file PATH, ${fileEnv(setting)} or ${setting.env}`);
  }
  return out;
}

const SECRET_QUERY = /pass|secret|token|key|sig|auth|credential/i;

/**
 * A URL as it may be printed: its password (and the values of query parameters named like
 * secrets) replaced by `***`, and for http(s) a lone user part too (`https://TOKEN@host`).
 * Everything else is left exactly as written, even when it does not parse as a URL: only
 * secrets are hidden, nothing is normalized.
 */
export function redactUrl(value: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/is.exec(value);
  if (!m) return value;
  const [, scheme = '', authority = '', path = '', query, hash] = m;
  let auth = authority;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const masked = colon >= 0 ? `${userinfo.slice(0, colon)}:***` : /^https?:/i.test(scheme) ? '***' : userinfo;
    auth = `${masked}${authority.slice(at)}`;
  }
  const q = query?.replace(/([?&])([^=&]*)=([^&]*)/g, (all, sep: string, name: string) => (SECRET_QUERY.test(decodeSafe(name)) ? `${sep}${name}=***` : all));
  return `${scheme}${auth}${path}${q ?? ''}${hash ?? ''}`;
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The configuration table in Markdown (README and `docbatch config --markdown`). */
export function settingsTable(): string {
  const rows = (Object.entries(SETTINGS) as Array<[SettingKey, Setting]>).map(([, s]) => {
    const def = s.defaultText ?? (s.default === undefined ? '—' : `\`${String(s.default)}\``);
    const flag = s.flag ? `\`--${s.flag}\`${s.secret ? ` / \`--${s.flag}-file\`` : ''}` : '—';
    const env = s.secret ? `\`${s.env}\` / \`${fileEnv(s)}\`` : `\`${s.env}\``;
    return `| ${env} | ${flag} | ${def} | ${s.describe} |`;
  });
  return ['| variable | flag | default | what |', '|---|---|---|---|', ...rows].join('\n');
}

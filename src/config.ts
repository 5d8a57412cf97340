/**
 * The one reader of the environment. Every setting has one row in SETTINGS: its environment
 * variable, its flag, its default and its validation. Flags override the environment, the
 * environment overrides defaults. A bad value throws a ConfigError naming the setting, where the
 * value came from, and what is wrong. The README's configuration table is printed from SETTINGS
 * (`docbatch config --markdown`), so the two cannot drift apart.
 */
import { availableParallelism, hostname, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const num = (min: number) => z.coerce.number().min(min);
const str = () => z.string().min(1);
const optionalStr = () => z.string().min(1).optional();
const bool = () =>
  z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])]))
    .transform((v) => v === true || v === '1' || v === 'true' || v === 'yes' || v === 'on');

const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

interface Setting {
  env: string;
  flag?: string;
  schema: z.ZodType;
  default?: unknown;
  /** Shown in the docs table instead of the literal default (e.g. "number of cores"). */
  defaultText?: string;
  describe: string;
  secret?: boolean;
}

/** Every setting docbatch has. The key is the name in the typed Config. */
export const SETTINGS = {
  redisUrl: { env: 'REDIS_URL', flag: 'redis-url', schema: url(['redis:', 'rediss:']), default: 'redis://127.0.0.1:6379', describe: 'Redis holding the queues. `rediss://` for TLS; an ACL user goes in the URL (`redis://user:pass@host:6379/0`).', secret: true },
  prefix: { env: 'DOCBATCH_PREFIX', flag: 'prefix', schema: z.string().regex(/^[A-Za-z0-9_{}.-]+$/, 'may hold letters, digits and _ { } . - only'), default: 'docbatch', describe: 'Key prefix of every Redis key (use `{docbatch}` on Redis Cluster).' },
  engineUrl: { env: 'ENGINE_URL', flag: 'engine-url', schema: url(['http:', 'https:']), default: 'http://127.0.0.1:8000', describe: 'The OpenAI-compatible server (vLLM) this worker sends to.' },
  engineApiKey: { env: 'ENGINE_API_KEY', flag: 'engine-api-key', schema: optionalStr(), describe: 'Sent as `Authorization: Bearer` (vLLM `--api-key`).', secret: true },
  model: { env: 'MODEL', flag: 'model', schema: optionalStr(), defaultText: 'what `/v1/models` reports', describe: 'The model name sent to the engine.' },
  outDir: { env: 'OUT_DIR', flag: 'out', schema: str(), default: './out', describe: 'Where finished documents are written.' },
  blobDir: { env: 'BLOB_DIR', flag: 'blob-dir', schema: str(), default: './data/blobs', describe: 'Content-addressed store of inputs; must be shared by producer and workers (same path on every machine).' },
  batchSize: { env: 'BATCH_SIZE', flag: 'batch-size', schema: int(1, 4096), default: 16, describe: 'Units a worker takes from the queue at a time and prepares ahead of the engine.' },
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
  chunkOverlapTokens: { env: 'CHUNK_OVERLAP_TOKENS', flag: 'chunk-overlap', schema: int(0, 1_000_000), default: 0, describe: 'Trailing messages of the previous chunk repeated for context, up to this many tokens.' },
  pageMaxTokens: { env: 'PAGE_MAX_TOKENS', flag: 'page-max-tokens', schema: int(1, 1_000_000), default: 4096, describe: '`max_tokens` for a page transcription.' },
  chatMaxTokens: { env: 'CHAT_MAX_TOKENS', flag: 'chat-max-tokens', schema: int(1, 1_000_000), default: 1024, describe: '`max_tokens` for a chunk summary.' },
  requestTimeoutMs: { env: 'REQUEST_TIMEOUT_MS', flag: 'request-timeout', schema: int(100), default: 10 * MINUTE, describe: 'A request with no answer after this is closed (which aborts it inside vLLM) and retried.' },
  attempts: { env: 'ATTEMPTS', flag: 'attempts', schema: int(1, 100), default: 5, describe: 'Attempts per unit for retryable errors (waiting for a dead engine uses none).' },
  engineDownTimeoutMs: { env: 'ENGINE_DOWN_TIMEOUT_MS', flag: 'engine-down-timeout', schema: int(1000), default: 60 * MINUTE, describe: 'How long a unit waits for a dead engine before giving up one attempt.' },
  growIntervalMs: { env: 'GROW_INTERVAL_MS', flag: 'grow-interval', schema: int(10), default: 30 * SECOND, describe: 'After an out-of-memory, the window grows back by one per this long without another.' },
  ceilingHoldMs: { env: 'CEILING_HOLD_MS', flag: 'ceiling-hold', schema: int(0), default: 5 * MINUTE, describe: 'How long the window stays just below a size that ran out of memory before trying it again.' },
  lockDurationMs: { env: 'LOCK_DURATION_MS', flag: 'lock-duration', schema: int(1000), default: 60 * SECOND, describe: 'BullMQ lock of a unit in flight (renewed at half); a crashed worker\'s units return after about this long.' },
  stalledIntervalMs: { env: 'STALLED_INTERVAL_MS', flag: 'stalled-interval', schema: int(500), default: 30 * SECOND, describe: 'How often workers look for units whose worker died.' },
  shutdownTimeoutMs: { env: 'SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout', schema: int(0), default: 30 * SECOND, describe: 'On SIGTERM, how long in-flight units may take to finish before the worker forces its exit.' },
  workerName: { env: 'WORKER_NAME', flag: 'name', schema: str(), default: `${hostname()}-${process.pid}`, defaultText: 'host-pid', describe: 'Name of this worker in logs, metrics and the dashboard.' },
  maxQueued: { env: 'MAX_QUEUED', flag: 'max-queued', schema: int(100), default: 100_000, describe: 'The producer waits while more units than this are waiting (backpressure).' },
  gpuHourlyUsd: { env: 'GPU_HOURLY_USD', flag: 'gpu-hourly-usd', schema: num(0).optional(), describe: 'Price of one GPU hour; reports then carry cost.' },
  budgetUsd: { env: 'BUDGET_USD', flag: 'budget-usd', schema: num(0).optional(), describe: 'Workers pause intake once the engine time spent costs this much (needs GPU_HOURLY_USD).' },
  metricsPort: { env: 'METRICS_PORT', flag: 'metrics-port', schema: int(0, 65535).optional(), describe: 'Port of the worker\'s `/metrics` and `/health` (off when unset; 0 picks one).' },
  metricsHost: { env: 'METRICS_HOST', flag: 'metrics-host', schema: str(), default: '127.0.0.1', describe: 'Address the worker\'s metrics server binds to.' },
  dashboardPort: { env: 'DASHBOARD_PORT', flag: 'port', schema: int(0, 65535), default: 3000, describe: 'Port of the dashboard.' },
  dashboardHost: { env: 'DASHBOARD_HOST', flag: 'host', schema: str(), default: '127.0.0.1', describe: 'Address the dashboard binds to; beyond loopback it requires credentials.' },
  dashboardUser: { env: 'DASHBOARD_USER', schema: optionalStr(), describe: 'Basic-auth user of the dashboard.' },
  dashboardPassword: { env: 'DASHBOARD_PASSWORD', schema: optionalStr(), describe: 'Basic-auth password of the dashboard.', secret: true },
  dashboardToken: { env: 'DASHBOARD_TOKEN', schema: optionalStr(), describe: 'Bearer token accepted by the dashboard (alternative to user/password).', secret: true },
  dashboardReadOnly: { env: 'DASHBOARD_READ_ONLY', flag: 'read-only', schema: bool(), default: false, describe: 'Dashboard shows queues but cannot retry, clean or remove jobs.' },
  logLevel: { env: 'LOG_LEVEL', flag: 'log-level', schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), default: 'info', describe: 'Log level.' },
  logFormat: { env: 'LOG_FORMAT', flag: 'log-format', schema: z.enum(['json', 'pretty']), default: process.stderr.isTTY ? 'pretty' : 'json', defaultText: '`pretty` on a terminal, else `json`', describe: 'Log lines as JSON (for machines) or readable text.' },
} as const satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
export type SettingKey = keyof Settings;
export type Config = { [K in SettingKey]: z.output<Settings[K]['schema']> };

/** Flags as parsed by the CLI: keyed by setting key; undefined means "not given". */
export type Flags = Partial<Record<SettingKey, unknown>>;

export function loadConfig(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as Array<[SettingKey, Setting]>) {
    const fromFlag = flags[key];
    const fromEnv = env[setting.env];
    let raw: unknown;
    let source: string;
    if (fromFlag !== undefined) {
      raw = fromFlag;
      source = setting.flag ? `--${setting.flag}` : key;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw = fromEnv;
      source = `${setting.env} (environment)`;
    } else {
      raw = setting.default;
      source = 'default';
    }
    const parsed = setting.schema.safeParse(raw);
    if (!parsed.success) {
      const shown = setting.secret ? '[redacted]' : JSON.stringify(raw);
      const reason = parsed.error.issues.map((i) => i.message).join('; ');
      throw new ConfigError(`setting ${setting.env} from ${source} = ${shown} is invalid: ${reason}`);
    }
    out[key] = parsed.data;
  }
  const config = out as Config;
  config.outDir = resolve(config.outDir);
  config.blobDir = resolve(config.blobDir);
  if (config.initialInFlight > config.maxInFlight) config.initialInFlight = config.maxInFlight;
  if (config.budgetUsd !== undefined && config.gpuHourlyUsd === undefined) {
    throw new ConfigError('setting BUDGET_USD needs GPU_HOURLY_USD: a budget in dollars needs a price per GPU hour');
  }
  const auth = [config.dashboardUser, config.dashboardPassword];
  if (auth.filter(Boolean).length === 1) {
    throw new ConfigError('settings DASHBOARD_USER and DASHBOARD_PASSWORD go together: set both or neither');
  }
  return config;
}

/** The Redis URL with its password masked, for logs and messages. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}

/** The configuration table in Markdown (README and `docbatch config --markdown`). */
export function settingsTable(): string {
  const rows = (Object.entries(SETTINGS) as Array<[SettingKey, Setting]>).map(([, s]) => {
    const def = s.defaultText ?? (s.default === undefined ? '—' : `\`${String(s.default)}\``);
    const flag = s.flag ? `\`--${s.flag}\`` : '—';
    return `| \`${s.env}\` | ${flag} | ${def} | ${s.describe} |`;
  });
  return ['| variable | flag | default | what |', '|---|---|---|---|', ...rows].join('\n');
}

import { pino, type Logger, type LoggerOptions } from 'pino';
import { logColour } from '../config.ts';

export type { Logger } from 'pino';

export interface LogOptions {
  /** pino level. @defaultValue 'info' */
  level?: string;
  /** Human-readable lines (pino-pretty) instead of JSON. @defaultValue false */
  pretty?: boolean;
  /** Colour the readable lines. @defaultValue only on a terminal, unless FORCE_COLOR or NO_COLOR says (config's `logColour`) */
  colour?: boolean;
  /** Written to every line, e.g. `{ role: 'worker', worker: 'gpu0' }`. */
  base?: Record<string, unknown>;
  /** Where JSON lines go. @defaultValue standard error (fd 2), so stdout stays for results */
  destination?: NodeJS.WritableStream | number;
}

/**
 * The root logger of a process. Everything below takes a child logger from it and adds its own
 * fields (`docId`, `unit`, `batchSize`, `code`), so that log lines are data a test can parse.
 * Secrets never reach a log line: the redaction list covers credentials docbatch handles.
 */
export function createLogger(options: LogOptions = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['password', '*.password', 'redisUrl', '*.redisUrl', 'authorization', '*.authorization', 'apiKey', '*.apiKey'],
      censor: '[redacted]',
    },
    formatters: { level: (label) => ({ level: label }) },
  };
  if (options.pretty) {
    return pino({
      ...config,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, colorize: options.colour ?? logColour(), translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  const destination = options.destination ?? 2;
  return pino(config, typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination);
}

/** A logger that writes nothing (library defaults, tests that do not read logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

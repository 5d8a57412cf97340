/**
 * The emulator's life: listening, engine death (500s, /health 503, the port closing, the
 * supervisor's restart on the same port), the /emulator/ control routes, and close().
 *
 * An engine death here plays out as in vLLM V1:
 *   t0                      every in-flight and new inference request gets 500, /health 503
 *   t0 + deathExitMs        the process "exits": the listener closes, open sockets are destroyed
 *                           (skipped with keepAliveOnDeath: the server keeps answering 500/503)
 *   ... + restartDelayMs    a fresh engine listens again on the same port
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { notFound, routeApi } from './api.ts';
import { AnswerBook, type AnswerRecord } from './answers.ts';
import { newRequestCounts, type ApiContext, type EmulatorStats, type EngineState, type RequestCounts } from './context.ts';
import { Engine } from './engine.ts';
import { ClientGone, readJsonObject, sendJson } from './http.ts';
import { renderMetrics } from './metrics.ts';
import { faultsOf, mergeFaults, mergeTiming, timingOf, type EmulatorOptions, type Faults, type Timing } from './options.ts';
import { RateLimiter } from './rate-limit.ts';

/** How often, and how many times, a restart retries a port someone else grabbed meanwhile. */
const RELISTEN_INTERVAL_MS = 100;
const RELISTEN_ATTEMPTS = 50;

export class EmulatorServer {
  readonly options: Readonly<EmulatorOptions>;
  port = 0;
  private timingNow: Timing;
  private faultsNow: Faults;
  private engine: Engine;
  private engineStartedSec = Date.now() / 1000;
  private server: Server | null = null;
  private engineState: EngineState = 'alive';
  private readonly counts: RequestCounts = newRequestCounts();
  private readonly answerBook = new AnswerBook();
  private readonly rateLimiter = new RateLimiter();
  private deaths = 0;
  private restarts = 0;
  private readonly retired = { promptTokens: 0, generationTokens: 0, preemptions: 0, maxRunning: 0, maxRunningImages: 0, maxWaiting: 0, firstArrivalMs: null as number | null, lastDoneMs: null as number | null };
  private readonly timers = new Set<NodeJS.Timeout>();
  private closing: Promise<void> | null = null;
  private readonly ctx: ApiContext;

  constructor(options: EmulatorOptions) {
    this.options = options;
    this.timingNow = timingOf(options);
    this.faultsNow = faultsOf(options);
    this.engine = this.newEngine();
    this.ctx = {
      options,
      counts: this.counts,
      faults: () => this.faultsNow,
      timing: () => this.timingNow,
      state: () => this.engineState,
      engine: () => this.engine,
      metricsText: () => renderMetrics(options.model, this.engine.dead ? { running: 0, waiting: 0, kvUsage: 0 } : this.engine.gauges(), this.engine.counters, this.engineStartedSec),
      answers: this.answerBook,
      rateLimiter: this.rateLimiter,
    };
  }

  get url(): string {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${this.port}`;
  }

  async listen(): Promise<void> {
    const server = this.newServer();
    await listenOnce(server, this.options.port, this.options.host);
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  setFaults(patch: Partial<Faults>): void {
    this.faultsNow = mergeFaults(this.faultsNow, patch);
  }

  setTiming(patch: Partial<Timing>): void {
    this.timingNow = mergeTiming(this.timingNow, patch);
  }

  faults(): Faults {
    return { ...this.faultsNow };
  }

  timing(): Timing {
    return { ...this.timingNow };
  }

  kill(): void {
    this.die();
  }

  resetPeaks(): void {
    this.retired.maxRunning = 0;
    this.retired.maxRunningImages = 0;
    this.retired.maxWaiting = 0;
    this.engine.resetPeaks();
  }

  stats(): EmulatorStats {
    const e = this.engine;
    const gauges = e.dead ? { running: 0, waiting: 0, kvUsage: 0 } : e.gauges();
    const errorsTotal = Object.values(this.counts.errors).reduce((a, b) => a + b, 0);
    return {
      ...this.counts,
      errors: { ...this.counts.errors },
      state: this.engineState,
      errorsTotal,
      deaths: this.deaths,
      restarts: this.restarts,
      running: gauges.running,
      waiting: gauges.waiting,
      kvUsage: gauges.kvUsage,
      firstArrivalMs: this.retired.firstArrivalMs ?? e.firstArrivalAt,
      lastDoneMs: e.lastDoneAt ?? this.retired.lastDoneMs,
      maxRunning: Math.max(this.retired.maxRunning, e.maxRunning),
      maxRunningImages: Math.max(this.retired.maxRunningImages, e.maxRunningImages),
      maxWaiting: Math.max(this.retired.maxWaiting, e.maxWaiting),
      promptTokens: this.retired.promptTokens + e.counters.promptTokens,
      generationTokens: this.retired.generationTokens + e.counters.generationTokens,
      preemptions: this.retired.preemptions + e.counters.preemptions,
      ...this.answerBook.stats(),
      rateLimitWindows: this.rateLimiter.stats(),
    };
  }

  /** The latest answers with a first-sight flaw or structured-output fields, oldest first. */
  answers(): AnswerRecord[] {
    return this.answerBook.records();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.engineState = 'closed';
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.engine.close();
    const server = this.server;
    this.server = null;
    if (server) await closeServer(server);
    // libuv releases the listening handle in the loop's close phase, after the 'close' event:
    // wait for it, so a leak check right after close() sees nothing of ours.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  }

  private newEngine(): Engine {
    return new Engine(this.options, {
      timing: () => this.timingNow,
      faults: () => this.faultsNow,
      onOom: () => this.die(),
    });
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private die(): void {
    if (this.engineState !== 'alive') return;
    this.engineState = 'dead';
    this.deaths++;
    this.engine.die();
    const { keepAliveOnDeath, deathExitMs, restartDelayMs } = this.faultsNow;
    this.later(deathExitMs, () => {
      if (!keepAliveOnDeath) {
        this.engineState = 'down';
        const server = this.server;
        this.server = null;
        if (server) void closeServer(server);
      }
      this.later(restartDelayMs, () => this.restart(RELISTEN_ATTEMPTS));
    });
  }

  private restart(attemptsLeft: number): void {
    if (this.engineState === 'closed') return;
    const revive = (): void => {
      const old = this.engine;
      this.retired.promptTokens += old.counters.promptTokens;
      this.retired.generationTokens += old.counters.generationTokens;
      this.retired.preemptions += old.counters.preemptions;
      this.retired.maxRunning = Math.max(this.retired.maxRunning, old.maxRunning);
      this.retired.maxRunningImages = Math.max(this.retired.maxRunningImages, old.maxRunningImages);
      this.retired.maxWaiting = Math.max(this.retired.maxWaiting, old.maxWaiting);
      this.retired.firstArrivalMs ??= old.firstArrivalAt;
      this.retired.lastDoneMs = old.lastDoneAt ?? this.retired.lastDoneMs;
      this.engine = this.newEngine();
      this.engineStartedSec = Date.now() / 1000;
      this.engineState = 'alive';
      this.restarts++;
    };
    if (this.server) {
      revive(); // keepAliveOnDeath: the listener never closed
      return;
    }
    const server = this.newServer();
    listenOnce(server, this.port, this.options.host).then(
      () => {
        if (this.engineState === 'closed') {
          void closeServer(server);
          return;
        }
        this.server = server;
        revive();
      },
      (err: unknown) => {
        if (this.engineState === 'closed') return;
        if (attemptsLeft <= 1) {
          process.emitWarning(`engine emulator could not listen again on port ${this.port}: ${(err as Error).message}`);
          return;
        }
        this.later(RELISTEN_INTERVAL_MS, () => this.restart(attemptsLeft - 1));
      },
    );
  }

  private newServer(): Server {
    const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => this.onRequest(req, res));
    // An unanswered request (hang) must not be cut by Node's own timeouts: vLLM has none.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    return server;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.counts.httpRequests++;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const done = path.startsWith('/emulator/') ? this.control(req, res, path) : this.api(req, res, path);
    done.catch((err: unknown) => {
      if (err instanceof ClientGone) return;
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, { error: { message: `emulator bug: ${(err as Error).message}`, type: 'InternalServerError', param: null, code: 500 } });
      else res.destroy();
    });
  }

  private async api(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (!(await routeApi(this.ctx, req, res, path))) {
      req.resume();
      notFound(this.ctx, res);
    }
  }

  /** Test controls; not part of vLLM. */
  private async control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const route = `${req.method} ${path}`;
    try {
      switch (route) {
        case 'GET /emulator/stats':
          return sendJson(res, 200, this.stats());
        case 'GET /emulator/faults':
          return sendJson(res, 200, this.faults());
        case 'GET /emulator/timing':
          return sendJson(res, 200, this.timing());
        case 'GET /emulator/answers':
          return sendJson(res, 200, this.answers());
        case 'POST /emulator/faults':
          this.setFaults((await readJsonObject(req, 1 << 20)) as Partial<Faults>);
          return sendJson(res, 200, this.faults());
        case 'POST /emulator/timing':
          this.setTiming((await readJsonObject(req, 1 << 20)) as Partial<Timing>);
          return sendJson(res, 200, this.timing());
        case 'POST /emulator/kill':
          req.resume();
          this.kill();
          return sendJson(res, 200, { state: this.engineState, deaths: this.deaths });
        case 'POST /emulator/peaks/reset':
          req.resume();
          this.resetPeaks();
          return sendJson(res, 200, this.stats());
        default:
          req.resume();
          return sendJson(res, 404, { detail: 'Not Found' });
      }
    } catch (err) {
      if (err instanceof TypeError || (err instanceof Error && err.name === 'ApiError')) {
        return sendJson(res, 400, { error: err.message });
      }
      throw err;
    }
  }
}

function listenOnce(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Stops listening at once and destroys every open socket (idle keep-alive ones too). */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

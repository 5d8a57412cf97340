/**
 * Sending one prepared unit to the engine until the engine answers it. Faults of the engine are
 * handled here, without using the unit's attempts; every decision comes from the code's action
 * in src/errors.ts:
 *
 * - shrink (out of memory, an engine death): halve the window, wait for /health, send again; a
 *   unit that runs out of memory alone at window 1 is rendered smaller (1288 → 1024 → 768 px by
 *   default) and finally fails with ENGINE_OOM;
 * - a context-length refusal: asked again within the room it names when only max_tokens did not
 *   fit (context-room.ts); a unit whose prompt alone is longer than the context is rendered
 *   smaller the same way (render-ladder.ts), and fails with CONTEXT_TOO_LONG at the last size;
 *   one whose body a proxy refuses as too large (413, REQUEST_TOO_LARGE) likewise, and one whose
 *   prompt the server cut to its context without a word (Ollama: truncated-prompt.ts);
 * - wait (down, busy, rate limited): pause intake and wait for /health, or back off, and send
 *   again. A worker whose engine stays down past `releaseAfterMs` hands the unit back to the
 *   queue (no attempt used) so a healthy worker takes it;
 * - everything else is thrown to the processor.
 *
 * A unit waits for the endpoint's rate limits (ENGINE_RPM, ENGINE_TPM) before it takes its slot
 * at the gate, in its worker's line (rate-limit.ts): a unit the limiter holds back holds no room
 * at the engine, and the window counts only requests really sent. Backing off (busy, rate
 * limited, a dropped connection) happens after the unit has given back its slot at the gate and
 * finished its rate-limit entry: a sleeping unit holds no room at the engine either. A Retry-After is honoured up to `retryAfterMaxMs` (ENGINE_RETRY_AFTER_MAX_MS), so one
 * answer cannot park a unit, or a paid endpoint's every worker, for hours.
 *
 * Poison units (unit-faults.ts: the counts, and what they make of the unit). A unit after which
 * the connection drops while the engine itself stays up is the cause: after 3 such drops it
 * fails with UNIT_CRASHES_ENGINE. A unit in flight at three engine outages is a suspect and is
 * sent alone (the gate's solo mode); if the engine goes down again while it is alone, twice, it
 * is the cause. An answer the engine aborted itself (finish_reason "abort": a pause, a drain)
 * counts as an outage of the unit's sends, never towards a suspect or a cause: the engine
 * answered, and did not go down. A busy engine that refuses one unit while others pass ends it
 * after 10 refusals (ENGINE_BUSY). No unit is sent more than MAX_SENDS times; one that runs out
 * of sends fails with the code of the cause most of them met (out of memory: ENGINE_OOM;
 * refusals: ENGINE_BUSY; drops: UNIT_CRASHES_ENGINE; outages: ENGINE_DOWN).
 */
import type { ChatResult } from '../engine/client.ts';
import { EngineError } from '../engine/classify.ts';
import type { EngineHealth } from '../engine/types.ts';
import { actionFor, DocbatchError, toDocbatchError } from '../errors.ts';
import { sleep } from '../timeouts.ts';
import { addCounts, UNREPORTED, type TokenCounts } from '../usage.ts';
import type { Logger } from '../observe/log.ts';
import type { Engine, EngineSet } from './engine.ts';
import type { Ticket } from './gate.ts';
import type { RatePass } from './rate-limit.ts';
import type { Prepared } from './units.ts';
import { fitMaxTokens, maxTokensLimit, promptAloneTooLong, roomFrom, type MaxTokensLimit } from './context-room.ts';
import { RenderLadder } from './render-ladder.ts';
import { cutPromptError, looksCut, promptWasCut } from './truncated-prompt.ts';
import { UnitFaults } from './unit-faults.ts';
import { ReleaseUnit } from './unit-errors.ts';

export { FinalUnitError, ReleaseUnit } from './unit-errors.ts';

export { fitMaxTokens } from './context-room.ts';

export interface DispatchParts {
  /** The primary engine and its fallbacks. */
  engines: EngineSet;
  /** How long a unit waits for a down engine (and no fallback) before it is handed back to the queue. */
  releaseAfterMs: number;
  /** Longest sides to fall back to after an OOM alone at window 1 (pages only). */
  oomSizes: number[];
  /** The longest a Retry-After (429, 503) is honoured: longer ones are cut to this (ENGINE_RETRY_AFTER_MAX_MS). */
  retryAfterMaxMs: number;
  log: Logger;
  /** Hooks for metrics. */
  onOom?: () => void;
  onRequest?: (ms: number, ok: boolean) => void;
  /** Tokens the engine reported for each answer, when it comes (prose sent again, an error that reports usage, included). */
  onUsage?: (model: string, usage: TokenCounts) => void;
}

export interface Dispatched {
  result: ChatResult;
  prepared: Prepared;
  /** The engine that answered. */
  engine: Engine;
  /** Engine ms charged to this unit (its share of the time the engine was busy). */
  engineMs: number;
  /** The max_tokens the answer was given: as sent, lowered to the model's output cap where the endpoint named one. */
  maxTokens: number;
  /** What bounds this unit's max_tokens, as far as known (context-room.ts); null when nothing is known. */
  maxTokensLimit: MaxTokensLimit | null;
}

/** The client's EMPTY_OUTPUT as a reply with no text (its finish_reason and reasoning read back from the message). */
function emptyAnswer(err: EngineError, latencyMs: number, model: string | undefined): ChatResult {
  const finish = /finish_reason "([^"]+)"/.exec(err.message)?.[1] ?? null;
  const reasoning = /(\d+) characters of reasoning/.exec(err.message)?.[1];
  return { text: '', finishReason: finish, usage: err.usage ?? UNREPORTED, latencyMs, model: model ?? '', id: '', ...(reasoning ? { reasoningChars: Number(reasoning) } : {}) };
}

/**
 * One unit's conversation with the engine, across the tries the answer checks ask for: the fault
 * counters live as long as the unit does, so a poison unit is caught across tries.
 */
export class UnitSender {
  private readonly parts: DispatchParts;
  private readonly prepareAt: (longestSide: number | null) => Promise<Prepared>;
  private readonly requestId: string;
  /** Smaller renders left to try (a page or document unit): after an OOM alone, or a prompt longer than the context. */
  private readonly ladder: RenderLadder;
  private current: Prepared | null = null;
  /** This unit's sends and the faults they met: whether it is a suspect, the cause, out of sends. */
  private readonly faults: UnitFaults;
  /** Engine time charged to sends that brought no answer (failed, resent, aborted), not yet handed on. */
  private unansweredMs = 0;
  /**
   * Tokens of answers the engine gave that did not come back as one (a prose answer the client
   * sent again with the schema in the prompt; an error that reports usage, CONTENT_FILTERED), not
   * yet handed on; null: none.
   */
  private unansweredUsage: TokenCounts | null = null;

  constructor(parts: DispatchParts, prepareAt: (longestSide: number | null) => Promise<Prepared>, meta: { requestId: string; isPage: boolean }) {
    this.parts = parts;
    this.prepareAt = prepareAt;
    this.requestId = meta.requestId;
    this.ladder = new RenderLadder(meta.isPage ? parts.oomSizes : []);
    this.faults = new UnitFaults(parts.log);
  }

  /**
   * Engine time charged to this unit's sends that brought no answer since last asked (a request
   * that timed out, failed, or was aborted): spent all the same. An answer carries it in its
   * `engineMs`; a caller whose `send` threw takes it here.
   */
  takeUnansweredMs(): number {
    const ms = this.unansweredMs;
    this.unansweredMs = 0;
    return ms;
  }

  /**
   * Tokens of this unit's answers that did not come back as an answer, since last asked (null:
   * none): processed all the same. An answer carries them in its `usage`; a caller whose `send`
   * threw takes them here.
   */
  takeUnansweredUsage(): TokenCounts | null {
    const usage = this.unansweredUsage;
    this.unansweredUsage = null;
    return usage;
  }

  private addUnansweredUsage(model: string, usage: TokenCounts): void {
    this.parts.onUsage?.(model, usage);
    this.unansweredUsage = this.unansweredUsage === null ? usage : addCounts(this.unansweredUsage, usage);
  }

  /** The unit as last prepared (rendered), preparing it on first use. */
  async prepared(): Promise<Prepared> {
    this.current ??= await this.prepareAt(null);
    return this.current;
  }

  /**
   * Sends the unit until the engine answers; the answer's quality is the caller's to judge.
   * `maxTokens` replaces the unit's own (a JSON answer cut off is asked again with more), still
   * fitted to the model's context.
   */
  async send(options: { temperature: number; model?: string; maxTokens?: number }, signal: AbortSignal): Promise<Dispatched> {
    const { log } = this.parts;
    let prepared = await this.prepared();
    /** Set when the engine said how much room its context leaves this prompt (CONTEXT_TOO_LONG). */
    let roomLeft: number | null = null;
    for (;;) {
      if (this.faults.outOfSends) throw this.faults.outOfSendsError();
      const engine = await this.usable(signal);
      const { window, gate, monitor, client } = engine;
      // A suspect is a unit in flight at engine outages; a request the engine aborted itself (a
      // pause, a drain) answered, and says nothing about the unit.
      const solo = this.faults.suspect;
      /** This send's place in the endpoint's rate limits: taken before the gate, so a unit waiting for it holds no slot. */
      let rate: RatePass | null = null;
      let ticket: Ticket | null = null;
      let windowAtSend = window.size;
      let aloneAtSend = false;
      let started = performance.now();
      /** Set by a fault that backs off: slept after the finally below has given back the slot and the rate entry. */
      let backoffMs = 0;
      /** The model asked (metrics label the tokens of an answer that came as an error with it). */
      let asked = options.model ?? '';
      this.faults.sent();
      try {
        const info = await client.model(signal);
        const maxModelLen = info.maxModelLen;
        // The room the engine counted, once it named it, over our estimate of the prompt.
        const maxTokens = roomLeft ?? fitMaxTokens(options.maxTokens === undefined ? prepared : { ...prepared, maxTokens: options.maxTokens }, maxModelLen);
        // A paid or shared endpoint's limits, kept by all its workers together. The tokens it
        // reserves are those the request will carry: max_tokens lowered to the model's output cap
        // once the endpoint named one (the client lowers it so), not the max_tokens asked.
        const { limiter } = engine;
        const model = options.model ?? info.id;
        asked = model;
        const reserved = (): number => prepared.promptTokensEstimate + Math.min(maxTokens, client.outputCap(model) ?? maxTokens);
        let tokens = reserved();
        if (limiter) rate = await limiter.acquire(tokens, signal);
        ticket = await this.acquire(engine, signal, solo);
        if (!ticket) {
          // The engine went down while we waited at its gate: nothing was sent; choose again.
          this.faults.takeBack();
          continue;
        }
        // The cap may have been learnt (by a request alongside) while this one waited at the
        // gate: what it reserved then is more than it will carry. Caps only come down.
        while (rate && reserved() < tokens) {
          tokens = reserved();
          await rate.lower(tokens);
        }
        windowAtSend = window.size;
        aloneAtSend = gate.inFlight === 1;
        started = performance.now();
        const result = await client
          .chat(
            {
              messages: prepared.request.messages,
              maxTokens,
              temperature: options.temperature,
              ...(options.model ? { model: options.model } : {}),
              ...(prepared.request.responseFormat ? { responseFormat: prepared.request.responseFormat } : {}),
              ...(prepared.request.topP !== undefined ? { topP: prepared.request.topP } : {}),
              ...(prepared.request.seed !== undefined ? { seed: prepared.request.seed } : {}),
              ...(prepared.request.stop !== undefined ? { stop: prepared.request.stop } : {}),
              requestId: this.faults.sends === 1 ? this.requestId : `${this.requestId}-s${this.faults.sends}`,
            },
            signal,
            {
              // A request sent again as the endpoint asks (a setting it refused: refused-params.ts)
              // reaches it like any other: it takes its own pass (the slot at the gate is kept).
              beforeResend: async () => {
                if (!limiter) return;
                const used = rate;
                rate = null;
                await used?.finish();
                // A cap learnt from the refusal (or by a request alongside) lowers what the resend carries.
                tokens = reserved();
                rate = await limiter.acquire(tokens, signal);
              },
              // Counted now: the resend may fail (an error, a timeout), and they were spent.
              onUnreturned: (usage) => this.addUnansweredUsage(model, usage),
            },
          )
          .catch((err: unknown) => {
            // An empty answer is still an answer: the task's checks judge it (src/task/answer.ts)
            // and ask again at a higher temperature, like a cut-off one.
            if (err instanceof EngineError && err.code === 'EMPTY_OUTPUT') return emptyAnswer(err, performance.now() - started, options.model);
            throw err;
          });
        // A prompt the server cut to its context without a word (Ollama): no answer to this unit.
        if (looksCut(result.usage.promptTokens, prepared.promptTokensEstimate)) {
          // The context as the engine lists it, else as Ollama says it (null: a server that is neither).
          const said = maxModelLen !== null ? { context: maxModelLen } : await client.loadedContextLength(model, signal);
          if (said && promptWasCut(result.usage.promptTokens, prepared.promptTokensEstimate, said.context)) throw cutPromptError(result.usage, prepared.promptTokensEstimate, said.context, maxTokens);
        }
        const latency = performance.now() - started;
        // A count the engine did not report is unknown to the window too, not 0.
        window.onCompleted(performance.now(), latency, result.usage.completionTokens ?? undefined);
        this.parts.onUsage?.(result.model || model, result.usage);
        monitor.answered();
        this.parts.onRequest?.(latency, true);
        if (solo) this.faults.answeredAlone();
        const cap = client.outputCap(model);
        const unreturned = this.takeUnansweredUsage();
        return {
          // Answers of this unit that did not come back as one (prose sent again) were tokens too.
          result: unreturned === null ? result : { ...result, usage: addCounts(unreturned, result.usage) },
          prepared,
          engine,
          // Sends of this unit that brought no answer (an OOM, a busy refusal resent) were engine time too.
          engineMs: ticket.charged() + this.takeUnansweredMs(),
          maxTokens: Math.min(maxTokens, cap ?? maxTokens),
          maxTokensLimit: maxTokensLimit(prepared, maxModelLen, roomLeft, cap),
        };
      } catch (caught) {
        if (ticket) {
          this.parts.onRequest?.(performance.now() - started, false);
          this.unansweredMs += ticket.charged();
        }
        // An answer that came as an error and reports its tokens (CONTENT_FILTERED): spent too.
        if (caught instanceof EngineError && caught.usage) this.addUnansweredUsage(asked, caught.usage);
        if (signal.aborted) throw new DocbatchError('ABORTED', `aborted: ${String(signal.reason ?? '')}`, { cause: caught });
        const err = toDocbatchError(caught, 'ENGINE_ERROR');
        const dead = (err as { engineDead?: boolean }).engineDead === true;
        const action = dead ? 'shrink' : actionFor(err.code);
        if (action === 'shrink') {
          this.parts.onOom?.();
          if (err.code === 'ENGINE_OOM') this.faults.oom();
          // Alone at window 1, this unit itself is too big for the engine's memory.
          const aloneAtOne = windowAtSend <= 1 && aloneAtSend;
          window.onOom(performance.now(), started);
          log.warn({ code: err.code, dead, window: window.size, windowAtSend }, 'engine out of memory; shrinking the window');
          if (dead) {
            this.faults.outage(solo, err);
            monitor.reportDown(err.message, true);
          }
          if (aloneAtOne && err.code === 'ENGINE_OOM') {
            const next = this.ladder.take(prepared.imageSize);
            if (next === null) {
              throw new DocbatchError('ENGINE_OOM', `out of memory even alone at window 1${prepared.imageSize ? ` and ${prepared.imageSize} px` : ''}: ${err.message}`, { cause: err });
            }
            log.warn({ imageSize: next }, 'unit runs out of memory alone; rendering it smaller');
            prepared = this.current = await this.prepareAt(next);
          }
          continue;
        }
        const room = await roomFrom(err, engine.client, prepared, signal, log);
        // The prompt itself does not fit the context, by the engine's count, or its body does not
        // pass a proxy's limit (413): its pages are what is large.
        const tooLarge = err.code === 'REQUEST_TOO_LARGE';
        const smaller = room === null && prepared.hasImages && (tooLarge || promptAloneTooLong(err)) ? this.ladder.take(prepared.imageSize) : null;
        if (tooLarge && smaller === null && prepared.imageSize !== undefined) {
          throw new DocbatchError('REQUEST_TOO_LARGE', `refused as too large even with its pages at ${prepared.imageSize} px: ${err.message}`, { cause: err });
        }
        if (smaller !== null) {
          log.warn({ code: err.code, imageSize: smaller }, tooLarge ? 'the request body is larger than a proxy in front of the engine takes (413); rendering the unit smaller' : "the prompt is longer than the model's context; rendering the unit smaller");
          prepared = this.current = await this.prepareAt(smaller);
          roomLeft = null;
        } else if (room !== null && (roomLeft === null || room < roomLeft)) {
          // Only max_tokens was too large (an engine whose /v1/models gives no max_model_len):
          // the engine said how much room there is; ask again within it.
          roomLeft = room;
          log.warn({ code: err.code, maxTokens: room }, "max_tokens exceeded the model's context; asking again within the room the engine named");
        } else if (err.code === 'ENGINE_BUSY' || (err.code === 'ENGINE_DOWN' && (await this.refusedWhileUp(engine, err, signal)))) {
          // Busy, or a 503 from a server whose /health is fine: a proxy's or gateway's refusal
          // (nginx limit_req, a load balancer with no free backend), not an outage.
          const busy = this.faults.refused();
          window.onBusy(performance.now());
          if (err.code === 'ENGINE_DOWN') log.warn({ code: err.code, status: 503, busy }, 'the engine refused the request (503) while its /health is up; backing off');
          backoffMs = this.retryAfter(err) ?? 500 + Math.random() * 1000 * Math.min(8, busy);
        } else if (err.code === 'ENGINE_DOWN') {
          backoffMs = await this.onDown(engine, err, solo, signal);
        } else if (err.code === 'ENGINE_RATE_LIMITED') {
          const wait = this.retryAfter(err) ?? 1000;
          this.faults.takeBack(); // a rate limit is the endpoint's pace, not the unit's fault
          // Every worker of this endpoint waits as it said, not only this request.
          await engine.limiter?.holdFor(wait).catch((e: unknown) => log.warn({ err: (e as Error).message }, "could not tell the endpoint's other workers to wait (Redis); this unit waits all the same"));
          backoffMs = wait + Math.random() * Math.min(1000, wait / 4);
        } else {
          throw err;
        }
      } finally {
        ticket?.release();
        // A pass never used (no slot: nothing was sent) counts for nothing at the endpoint.
        if (rate) await (ticket ? rate.finish() : rate.cancel());
      }
      if (backoffMs > 0) await sleep(backoffMs, signal, 'backing off');
    }
  }

  /**
   * The engine's Retry-After, if it sent one, cut to `retryAfterMaxMs`. `0` or a date gone by is
   * no hint (undefined): resending at once to an endpoint that keeps saying so would spin.
   */
  private retryAfter(err: DocbatchError): number | undefined {
    const said = err instanceof EngineError ? err.retryAfterMs : undefined;
    return said === undefined || said <= 0 ? undefined : Math.min(said, this.parts.retryAfterMaxMs);
  }

  /**
   * A slot at the engine's gate; null when the engine goes down while this unit waits for one (a
   * paused gate of a dead engine must not hold the unit: it goes back to choosing an engine, which
   * may be a fallback, or hands the unit back after `releaseAfterMs`).
   */
  private async acquire(engine: Engine, signal: AbortSignal, solo: boolean): Promise<Ticket | null> {
    if (engine.monitor.isDown) return null;
    const down = new AbortController();
    const onDown = () => down.abort(new Error('engine down'));
    engine.monitor.once('down', onDown);
    try {
      return await engine.gate.acquire(AbortSignal.any([signal, down.signal]), { solo });
    } catch (err) {
      if (down.signal.aborted && !signal.aborted) return null;
      throw err;
    } finally {
      engine.monitor.off('down', onDown);
    }
  }

  /** An engine to send to: waits while none is usable; past `releaseAfterMs` the unit goes back to the queue. */
  private async usable(signal: AbortSignal): Promise<Engine> {
    try {
      return await this.parts.engines.usable(signal, this.parts.releaseAfterMs);
    } catch (err) {
      if (err instanceof DocbatchError && err.code === 'ENGINE_DOWN') {
        throw new ReleaseUnit(`engine down for ${Math.round(this.parts.releaseAfterMs / 1000)} s: unit handed back to the queue for another worker`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Whether an ENGINE_DOWN was an HTTP 503 (an answer; not a death the server reported) while the
   * engine's /health says it is up: then something in front of it refused this request.
   */
  private async refusedWhileUp(engine: Engine, err: DocbatchError, signal: AbortSignal): Promise<boolean> {
    if (!(err instanceof EngineError) || err.status !== 503 || err.engineDead || engine.monitor.isDown) return false;
    return (await this.healthNow(engine, signal)) === 'up';
  }

  /**
   * A connection refused, reset or closed. If the engine answers /health at once, the drop was
   * this request's (a proxy or the engine dropped it): the unit's fault, and it backs off for the
   * milliseconds returned. Otherwise the engine is down: wait for it like everyone else (0).
   */
  private async onDown(engine: Engine, err: DocbatchError, solo: boolean, signal: AbortSignal): Promise<number> {
    const transport = err instanceof EngineError && err.status === undefined;
    if (transport && !engine.monitor.isDown) {
      // Slept by the caller, after it has given back its slot.
      if ((await this.healthNow(engine, signal)) === 'up') return this.faults.dropped(err);
    }
    // finish_reason "abort" (an answer: status 200): the engine stopped the request itself. An
    // outage of this unit's sends, but not one it caused, even alone at the engine.
    const abortedByEngine = err instanceof EngineError && err.status !== undefined && err.status < 300;
    if (abortedByEngine) this.faults.engineAborted();
    // Behind a gateway whose /health is no signal, an outage's end is a guess (its /v1/models):
    // a unit sent again into the same outage did not cause it.
    this.faults.outage(solo && !abortedByEngine && engine.monitor.healthIsSignal, err);
    engine.monitor.reportDown(err.message, false);
    return 0;
  }

  /** The engine's /health asked at once, as its monitor reads it (2 s at most; 'unknown' when it cannot tell). */
  private healthNow(engine: Engine, signal: AbortSignal): Promise<EngineHealth> {
    return engine.monitor.health(AbortSignal.any([signal, AbortSignal.timeout(2000)])).catch(() => 'unknown' as const);
  }
}

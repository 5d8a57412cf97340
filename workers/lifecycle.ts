/**
 * How a docbatch process stops. The first SIGTERM or SIGINT drains (stop intake, finish in-flight
 * work within the deadline); a second one, or the deadline, forces. Errors while stopping are
 * reported, not swallowed, and turn the exit code to 1.
 */
import { whenLauncherGone } from '../src/launcher.ts';
import type { Logger } from '../src/observe/log.ts';

export interface Stoppable {
  close(options?: { force?: boolean }): Promise<void>;
}

/** Resolves with the exit code once the process has stopped after a signal. */
export function untilSignal(service: Stoppable, log: Logger, deadlineMs: number): Promise<number> {
  return new Promise((resolve) => {
    let signals = 0;
    let unwatch = () => {};
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      unwatch();
      if (signals === 1) {
        log.info({ signal, deadlineMs }, 'stopping (send the signal again to force)');
        const hardStop = setTimeout(() => {
          log.error({ deadlineMs }, 'did not stop within the deadline plus grace; exiting');
          resolve(1);
        }, deadlineMs + 15_000);
        hardStop.unref();
        service.close().then(
          () => {
            clearTimeout(hardStop);
            process.off('SIGTERM', onSignal);
            process.off('SIGINT', onSignal);
            resolve(0);
          },
          (err: unknown) => {
            clearTimeout(hardStop);
            log.error({ err: err instanceof AggregateError ? err.errors.map((e) => String((e as Error).message)) : String(err) }, 'errors while stopping');
            resolve(1);
          },
        );
      } else {
        log.warn({ signal }, 'second signal: forcing');
        void service.close({ force: true });
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // Started by npm, whose SIGTERM does not reach this process: stop when npm is gone.
    unwatch = whenLauncherGone(() => {
      log.warn('npm, which started this process, is gone: stopping as on SIGTERM');
      onSignal('SIGTERM');
    });
  });
}

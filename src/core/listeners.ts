/** Event listeners as the core's services keep them: a plain Set, notified in one guarded loop. */
import type { Logger } from './log';

/** The message of an error (or the thrown value as text). */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Calls every listener with `value`. A listener that throws is logged as `<what> listener threw: …`
 * and does not stop the others; one that adds or removes listeners while called does not upset the loop.
 */
export function notifyAll<T>(listeners: ReadonlySet<(value: T) => void>, value: T, logger: Logger, what: string): void {
  for (const listener of [...listeners]) {
    try {
      listener(value);
    } catch (err) {
      logger.error(`${what} listener threw: ${describeError(err)}`);
    }
  }
}

import { strict as assert } from 'node:assert';
import { notifyAll } from '../../src/core/listeners';
import type { Logger } from '../../src/core/log';

describe('notifyAll', () => {
  const recordingLogger = (): Logger & { errors: string[] } => {
    const errors: string[] = [];
    return { errors, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m: string) => void errors.push(m) };
  };

  it('calls every listener even when one throws, and logs the throw with what it was', () => {
    const logger = recordingLogger();
    const seen: string[] = [];
    const listeners = new Set<(v: number) => void>([
      (v) => seen.push(`a${v}`),
      () => {
        throw new Error('boom');
      },
      (v) => seen.push(`c${v}`),
    ]);
    notifyAll(listeners, 7, logger, 'ledger: onDidAppend');
    assert.deepEqual(seen, ['a7', 'c7']);
    assert.deepEqual(logger.errors, ['ledger: onDidAppend listener threw: boom']);
  });

  it('a listener that removes itself or adds another does not change who is called this time', () => {
    const logger = recordingLogger();
    const seen: string[] = [];
    const listeners = new Set<(v: number) => void>();
    const late = (): void => void seen.push('late');
    const once = (): void => {
      seen.push('once');
      listeners.delete(once);
      listeners.add(late);
    };
    listeners.add(once);
    listeners.add(() => seen.push('other'));
    notifyAll(listeners, 1, logger, 'x');
    assert.deepEqual(seen, ['once', 'other']);
    notifyAll(listeners, 2, logger, 'x');
    assert.deepEqual(seen, ['once', 'other', 'other', 'late']);
  });
});

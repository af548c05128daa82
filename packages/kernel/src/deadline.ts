/** Waiting for a kernel condition with a deadline instead of sleeping for a guessed time. */
import { setTimeout as delay } from 'node:timers/promises';
import { KernelError } from './errors.ts';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What we wait for, for the timeout error. */
  what?: string;
}

/** Poll `check` until it returns a value other than undefined/false; throws Timeout at the deadline. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new KernelError('Timeout', {
        operation: `waiting ${options.timeoutMs ?? 5000} ms for ${options.what ?? 'a condition'}`,
        cause: lastError,
      });
    }
    await delay(options.intervalMs ?? 20);
  }
}

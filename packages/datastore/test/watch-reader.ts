/** Reads a Watch with deadlines, so a test waits for a condition instead of sleeping. */
import type { ChangeEvent, Watch, WatchEvent } from '../src/index.ts';

export class WatchReader {
  readonly events: WatchEvent[] = [];
  readonly #iterator: AsyncIterator<WatchEvent>;
  #pending: Promise<IteratorResult<WatchEvent>> | undefined;
  readonly watch: Watch;

  constructor(watch: Watch) {
    this.watch = watch;
    this.#iterator = watch[Symbol.asyncIterator]();
  }

  /** Reads events until `done(event)` holds; returns the events read by this call. */
  async until(
    done: (e: WatchEvent, read: WatchEvent[]) => boolean,
    timeoutMs = 15_000,
    what = 'event',
  ): Promise<WatchEvent[]> {
    const read: WatchEvent[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; read: ${summary(read)}`);
      this.#pending ??= this.#iterator.next();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), left);
      });
      const r = await Promise.race([this.#pending, timeout]);
      clearTimeout(timer);
      if (r === 'timeout') continue;
      this.#pending = undefined;
      if (r.done) throw new Error(`watch ended while waiting for ${what}; read: ${summary(read)}`);
      read.push(r.value);
      this.events.push(r.value);
      if (done(r.value, read)) return read;
    }
  }

  /** Reads until a change event for `name` of the given type arrives. */
  untilChange(type: ChangeEvent['type'], name: string, timeoutMs?: number): Promise<WatchEvent[]> {
    return this.until(
      (e) => isChange(e) && e.type === type && nameOf(e) === name,
      timeoutMs,
      `${type} ${name}`,
    );
  }

  close(): Promise<void> {
    return this.watch.close();
  }
}

export function isChange(e: WatchEvent): e is ChangeEvent {
  return e.type === 'added' || e.type === 'modified' || e.type === 'deleted';
}

export function nameOf(e: ChangeEvent): string {
  return e.type === 'deleted' ? e.old.metadata.name : e.new.metadata.name;
}

export function summary(events: readonly WatchEvent[]): string {
  return events
    .map((e) => {
      if (isChange(e)) return `${e.type}:${nameOf(e)}@${e.revision}`;
      if (e.type === 'status') return `status:${e.state}`;
      if (e.type === 'resync')
        return `resync@${e.revision}(${e.events.length} events, ${e.items.length} items)`;
      return `${e.type}@${e.revision}`;
    })
    .join(' ');
}

/** Time behind an interface so the FSM's timers can be driven by hand in tests. */
export type TimerHandle = { readonly id: number };

export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { id: 0, t } as unknown as TimerHandle;
  },
  clearTimer(handle) {
    clearTimeout((handle as unknown as { t: ReturnType<typeof setTimeout> }).t);
  },
};

/** A clock that moves only when told to; timers fire in due order inside advance(). */
export class ManualClock implements Clock {
  #now = 0;
  #next = 1;
  #timers = new Map<number, { due: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { due: this.#now + ms, fn });
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle.id);
  }

  /** Milliseconds until the next timer, or undefined when none is armed. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const t of this.#timers.values()) if (min === undefined || t.due < min) min = t.due;
    return min === undefined ? undefined : min - this.#now;
  }

  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let best: [number, { due: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].due <= target && (!best || e[1].due < best[1].due)) best = e;
      if (!best) break;
      this.#timers.delete(best[0]);
      this.#now = best[1].due;
      best[1].fn();
    }
    this.#now = target;
  }
}

/**
 * An unbounded async queue: producers push, one consumer iterates. Closing ends the iteration
 * after the queued items are consumed; failing it makes the iterator throw.
 */
export class EventQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiter: ((r: IteratorResult<T>) => void) | undefined;
  #failWaiter: ((e: unknown) => void) | undefined;
  #closed = false;
  #error: unknown;
  #onReturn: () => void;

  constructor(onReturn: () => void = () => {}) {
    this.#onReturn = onReturn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(item: T): void {
    if (this.#closed) return;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      this.#failWaiter = undefined;
      w({ value: item, done: false });
    } else {
      this.#items.push(item);
    }
  }

  close(error?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    const w = this.#waiter;
    const f = this.#failWaiter;
    this.#waiter = undefined;
    this.#failWaiter = undefined;
    if (error !== undefined && f) f(error);
    else if (w) w({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const item = this.#items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.#closed) {
          return this.#error !== undefined
            ? Promise.reject(this.#error)
            : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => {
          this.#waiter = resolve;
          this.#failWaiter = reject;
        });
      },
      return: () => {
        this.close();
        this.#onReturn();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

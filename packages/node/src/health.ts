import { createServer, type Server } from 'node:http';

/**
 * Liveness and readiness like Calico's health aggregator: each component reports for itself; the
 * node is live when all are live and ready when all are ready. `/liveness` and `/readiness` answer
 * 200 or 503 with a JSON body naming each component's state.
 */
export interface HealthReport {
  live: boolean;
  ready: boolean;
  detail?: string;
}

export class HealthAggregator {
  readonly #reporters = new Map<string, () => HealthReport>();

  register(name: string, report: () => HealthReport): void {
    this.#reporters.set(name, report);
  }

  summary(): { live: boolean; ready: boolean; components: Record<string, HealthReport> } {
    const components: Record<string, HealthReport> = {};
    let live = true;
    let ready = true;
    for (const [name, report] of this.#reporters) {
      let r: HealthReport;
      try {
        r = report();
      } catch (err) {
        r = { live: false, ready: false, detail: (err as Error).message };
      }
      components[name] = r;
      live &&= r.live;
      ready &&= r.ready;
    }
    return { live, ready, components };
  }
}

/**
 * The watchdog over a component's loop, as Calico's health aggregator times out a reporter that
 * stops reporting in: the component is not live while one pass of its loop (a dataplane apply,
 * a BGP apply round) has been running longer than `timeoutMs`. A loop that is idle, or keeps
 * finishing its passes, is live.
 */
export function loopLiveness(
  loop: string,
  runningMs: number | undefined,
  timeoutMs: number,
): { live: boolean; detail?: string } {
  if (runningMs === undefined || runningMs <= timeoutMs) return { live: true };
  return {
    live: false,
    detail: `${loop} stalled: one pass running for ${Math.round(runningMs)} ms (timeout ${timeoutMs} ms)`,
  };
}

export async function serveHealth(health: HealthAggregator, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/liveness' && path !== '/readiness') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /liveness or /readiness\n');
      return;
    }
    const s = health.summary();
    const ok = path === '/liveness' ? s.live : s.ready;
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(s)}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/**
 * Whether the datastore answers, checked every `intervalMs` by `check` (one small read): like
 * Calico's, calico-node stops being ready while its datastore is unreachable (its components
 * would work from a stale view) and is ready again once a check succeeds. Liveness is unaffected.
 */
export class DatastoreReachability {
  readonly #check: () => Promise<unknown>;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  #reachable = true;
  #detail: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(check: () => Promise<unknown>, options: { intervalMs?: number; timeoutMs?: number } = {}) {
    this.#check = check;
    this.#intervalMs = options.intervalMs ?? 2000;
    this.#timeoutMs = options.timeoutMs ?? 2000;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.checkNow(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One check now (skipped while one is still running). */
  async checkNow(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#check(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.#timeoutMs} ms`)),
            this.#timeoutMs,
          );
        }),
      ]);
      this.#reachable = true;
      this.#detail = undefined;
    } catch (err) {
      this.#reachable = false;
      this.#detail = `datastore unreachable: ${(err as Error).message}`;
    } finally {
      clearTimeout(timer);
      this.#checking = false;
    }
  }

  report(): HealthReport {
    return { live: true, ready: this.#reachable, ...(this.#detail ? { detail: this.#detail } : {}) };
  }
}

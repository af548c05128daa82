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

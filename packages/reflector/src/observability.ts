/**
 * What calico-reflector shows the outside, like calico-node: /liveness and /readiness (200 or 503
 * with a JSON body), Prometheus /metrics on its own registry, and the status socket speaking the
 * BGP package's control protocol.
 */
import { createServer, type Server } from 'node:http';
import { type ControlServer, type RouteEntry, type RoutesQuery, serveControl } from '@calico-ts/bgp';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Reflector, ReflectorStatus } from './reflector.ts';

/** The status socket's methods (`callControl<ReflectorControlMethods, 'status'>(…)`). */
export type ReflectorControlMethods = {
  status: { params: Record<string, never>; result: ReflectorStatus };
  routes: { params: RoutesQuery; result: RouteEntry[] };
};

export function reflectorMetrics(reflector: Reflector): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const STATES = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'];
  new Gauge({
    name: 'calico_reflector_bgp_peers',
    help: 'BGP sessions by FSM state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const peers = reflector.status().peers;
      for (const state of STATES) this.set({ state }, peers.filter((p) => p.state === state).length);
    },
  });
  new Gauge({
    name: 'calico_reflector_routes',
    help: 'Prefixes in the Loc-RIB',
    registers: [registry],
    collect() {
      this.set(reflector.status().routes);
    },
  });
  new Gauge({
    name: 'calico_reflector_update_groups',
    help: 'Update groups (sessions sharing one Adj-RIB-Out)',
    registers: [registry],
    collect() {
      this.set(reflector.status().updateGroups.length);
    },
  });
  new Gauge({
    name: 'calico_reflector_advertised_paths',
    help: 'Paths in all update groups’ Adj-RIB-Out (each stored once per group)',
    registers: [registry],
    collect() {
      this.set(reflector.status().updateGroups.reduce((n, g) => n + g.routes, 0));
    },
  });
  new Gauge({
    name: 'calico_reflector_ready',
    help: '1 when the reflector is ready (listening, datastore in sync)',
    registers: [registry],
    collect() {
      this.set(reflector.health().ready ? 1 : 0);
    },
  });
  return registry;
}

/** One HTTP server for /liveness, /readiness and (with a registry) /metrics. */
export async function serveHttp(
  reflector: Reflector,
  host: string,
  port: number,
  registry: Registry | undefined,
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics' && registry) {
      registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text))
        .catch((err: Error) => res.writeHead(500).end(err.message));
      return;
    }
    if (path === '/liveness' || path === '/readiness') {
      const h = reflector.health();
      const ok = path === '/liveness' ? h.live : h.ready;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(h)}\n`);
      return;
    }
    res
      .writeHead(404, { 'content-type': 'text/plain' })
      .end('not found: try /liveness, /readiness or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function serveStatus(reflector: Reflector, path: string): Promise<ControlServer> {
  return serveControl<ReflectorControlMethods>(path, {
    status: () => reflector.status(),
    routes: (q) => reflector.routes(q),
  });
}

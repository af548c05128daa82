import { createServer, type Server } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics for calico-node, on one registry owned by the process (no global default
 * registry). Names follow Felix's where Felix has one.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly inSync = new Gauge({
    name: 'felix_resync_state',
    help: '1 when Felix is in sync with the datastore',
    registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: 'felix_resyncs_started',
    help: 'Full resyncs with the datastore',
    registers: [this.registry],
  });
  readonly applyLatency = new Histogram({
    name: 'felix_int_dataplane_apply_time_seconds',
    help: 'Time to apply one batch of dataplane changes',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly routes = new Gauge({
    name: 'felix_route_table_list_routes',
    help: 'Routes Felix programs',
    registers: [this.registry],
  });
  readonly localEndpoints = new Gauge({
    name: 'felix_active_local_endpoints',
    help: 'Workload endpoints on this node',
    registers: [this.registry],
  });
  readonly cniRequests = new Counter({
    name: 'calico_cni_requests_total',
    help: 'CNI requests served, by command and result',
    labelNames: ['command', 'result'],
    registers: [this.registry],
  });
  readonly cniLatency = new Histogram({
    name: 'calico_cni_request_duration_seconds',
    help: 'Time to serve one CNI request',
    labelNames: ['command'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /** Metrics kept outside the registry (Felix's drop-record counters), in exposition text. */
  readonly extraText: (() => string)[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}

export async function serveMetrics(metrics: NodeMetrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: try /metrics\n');
      return;
    }
    metrics.registry
      .metrics()
      .then((text) =>
        res
          .writeHead(200, { 'content-type': metrics.registry.contentType })
          .end([text, ...metrics.extraText.map((f) => f())].join('')),
      )
      .catch((err: Error) => res.writeHead(500).end(err.message));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

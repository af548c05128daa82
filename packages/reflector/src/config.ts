/**
 * calico-reflector's command line. Two ways to say who it is and whom it serves:
 * - flags: `--router-id`, `--as`, `--cluster-id`, `--listen`, `--client` / `--peer` (repeatable);
 * - the datastore: `--node NAME` with `--etcd-endpoints`: the Node resource NAME gives the address,
 *   AS and `routeReflectorClusterID`, and BGPPeer resources select the peers (calico-node's rules:
 *   a peer without our cluster ID is a client).
 * Every problem is reported as flag, value and what was expected, all at once.
 */
import { parseArgs } from 'node:util';
import { normalizeIp, parseIp } from '@calico-ts/bgp';

export interface StaticPeer {
  address: string;
  port: number | undefined;
  asNumber: number | undefined;
}

export interface ReflectorConfig {
  /** Static identity and peers (flags), or the Node resource to read them from. */
  source:
    | {
        kind: 'flags';
        routerId: string;
        asNumber: number;
        clusterId: string;
        clients: StaticPeer[];
        peers: StaticPeer[];
      }
    | { kind: 'datastore'; node: string; etcdEndpoints: string[] };
  listen: { address: string; port: number | undefined };
  /** `host:port` for /liveness and /readiness, or undefined for none. */
  health: { host: string; port: number } | undefined;
  /** `host:port` for /metrics, or undefined for none. */
  metrics: { host: string; port: number } | undefined;
  control: string | false;
  holdTime: number | undefined;
  connectRetryTime: number;
  logLevel: string;
}

export const DEFAULT_CONTROL_SOCKET = '/var/run/calico/reflector.ctl';
/** calico-node's health port is 9099; the reflector defaults to the next one so both fit a host. */
export const DEFAULT_HEALTH = '127.0.0.1:9100';
export const DEFAULT_AS_NUMBER = 64512;
/** BIRD's Calico template uses `connect retry time 5`. */
export const DEFAULT_CONNECT_RETRY_TIME = 5;

export const USAGE = `usage: calico-reflector [flags]
identity and peers from flags:
  --router-id IPV4          BGP identifier (required)
  --as N                    AS number (default ${DEFAULT_AS_NUMBER})
  --cluster-id IPV4         RFC 4456 cluster ID (default: the router ID)
  --client IP[:PORT][@AS]   a route-reflector client (repeatable; AS default: ours)
  --peer IP[:PORT][@AS]     a non-client peer, e.g. another reflector (repeatable)
identity and peers from the datastore:
  --node NAME               the Node resource with this reflector's address and routeReflectorClusterID
  --etcd-endpoints URLS     comma-separated etcd URLs
common:
  --listen ADDR[:PORT]      where to accept BGP (default: 0.0.0.0, port 179 or the BGPConfiguration's)
  --health HOST:PORT|off    /liveness and /readiness (default ${DEFAULT_HEALTH})
  --metrics HOST:PORT|off   Prometheus /metrics (default off)
  --control PATH|off        status socket (default ${DEFAULT_CONTROL_SOCKET})
  --hold-time S             hold time offered (default 90)
  --connect-retry-time S    seconds between connection attempts (default ${DEFAULT_CONNECT_RETRY_TIME})
  --log-level LEVEL         pino level (default info)
`;

export class ReflectorConfigError extends Error {
  readonly code = 'REFLECTOR_CONFIG_INVALID';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`calico-reflector: invalid command line:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

const isIpv4 = (s: string) => parseIp(s) !== undefined && !s.includes(':');

export function parseReflectorArgs(argv: readonly string[]): ReflectorConfig {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new ReflectorConfigError([(err as Error).message]);
  }
  const v = parsed.values;
  const problems: string[] = [];
  const int = (flag: string, value: string | undefined, min: number, max: number): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      problems.push(`--${flag}: got "${value}", expected an integer ${min}..${max}`);
      return undefined;
    }
    return n;
  };
  const hostPort = (flag: string, value: string): { host: string; port: number } | undefined => {
    if (value === 'off') return undefined;
    const m = /^(.*):(\d+)$/.exec(value);
    const host = m?.[1]?.replace(/^\[(.*)\]$/, '$1');
    const port = m ? Number(m[2]) : Number.NaN;
    if (!m || !host || !parseIp(host) || port < 1 || port > 65535) {
      problems.push(`--${flag}: got "${value}", expected HOST:PORT with an IP host, or "off"`);
      return undefined;
    }
    return { host: normalizeIp(host), port };
  };
  const peer = (flag: string, value: string): StaticPeer | undefined => {
    const m = /^(\[[^\]]+\]|[^@]+?)(?::(\d+))?(?:@(\d+))?$/.exec(value);
    const address = m?.[1]?.replace(/^\[(.*)\]$/, '$1');
    const port = m?.[2] !== undefined ? Number(m[2]) : undefined;
    const asNumber = m?.[3] !== undefined ? Number(m[3]) : undefined;
    const bareV6 = parseIp(value) !== undefined && value.includes(':');
    if (bareV6) return { address: normalizeIp(value), port: undefined, asNumber: undefined };
    if (
      !address ||
      !parseIp(address) ||
      (port !== undefined && (port < 1 || port > 65535)) ||
      (asNumber !== undefined && (asNumber < 1 || asNumber > 4294967295))
    ) {
      problems.push(`--${flag}: got "${value}", expected IP, IP:PORT, [IPV6]:PORT, optionally @AS`);
      return undefined;
    }
    return { address: normalizeIp(address), port, asNumber };
  };

  const listenArg = v.listen ?? '0.0.0.0';
  let listen: ReflectorConfig['listen'] = { address: '0.0.0.0', port: undefined };
  const lm = /^(\[[^\]]+\]|[^:]+|[0-9a-fA-F:]+)(?::(\d+))?$/.exec(listenArg);
  const bareListenV6 = parseIp(listenArg) !== undefined && listenArg.includes(':');
  if (bareListenV6) listen = { address: normalizeIp(listenArg), port: undefined };
  else if (lm && parseIp(lm[1]!.replace(/^\[(.*)\]$/, '$1'))) {
    const port = lm[2] !== undefined ? Number(lm[2]) : undefined;
    if (port !== undefined && (port < 1 || port > 65535))
      problems.push(`--listen: got "${listenArg}", expected a port 1..65535`);
    listen = { address: normalizeIp(lm[1]!.replace(/^\[(.*)\]$/, '$1')), port };
  } else problems.push(`--listen: got "${listenArg}", expected ADDR or ADDR:PORT`);

  const health = hostPort('health', v.health ?? DEFAULT_HEALTH);
  const metrics = v.metrics === undefined ? undefined : hostPort('metrics', v.metrics);
  const holdTime = int('hold-time', v['hold-time'], 0, 65535);
  if (holdTime !== undefined && holdTime > 0 && holdTime < 3)
    problems.push(`--hold-time: got "${holdTime}", expected 0 or 3..65535 seconds`);
  const connectRetryTime = int('connect-retry-time', v['connect-retry-time'], 1, 65535);

  let source: ReflectorConfig['source'] | undefined;
  const flagIdentity =
    v['router-id'] !== undefined || (v.client?.length ?? 0) > 0 || (v.peer?.length ?? 0) > 0;
  if (v.node !== undefined) {
    if (flagIdentity)
      problems.push(
        '--node: the datastore gives the identity and peers; drop --router-id, --client and --peer',
      );
    const endpoints = (v['etcd-endpoints'] ?? '').split(',').filter(Boolean);
    if (endpoints.length === 0) problems.push('--etcd-endpoints: missing, expected etcd URLs with --node');
    for (const e of endpoints)
      if (!/^https?:\/\/[^/]+/.test(e))
        problems.push(`--etcd-endpoints: got "${e}", expected an http(s):// URL`);
    source = { kind: 'datastore', node: v.node, etcdEndpoints: endpoints };
  } else {
    const routerId = v['router-id'];
    if (routerId === undefined)
      problems.push('--router-id: missing, expected an IPv4 address (or use --node)');
    else if (!isIpv4(routerId)) problems.push(`--router-id: got "${routerId}", expected an IPv4 address`);
    const clusterId = v['cluster-id'] ?? routerId;
    if (v['cluster-id'] !== undefined && !isIpv4(v['cluster-id']))
      problems.push(`--cluster-id: got "${v['cluster-id']}", expected an IPv4 address`);
    const asNumber = int('as', v.as, 1, 4294967295) ?? DEFAULT_AS_NUMBER;
    const clients = (v.client ?? []).map((c) => peer('client', c)).filter((p) => p !== undefined);
    const peers = (v.peer ?? []).map((c) => peer('peer', c)).filter((p) => p !== undefined);
    source = {
      kind: 'flags',
      routerId: routerId ?? '',
      asNumber,
      clusterId: clusterId ?? '',
      clients,
      peers,
    };
  }
  if (problems.length) throw new ReflectorConfigError(problems);
  const control = v.control ?? DEFAULT_CONTROL_SOCKET;
  return {
    source: source!,
    listen,
    health,
    metrics,
    control: control === 'off' ? false : control,
    holdTime,
    connectRetryTime: connectRetryTime ?? DEFAULT_CONNECT_RETRY_TIME,
    logLevel: v['log-level'] ?? 'info',
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      'router-id': { type: 'string' },
      as: { type: 'string' },
      'cluster-id': { type: 'string' },
      client: { type: 'string', multiple: true },
      peer: { type: 'string', multiple: true },
      node: { type: 'string' },
      'etcd-endpoints': { type: 'string' },
      listen: { type: 'string' },
      health: { type: 'string' },
      metrics: { type: 'string' },
      control: { type: 'string' },
      'hold-time': { type: 'string' },
      'connect-retry-time': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

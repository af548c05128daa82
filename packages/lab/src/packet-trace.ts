/**
 * The kernel's own packet tracing, read back: a small nftables table in each namespace sets
 * `meta nftrace` on packets that match one probe (at a hook priority before every other table),
 * and `nft -a monitor trace` in that namespace reports each chain and rule the packet went through
 * in every table, iptables-nft's included, with the rule's handle and verdict. Nothing is
 * simulated: what is reported is what the kernel did to that packet.
 *
 * The monitor gives no sign when it is listening, so each namespace also traces a canary: a TCP
 * SYN to 127.0.0.1 on a port nothing serves, sent from inside the namespace until the monitor
 * reports it. The same canary sent after the probe shows that every earlier event has been read.
 * Each canary goes to its own port of a range, and a wait counts only a canary it sent itself:
 * an earlier canary (the one that showed the monitor listening is reported twice, once again when
 * it loops back in on lo) may be read after the wait began, before the probe's events.
 */
import {
  connectTcp,
  execInNamespace,
  type NamespaceProcess,
  NetNamespace,
  spawnInNamespace,
  waitFor,
} from '@calico-ts/kernel';
import { LabError } from './errors.ts';

/** Which packets a trace follows: one probe's addresses, protocol and ports. */
export interface TraceMatch {
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp' | 'icmp';
  srcPort?: number;
  dstPort?: number;
}

/** One line of `nft -a monitor trace`. */
export interface TraceEvent {
  /** The kernel's trace id: one per packet per namespace. */
  id: string;
  family: string;
  table: string;
  chain: string;
  type: 'packet' | 'rule' | 'policy' | 'verdict';
  /** The rule's handle (type rule). */
  handle?: number;
  /** accept, drop, continue, return, jump, goto (rules and chain policies). */
  verdict?: string;
  /** The chain a jump or goto went to. */
  target?: string;
  /** From the packet line: input and output interface, IP total length. */
  iif?: string;
  oif?: string;
  length?: number;
  /** The rule as nft prints it, without the handle and verdict. */
  text: string;
}

const LINE = /^trace id (\S+) (\S+) (\S+) (\S+) (packet|rule|policy|verdict):? ?(.*)$/;

/** One line of `nft -a monitor trace` as an event; undefined for anything else. */
export function parseTraceLine(line: string): TraceEvent | undefined {
  const m = LINE.exec(line.trim());
  if (!m) return undefined;
  const type = m[5] as TraceEvent['type'];
  const rest = m[6] ?? '';
  const event: TraceEvent = { id: m[1]!, family: m[2]!, table: m[3]!, chain: m[4]!, type, text: rest.trim() };
  if (type === 'packet') {
    const iif = /\biif "([^"]+)"/.exec(rest);
    const oif = /\boif "([^"]+)"/.exec(rest);
    const length = /\bip length (\d+)/.exec(rest);
    if (iif) event.iif = iif[1]!;
    if (oif) event.oif = oif[1]!;
    if (length) event.length = Number(length[1]);
    return event;
  }
  const verdict = /\(verdict (\w+)(?: (\S+))?\)\s*$/.exec(rest);
  if (verdict) {
    event.verdict = verdict[1]!;
    if (verdict[2]) event.target = verdict[2];
  }
  if (type === 'policy') event.verdict = /^(\w+)/.exec(rest)?.[1] ?? event.verdict;
  const handle = /# handle (\d+)/.exec(rest);
  if (handle) event.handle = Number(handle[1]);
  event.text = rest
    .replace(/\s*\(verdict [^)]*\)\s*$/, '')
    .replace(/\s*# handle \d+\s*$/, '')
    .replace(/\s+/g, ' ')
    .trim();
  return event;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The nft match for a probe: only its first packet (a TCP SYN), so retransmits and answers stay out. */
export function traceMatchExpression(match: TraceMatch): string {
  for (const [field, ip] of [
    ['src', match.src],
    ['dst', match.dst],
  ] as const)
    if (!IPV4.test(ip))
      throw new LabError('Invalid', `trace ${field} ${JSON.stringify(ip)}: expected an IPv4 address`);
  const parts = [`ip saddr ${match.src}`, `ip daddr ${match.dst}`];
  if (match.protocol === 'icmp') parts.push('icmp type echo-request');
  else {
    parts.push(`meta l4proto ${match.protocol}`);
    if (match.srcPort !== undefined) parts.push(`${match.protocol} sport ${match.srcPort}`);
    if (match.dstPort !== undefined) parts.push(`${match.protocol} dport ${match.dstPort}`);
    if (match.protocol === 'tcp') parts.push('tcp flags & (syn | ack) == syn');
  }
  return parts.join(' ');
}

/** How many ports canaries cycle through, from the trace's first canary port. */
export const CANARY_PORTS = 512;

/**
 * The table's nft script: a prerouting chain that marks the probe, an output chain for the
 * canaries (TCP SYNs to 127.0.0.1, ports `canaryPort` to `canaryPort + CANARY_PORTS - 1`).
 */
export function traceTableScript(table: string, match: TraceMatch, canaryPort: number): string {
  if (!/^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(table))
    throw new LabError(
      'Invalid',
      `trace table ${JSON.stringify(table)}: expected a letter then up to 30 of [A-Za-z0-9_]`,
    );
  return [
    `table inet ${table} {`,
    '  chain pre {',
    '    type filter hook prerouting priority -400; policy accept;',
    `    ${traceMatchExpression(match)} meta nftrace set 1`,
    '  }',
    '  chain out {',
    '    type filter hook output priority -400; policy accept;',
    `    ip daddr 127.0.0.1 tcp dport ${canaryPort}-${canaryPort + CANARY_PORTS - 1} tcp flags & (syn | ack) == syn meta nftrace set 1`,
    '  }',
    '}',
    '',
  ].join('\n');
}

interface Monitor {
  namespace: string;
  proc: NamespaceProcess;
  events: TraceEvent[];
  canaryIds: Set<string>;
  /** The canary ports the monitor has reported (a port leaves the set when it is sent again). */
  canaryPorts: Set<number>;
  partial: string;
}

export interface PacketTraceOptions {
  /** Network namespace names (`/run/netns/<name>`) the probe may pass through. */
  namespaces: readonly string[];
  match: TraceMatch;
  /** The nft table's name in each namespace (default `calico_trace_<pid>`). */
  table?: string;
  /** How long to wait for each monitor to show it is listening (default 10 s). */
  readyTimeoutMs?: number;
}

/** A running trace; stop() removes its tables and monitors, and is safe to call more than once. */
export class PacketTrace {
  readonly table: string;
  readonly #monitors: Monitor[] = [];
  readonly #canaryPort: number;
  #nextCanary = 0;
  readonly #tablesIn: string[] = [];
  #stopped = false;

  private constructor(table: string, canaryPort: number) {
    this.table = table;
    this.#canaryPort = canaryPort;
  }

  /** Installs the table and starts a monitor in every namespace; resolves once each is listening. */
  static async start(options: PacketTraceOptions): Promise<PacketTrace> {
    const canaryPort = 20_000 + Math.floor(Math.random() * (10_000 - CANARY_PORTS));
    const trace = new PacketTrace(options.table ?? `calico_trace_${process.pid}`, canaryPort);
    try {
      const script = traceTableScript(trace.table, options.match, canaryPort);
      for (const name of options.namespaces) {
        const ns = NetNamespace.open(name);
        try {
          // A table left by an interrupted earlier trace of the same name goes first.
          await execInNamespace(ns, 'nft', ['delete', 'table', 'inet', trace.table]);
          trace.#tablesIn.push(name);
          const r = await execInNamespace(ns, 'nft', ['-f', '-'], { input: script });
          if (r.exitCode !== 0)
            throw new LabError('Invalid', `installing trace table in ${name}: nft said ${r.stderr.trim()}`);
          const proc = await spawnInNamespace(ns, 'nft', ['-a', 'monitor', 'trace']);
          const monitor: Monitor = {
            namespace: name,
            proc,
            events: [],
            canaryIds: new Set(),
            canaryPorts: new Set(),
            partial: '',
          };
          proc.child.stdout?.setEncoding('utf8');
          proc.child.stdout?.on('data', (chunk: string) => trace.#read(monitor, chunk));
          trace.#monitors.push(monitor);
        } finally {
          ns.close();
        }
      }
      await trace.#canary(options.readyTimeoutMs ?? 10_000);
      return trace;
    } catch (err) {
      await trace.stop();
      throw err;
    }
  }

  #read(monitor: Monitor, chunk: string): void {
    const lines = (monitor.partial + chunk).split('\n');
    monitor.partial = lines.pop() ?? '';
    for (const line of lines) {
      const event = parseTraceLine(line);
      if (!event) continue;
      // The canary is traced again when it loops back in on lo, under another trace id.
      const port =
        event.type === 'packet' && /\bip daddr 127\.0\.0\.1\b/.test(event.text)
          ? Number(/\btcp dport (\d+)/.exec(event.text)?.[1])
          : Number.NaN;
      const canaryPort = port >= this.#canaryPort && port < this.#canaryPort + CANARY_PORTS;
      if (canaryPort) monitor.canaryPorts.add(port);
      if (canaryPort || (event.table === this.table && event.chain === 'out'))
        monitor.canaryIds.add(event.id);
      if (monitor.canaryIds.has(event.id)) continue;
      monitor.events.push(event);
    }
  }

  /**
   * Sends canaries in every namespace until each monitor has reported one of those sent here
   * (each to a port of its own), so every event the kernel reported before is read.
   */
  async #canary(timeoutMs: number): Promise<void> {
    await Promise.all(
      this.#monitors.map(async (m) => {
        const sent: number[] = [];
        const ns = NetNamespace.open(m.namespace);
        try {
          await waitFor(
            async () => {
              if (!m.proc.running)
                throw new LabError('Invalid', `nft monitor trace in ${m.namespace} exited`);
              const port = this.#canaryPort + (this.#nextCanary++ % CANARY_PORTS);
              m.canaryPorts.delete(port);
              sent.push(port);
              await connectTcp({ host: '127.0.0.1', port, namespace: ns, timeoutMs: 200 })
                .then((s) => s.destroy())
                .catch(() => undefined);
              return sent.some((p) => m.canaryPorts.has(p));
            },
            { timeoutMs, intervalMs: 50, what: `nft monitor trace in ${m.namespace} to report` },
          );
        } finally {
          ns.close();
        }
      }),
    );
  }

  /** Waits until every event the kernel reported so far has been read (a canary behind them). */
  flush(timeoutMs = 5000): Promise<void> {
    return this.#canary(timeoutMs);
  }

  /** The traced packets in a namespace, each as its events in order (canaries left out). */
  packets(namespace: string): TraceEvent[][] {
    const monitor = this.#monitors.find((m) => m.namespace === namespace);
    if (!monitor) return [];
    const byId = new Map<string, TraceEvent[]>();
    for (const e of monitor.events) {
      const list = byId.get(e.id) ?? [];
      if (list.length === 0) byId.set(e.id, list);
      list.push(e);
    }
    return [...byId.values()];
  }

  /** Stops the monitors and deletes the tables (each namespace's, even when another fails). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const m of this.#monitors.splice(0)) await m.proc.stop(1000).catch(() => undefined);
    const failures: string[] = [];
    for (const name of this.#tablesIn.splice(0)) {
      try {
        const ns = NetNamespace.open(name);
        try {
          await execInNamespace(ns, 'nft', ['delete', 'table', 'inet', this.table]);
        } finally {
          ns.close();
        }
      } catch (err) {
        // A namespace removed meanwhile took the table with it.
        if (!/No such file|ENOENT/.test(String(err))) failures.push(`${name}: ${String(err)}`);
      }
    }
    if (failures.length > 0)
      throw new LabError('Invalid', `removing trace table ${this.table}: ${failures.join('; ')}`);
  }
}

/**
 * Set-up shared by the policy integration tests (IPv4 model, IPv6 subset, host endpoints): each
 * runs one Felix over a real etcd and a lab of namespaces, clears its policies between cases and
 * tears everything down afterwards.
 *
 * `NetpolModel` is the upstream Kubernetes network-policy e2e model (policy-semantics §4) on one
 * lab node: namespaces x, y, z with pods a, b, c (label `pod=<name>`; namespace labels
 * `ns=<name>` and `kubernetes.io/metadata.name=<name>` through the namespace profile `kns.<ns>`,
 * as Calico's controllers write it), each serving TCP and UDP on 80 and 81 (and SCTP where the
 * kernel has it) with upstream's named container ports `serve-<port>-<proto>`. A case writes
 * policies through the datastore, waits until their chains are in the kernel, probes the 9×9
 * matrix for the ports it needs (every source pod in parallel; PROBE_TIMEOUT_S) and
 * asserts that the measured matrix equals both the case's truth table and what the pure
 * `evaluateFlow` computes (through `policySnapshot`/`explainFlow`) from the same stored objects.
 * Self pairs are left out, as upstream does (a pod reaching its own address never leaves it).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type Datastore,
  EtcdDatastore,
  type KindName,
  namespaceProfile,
  type ResourceInput,
  serviceAccountProfile,
} from '@calico-ts/datastore';
import { execInNamespace, type NamespaceProcess, waitFor } from '@calico-ts/kernel';
import { createLab, type EtcdProcess, type Lab, type LabPod, labNodeIpv4, startEtcd } from '@calico-ts/lab';
import { expect } from 'vitest';
import { explainFlow, Felix, policySnapshot } from '../src/index.ts';

/**
 * Deletes every resource of `kinds` and waits until `save` (an iptables-save of the table that
 * holds the policy chains) no longer shows a `cali-pi-`/`cali-po-` chain.
 */
export async function clearPolicies(
  ds: Datastore,
  kinds: readonly KindName[],
  save: () => Promise<string>,
  what = 'policy chains removed',
): Promise<void> {
  for (const kind of kinds) {
    for (const r of (await ds.list(kind)).items) await ds.delete(kind, r.metadata.name, r.metadata.namespace);
  }
  await waitFor(async () => !/^:cali-p[io]-/m.test(await save()), {
    timeoutMs: 15_000,
    intervalMs: 50,
    what,
  });
}

/**
 * Stops Felix, closes the datastore, stops etcd, removes the lab (its servers by pid, every
 * namespace with its interfaces and rules) and the probe scripts' directory; each part may be
 * missing when set-up failed half-way.
 */
export async function tearDown(parts: {
  felix: Felix | undefined;
  ds: Datastore | undefined;
  etcd: EtcdProcess | undefined;
  lab: Lab | undefined;
  scriptDir: string | undefined;
}): Promise<void> {
  await parts.felix?.stop();
  await parts.ds?.close();
  await parts.etcd?.stop();
  await parts.lab?.teardown();
  if (parts.scriptDir) rmSync(parts.scriptDir, { recursive: true, force: true });
}

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const PODS = ['a', 'b', 'c'] as const;
export const NODE = 'node-1';
const POOL = '10.66.0.0/16';
/**
 * How long a probe waits for an answer. Upstream waits 1 s; an answer that arrives while the
 * prober is not scheduled still counts (it looks once more past the deadline), and a mismatch is
 * measured again, so half of that is enough on a local node and keeps the suite short.
 */
const PROBE_TIMEOUT_S = 0.5;
/** The system interpreter directly: a version-manager shim would add a shell to every probe. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * What a probe sends: `<proto>/<port>` for TCP, UDP and SCTP (a connect, or a datagram echoed
 * back), `icmp/<type>/<code>` for an ICMP request (echo 8 or timestamp 13) answered by the kernel.
 */
export type Probe = `${'tcp' | 'udp' | 'sctp'}/${80 | 81}` | `icmp/${number}/${number}`;

/** Upstream's namespace-name label (`v1.LabelMetadataName`), set on every namespace. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/**
 * Serves TCP, UDP (echo) and, when the kernel has it, SCTP on 80 and 81; or, as `prober`, reads
 * lines `<timeout> <target>…` on stdin, probes the targets (`tcp:ip:port`, `udp:ip:port`,
 * `sctp:ip:port`, `icmp:ip:type/code`) in parallel and prints a line `<target>=<1|0> …`. One
 * prober per pod lives as long as the model, so a measurement starts no process.
 */
const PROBE_SCRIPT = `
import random, selectors, socket, struct, sys, time
def serve():
    sel = selectors.DefaultSelector()
    kinds = [('tcp', socket.SOCK_STREAM, 0), ('udp', socket.SOCK_DGRAM, 0)]
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        kinds.append(('sctp', socket.SOCK_STREAM, socket.IPPROTO_SCTP))
    except OSError:
        pass
    for name, kind, proto in kinds:
        for port in (80, 81):
            s = socket.socket(socket.AF_INET, kind, proto)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('0.0.0.0', port)); s.setblocking(False)
            if kind == socket.SOCK_STREAM:
                s.listen(128)
            sel.register(s, selectors.EVENT_READ, 'udp' if name == 'udp' else 'stream')
    print('serving', ' '.join(k[0] for k in kinds), flush=True)
    while True:
        for key, _ in sel.select():
            try:
                if key.data == 'stream':
                    c, _ = key.fileobj.accept(); c.close()
                else:
                    data, addr = key.fileobj.recvfrom(64); key.fileobj.sendto(data, addr)
            except OSError:
                pass
def checksum(b):
    if len(b) % 2:
        b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
REPLY = {8: 0, 13: 14}
def probe(timeout, targets):
    sel = selectors.DefaultSelector()
    result = {t: 0 for t in targets}
    for t in targets:
        proto, ip, port = t.split(':')
        if proto in ('tcp', 'sctp'):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP if proto == 'sctp' else 0)
            s.setblocking(False)
            s.connect_ex((ip, int(port)))
            sel.register(s, selectors.EVENT_WRITE, t)
        elif proto == 'udp':
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
            s.connect((ip, int(port))); s.send(b'p')
            sel.register(s, selectors.EVENT_READ, t)
        else:
            itype, icode = (int(v) for v in port.split('/'))
            # A fresh identifier each time: conntrack must not see an earlier round's flow.
            ident = random.getrandbits(16)
            body = b'\\0' * 12 if itype == 13 else b'probe'
            head = struct.pack('!BBHHH', itype, icode, 0, ident, 1)
            packet = struct.pack('!BBHHH', itype, icode, checksum(head + body), ident, 1) + body
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.setblocking(False)
            s.connect((ip, 0)); s.send(packet)
            sel.register(s, selectors.EVENT_READ, (t, REPLY.get(itype, -1), ident))
    deadline = time.monotonic() + timeout
    pending = len(targets)
    while pending > 0:
        # Past the deadline, one last look without waiting: an answer that came while this
        # process was not scheduled still counts.
        left = max(0, deadline - time.monotonic())
        events = sel.select(left)
        if not events and left == 0:
            break
        for key, _ in events:
            s = key.fileobj
            if isinstance(key.data, tuple):
                t, want, ident = key.data
                try:
                    data = s.recv(256)
                except OSError:
                    continue
                icmp = data[(data[0] & 15) * 4:]
                if len(icmp) < 8 or icmp[0] != want or struct.unpack('!H', icmp[4:6])[0] != ident:
                    continue
                ok = True
            elif key.data.startswith('udp'):
                t = key.data
                try:
                    s.recv(64); ok = True
                except OSError:
                    ok = False
            else:
                t = key.data
                ok = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            result[t] = 1 if ok else 0
            sel.unregister(s); s.close(); pending -= 1
    print(' '.join(f'{t}={v}' for t, v in result.items()), flush=True)
def prober():
    print('ready', flush=True)
    for line in sys.stdin:
        words = line.split()
        if words:
            probe(float(words[0]), words[1:])
if sys.argv[1] == 'serve':
    serve()
elif sys.argv[1] == 'prober':
    prober()
elif sys.argv[1] == 'sctp':
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close(); print('yes')
    except OSError as e:
        print('no', e)
else:
    probe(float(sys.argv[2]), sys.argv[3:])
`;

export interface ModelPod {
  /** `<ns>/<pod>`. */
  id: string;
  ns: string;
  pod: string;
  ip: string;
  lab: LabPod;
  prober: Prober;
}

/** A long-lived prober process in a pod: one request line in, one answer line out, in turn. */
class Prober {
  readonly #proc: NamespaceProcess;
  readonly #lines: string[] = [];
  #waiting: ((line: string) => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(proc: NamespaceProcess) {
    this.#proc = proc;
    createInterface({ input: proc.child.stdout! }).on('line', (line) => {
      const w = this.#waiting;
      this.#waiting = undefined;
      if (w) w(line);
      else this.#lines.push(line);
    });
  }

  #nextLine(): Promise<string> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      void this.#proc.exited.then((e) => reject(new Error(`prober exited (${e.code ?? e.signal})`)));
    });
  }

  /** Waits for the process to say it is ready. */
  async ready(): Promise<void> {
    const line = await this.#nextLine();
    if (line !== 'ready') throw new Error(`prober said ${JSON.stringify(line)}`);
  }

  /** One probe round: `<target>=<1|0>` words. */
  probe(timeoutS: number, targets: readonly string[]): Promise<string> {
    const run = this.#queue.then(() => {
      this.#proc.child.stdin!.write(`${timeoutS} ${targets.join(' ')}\n`);
      return this.#nextLine();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/** A pod or a set of pods: empty fields are wildcards (upstream's `Peer`). */
export interface Peer {
  ns?: string;
  pod?: string;
}

const matches = (p: ModelPod, f: Peer) =>
  (f.ns === undefined || f.ns === p.ns) && (f.pod === undefined || f.pod === p.pod);

/** Reachability per probe: `from>to` allowed, self pairs left out. */
export type Matrix = Map<Probe, Map<string, boolean>>;

/**
 * One probe's truth table (upstream's `Reachability`): every pair allowed or denied to start
 * with, then changed by `expect…` calls in order.
 */
export class Reachability {
  readonly #pods: readonly ModelPod[];
  readonly cells = new Map<string, boolean>();

  constructor(pods: readonly ModelPod[], allowed = true) {
    this.#pods = pods;
    for (const from of pods)
      for (const to of pods) if (from !== to) this.cells.set(`${from.id}>${to.id}`, allowed);
  }

  expectPeer(from: Peer, to: Peer, allowed: boolean): this {
    for (const f of this.#pods) {
      if (!matches(f, from)) continue;
      for (const t of this.#pods) if (f !== t && matches(t, to)) this.cells.set(`${f.id}>${t.id}`, allowed);
    }
    return this;
  }

  /** `x/a` style ids. */
  expect(from: string, to: string, allowed: boolean): this {
    const [fns, fpod] = from.split('/');
    const [tns, tpod] = to.split('/');
    return this.expectPeer({ ns: fns!, pod: fpod! }, { ns: tns!, pod: tpod! }, allowed);
  }

  /** The pod's column: everything reaching it. */
  expectAllIngress(pod: string, allowed: boolean): this {
    const [ns, name] = pod.split('/');
    return this.expectPeer({}, { ns: ns!, pod: name! }, allowed);
  }

  /** The pod's row: everything it reaches. */
  expectAllEgress(pod: string, allowed: boolean): this {
    const [ns, name] = pod.split('/');
    return this.expectPeer({ ns: ns!, pod: name! }, {}, allowed);
  }
}

export interface NetpolModelOptions {
  /** Run-unique prefix for namespaces, interfaces and the temp dir. */
  prefix: string;
  /** Give every pod the service account `sa-<pod>` (profile `ksa.<ns>.sa-<pod>`, label `sa=<pod>`). */
  serviceAccounts?: boolean;
}

const POLICY_KINDS: readonly KindName[] = [
  'NetworkPolicy',
  'GlobalNetworkPolicy',
  'KubernetesNetworkPolicy',
  'Tier',
  'NetworkSet',
  'GlobalNetworkSet',
];

/** The e2e model's lab: one node, nine pods, one Felix, one etcd. */
export class NetpolModel {
  lab: Lab | undefined;
  etcd: EtcdProcess | undefined;
  ds!: Datastore;
  felix: Felix | undefined;
  scriptDir: string | undefined;
  script = '';
  readonly pods: ModelPod[] = [];
  /** Whether this kernel has SCTP (the servers listen on it, the probes can use it). */
  sctp = false;
  readonly #options: NetpolModelOptions;

  constructor(options: NetpolModelOptions) {
    this.#options = options;
  }

  get node() {
    const n = this.lab?.nodes[0];
    if (!n) throw new Error('model not started');
    return n;
  }

  pod(id: string): ModelPod {
    const p = this.pods.find((q) => q.id === id);
    if (!p) throw new Error(`no pod ${id}`);
    return p;
  }

  /** A fresh all-allowed (or all-denied) truth table over the nine pods. */
  reachability(allowed = true): Reachability {
    return new Reachability(this.pods, allowed);
  }

  async start(): Promise<void> {
    const { prefix } = this.#options;
    this.scriptDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    this.script = join(this.scriptDir, 'netpol-probe.py');
    writeFileSync(this.script, PROBE_SCRIPT);
    this.lab = await createLab({ prefix, nodes: 1 });
    this.etcd = await startEtcd();
    this.ds = new EtcdDatastore({ endpoints: [this.etcd.endpoint] });
    await this.ds.create('IPPool', {
      metadata: { name: 'pool' },
      spec: { cidr: POOL, ipipMode: 'Never', vxlanMode: 'Never', blockSize: 26 },
    });
    await this.ds.create('Node', {
      metadata: { name: NODE },
      spec: { bgp: { ipv4Address: `${labNodeIpv4(1)}/24` } },
    });
    for (const ns of NAMESPACES) await this.ds.create('Profile', this.namespaceProfile(ns));
    const probe = await execInNamespace(this.node.namespace, PYTHON, [this.script, 'sctp']);
    this.sctp = probe.stdout.startsWith('yes');
    let host = 10;
    for (const ns of NAMESPACES) {
      for (const pod of PODS) {
        if (this.#options.serviceAccounts) {
          await this.ds.create('Profile', serviceAccountProfile(ns, `sa-${pod}`, { sa: pod }));
        }
        const p = await this.#addPod(ns, pod, `10.66.0.${host++}`);
        await this.lab.spawn(p.lab, PYTHON, [this.script, 'serve']);
        await p.prober.ready();
      }
    }
    this.felix = new Felix({ datastore: this.ds, nodeName: NODE, netns: this.node.namespace });
    this.felix.start();
    await this.felix.whenReady();
  }

  /** The profile Calico's controllers write for a namespace, with upstream's labels (plus `extra`). */
  namespaceProfile(ns: string, extra: Record<string, string> = {}) {
    return namespaceProfile(ns, { ns, [NAMESPACE_NAME_LABEL]: ns, ...extra });
  }

  async teardown(): Promise<void> {
    await tearDown({
      felix: this.felix,
      ds: this.ds,
      etcd: this.etcd,
      lab: this.lab,
      scriptDir: this.scriptDir,
    });
  }

  static podIface(ns: string, pod: string): string {
    return `cali${createHash('sha1').update(`${ns}.${pod}`).digest('hex').slice(0, 11)}`;
  }

  async #addPod(ns: string, pod: string, ip: string): Promise<ModelPod> {
    const node = this.node;
    const labPod = await this.lab!.addPod(node.index, `${ns}${pod}`);
    const iface = NetpolModel.podIface(ns, pod);
    const { mac } = await this.lab!.wirePod(labPod, { iface, ipv4: ip });
    const sa = this.#options.serviceAccounts ? `sa-${pod}` : undefined;
    await this.ds.create('WorkloadEndpoint', {
      metadata: {
        name: `${NODE}-k8s-${pod}-eth0`,
        namespace: ns,
        labels: {
          pod,
          'projectcalico.org/namespace': ns,
          'projectcalico.org/orchestrator': 'k8s',
          ...(sa ? { 'projectcalico.org/serviceaccount': sa } : {}),
        },
      },
      spec: {
        node: NODE,
        orchestrator: 'k8s',
        pod,
        endpoint: 'eth0',
        interfaceName: iface,
        mac,
        ipNetworks: [`${ip}/32`],
        profiles: [`kns.${ns}`, ...(sa ? [`ksa.${ns}.${sa}`] : [])],
        ...(sa ? { serviceAccountName: sa } : {}),
        // Upstream's container ports, named serve-<port>-<proto>.
        ports: (['TCP', 'UDP', 'SCTP'] as const).flatMap((protocol) =>
          [80, 81].map((port) => ({ name: `serve-${port}-${protocol.toLowerCase()}`, protocol, port })),
        ),
      },
    });
    const prober = new Prober(
      await this.lab!.spawn(labPod, PYTHON, [this.script, 'prober'], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    const p: ModelPod = { id: `${ns}/${pod}`, ns, pod, ip, lab: labPod, prober };
    this.pods.push(p);
    return p;
  }

  async iptablesSave(): Promise<string> {
    return (await execInNamespace(this.node.namespace, 'iptables-save', ['-t', 'filter'])).stdout;
  }

  async ipsetSave(): Promise<string> {
    return (await execInNamespace(this.node.namespace, 'ipset', ['save'])).stdout;
  }

  /**
   * Checks the kernel now and again after each Felix apply (or every 250 ms), until `check`
   * holds or 15 s pass: no process is started while nothing was applied.
   */
  async #untilKernel(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = performance.now() + 15_000;
    for (;;) {
      let onApplied: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      const next = new Promise<void>((resolve) => {
        onApplied = () => resolve();
        timer = setTimeout(resolve, 250);
        this.felix?.once('applied', onApplied);
      });
      try {
        if (await check()) return;
        if (performance.now() > deadline) throw new Error(`timed out after 15 s waiting for ${what}`);
        await next;
      } finally {
        clearTimeout(timer);
        if (onApplied) this.felix?.off('applied', onApplied);
      }
    }
  }

  /** Waits until these chains are all in the kernel and these are gone. */
  async waitChains(present: readonly string[], absent: readonly string[] = []): Promise<void> {
    await this.#untilKernel(
      async () => {
        const save = await this.iptablesSave();
        const has = (c: string) => save.includes(`:${c} `);
        return present.every(has) && !absent.some(has);
      },
      `chains ${present.join(', ')} in, ${absent.join(', ')} out`,
    );
  }

  /** Waits until the filter table differs from `before` (an update to a chain that exists already). */
  async waitSaveChange(before: string): Promise<void> {
    await this.#untilKernel(async () => (await this.iptablesSave()) !== before, 'the filter table rewritten');
  }

  /** Waits until `ipset save` in the node matches. */
  async waitIpset(pattern: RegExp): Promise<void> {
    await this.#untilKernel(async () => pattern.test(await this.ipsetSave()), `ipsets matching ${pattern}`);
  }

  /** Waits until no policy chain is left in the kernel. */
  async waitNoPolicyChains(): Promise<void> {
    await this.#untilKernel(
      async () => !/^:cali-p[io]-/m.test(await this.iptablesSave()),
      'policy chains removed',
    );
  }

  /** Deletes every policy, tier and network set, and waits until no policy chain is left. */
  clearPolicies(): Promise<void> {
    return clearPolicies(this.ds, POLICY_KINDS, () => this.iptablesSave());
  }

  knp(ns: string, name: string, spec: ResourceInput<'KubernetesNetworkPolicy'>['spec']) {
    return this.ds.create('KubernetesNetworkPolicy', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace: ns },
      spec,
    });
  }

  /** Replaces a Kubernetes policy's spec (upstream's UpdatePolicy). */
  async updateKnp(ns: string, name: string, spec: ResourceInput<'KubernetesNetworkPolicy'>['spec']) {
    const old = await this.ds.get('KubernetesNetworkPolicy', name, ns);
    return this.ds.update('KubernetesNetworkPolicy', { ...old, spec });
  }

  /** Sets (or with `undefined` removes) labels of a pod's WorkloadEndpoint. */
  async labelPod(id: string, labels: Record<string, string | undefined>): Promise<void> {
    const p = this.pod(id);
    const wep = await this.ds.get('WorkloadEndpoint', `${NODE}-k8s-${p.pod}-eth0`, p.ns);
    const next: Record<string, string> = { ...wep.metadata.labels };
    for (const [k, v] of Object.entries(labels)) {
      if (v === undefined) delete next[k];
      else next[k] = v;
    }
    await this.ds.update('WorkloadEndpoint', { ...wep, metadata: { ...wep.metadata, labels: next } });
  }

  /** Rewrites a namespace's profile with upstream's labels plus `extra` (a namespace relabelled). */
  async labelNamespace(ns: string, extra: Record<string, string> = {}): Promise<void> {
    const old = await this.ds.get('Profile', `kns.${ns}`);
    await this.ds.update('Profile', { ...old, spec: this.namespaceProfile(ns, extra).spec });
  }

  /** Probes every pair for these probes, every source pod in parallel. */
  async measure(probes: readonly Probe[]): Promise<Matrix> {
    const out: Matrix = new Map(probes.map((p) => [p, new Map<string, boolean>()]));
    const byTarget = new Map<string, Probe>();
    await Promise.all(
      this.pods.map(async (from) => {
        const targets = this.pods
          .filter((to) => to !== from)
          .flatMap((to) =>
            probes.map((p) => {
              const [proto, ...rest] = p.split('/');
              const target = `${proto}:${to.ip}:${rest.join('/')}`;
              byTarget.set(target, p);
              return target;
            }),
          );
        const answer = await from.prober.probe(PROBE_TIMEOUT_S, targets);
        for (const word of answer.trim().split(' ')) {
          const eq = word.lastIndexOf('=');
          const target = word.slice(0, eq);
          const ip = target.split(':')[1];
          const to = this.pods.find((p) => p.ip === ip)!;
          out.get(byTarget.get(target)!)!.set(`${from.id}>${to.id}`, word.slice(eq + 1) === '1');
        }
      }),
    );
    return out;
  }

  /** What evaluateFlow says (through explainFlow) for these probes, from the objects in the datastore. */
  async evaluated(probes: readonly Probe[]): Promise<Matrix> {
    const snapshot = policySnapshot({
      networkPolicies: (await this.ds.list('NetworkPolicy')).items,
      globalNetworkPolicies: (await this.ds.list('GlobalNetworkPolicy')).items,
      kubernetesNetworkPolicies: (await this.ds.list('KubernetesNetworkPolicy')).items,
      tiers: (await this.ds.list('Tier')).items,
      profiles: (await this.ds.list('Profile')).items,
      workloadEndpoints: (await this.ds.list('WorkloadEndpoint')).items,
      networkSets: (await this.ds.list('NetworkSet')).items,
      globalNetworkSets: (await this.ds.list('GlobalNetworkSet')).items,
    });
    const out: Matrix = new Map();
    for (const probe of probes) {
      const cells = new Map<string, boolean>();
      out.set(probe, cells);
      const [protocol, a, b] = probe.split('/') as [string, string, string | undefined];
      for (const from of this.pods) {
        for (const to of this.pods) {
          if (from === to) continue;
          const verdict = explainFlow(snapshot, {
            protocol,
            srcIp: from.ip,
            dstIp: to.ip,
            ...(protocol === 'icmp'
              ? { icmpType: Number(a), icmpCode: Number(b) }
              : { srcPort: 40000, dstPort: Number(a) }),
          });
          expect(verdict.source?.name).toBe(`${from.ns}/${NODE}-k8s-${from.pod}-eth0`);
          cells.set(`${from.id}>${to.id}`, verdict.allowed);
        }
      }
    }
    return out;
  }

  /** Rows = from, columns = to, `.` reached, `X` blocked (upstream's printout). */
  render(m: Matrix): string {
    const ids = this.pods.map((p) => p.id);
    return [...m]
      .map(
        ([probe, cells]) =>
          `${probe}\n      ${ids.join(' ')}\n${ids
            .map(
              (from) =>
                `${from}   ${ids.map((to) => (from === to ? '-' : cells.get(`${from}>${to}`) ? '.' : 'X')).join('   ')}`,
            )
            .join('\n')}`,
      )
      .join('\n');
  }

  /**
   * For each probe: evaluated == expected, then measured == expected (measured once more if it
   * first differs: upstream's retry round). Probes listed in `modelOnly` are compared with the
   * model but not sent (a protocol this kernel cannot carry).
   */
  async assertReachability(
    expected: Partial<Record<Probe, Reachability>>,
    modelOnly: readonly Probe[] = [],
  ): Promise<void> {
    const probes = Object.keys(expected) as Probe[];
    const want: Matrix = new Map(probes.map((p) => [p, expected[p]!.cells]));
    const sent = probes.filter((p) => !modelOnly.includes(p));
    const wantSent: Matrix = new Map(sent.map((p) => [p, want.get(p)!]));
    const [model, first] = await Promise.all([
      this.evaluated(probes),
      sent.length > 0 ? this.measure(sent) : undefined,
    ]);
    expect(this.render(model), 'evaluateFlow').toBe(this.render(want));
    if (!first) return;
    let measured = this.render(first);
    for (let attempt = 0; attempt < 2 && measured !== this.render(wantSent); attempt++) {
      measured = this.render(await this.measure(sent));
    }
    expect(measured, 'measured').toBe(this.render(wantSent));
  }
}

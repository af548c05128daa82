/**
 * Network policy enforced by Felix on a real kernel, driven only through the datastore: the
 * upstream Kubernetes network-policy e2e model (policy-semantics §4) on one lab node — namespaces
 * x, y, z with pods a, b, c (label `pod=<name>`, namespace label `ns=<name>` through the
 * namespace profile), each serving TCP 80, TCP 81 and UDP 80. Every case writes policies, waits
 * until their chains are in the kernel, probes the full 9×9 matrix per port in parallel (1 s
 * timeout, as upstream) and asserts that it equals both the case's expectation and what the pure
 * `evaluateFlow` computes (through `policySnapshot`/`explainFlow`) from the same datastore
 * objects. Self pairs are ignored, as upstream does (a pod reaching its own address never leaves
 * its namespace).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Datastore,
  EtcdDatastore,
  type KindName,
  namespaceProfile,
  type ResourceInput,
} from '@calico-ts/datastore';
import { execInNamespace, Netlink, waitFor } from '@calico-ts/kernel';
import { createLab, type EtcdProcess, type Lab, type LabPod, labNodeIpv4, startEtcd } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  type ApplyStats,
  explainFlow,
  Felix,
  policyChainName,
  policySnapshot,
  profileChainName,
} from '../src/index.ts';
import { clearPolicies as clearPoliciesOf, tearDown } from './policy-harness.ts';

const NAMESPACES = ['x', 'y', 'z'] as const;
const PODS = ['a', 'b', 'c'] as const;
const NODE = 'node-1';
const POOL = '10.66.0.0/16';
const PROBES = ['tcp/80', 'tcp/81', 'udp/80'] as const;
/** The system interpreter directly: a version-manager shim would add a shell to every probe. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
type Probe = (typeof PROBES)[number];

interface Pod {
  /** `<ns>/<pod>`. */
  id: string;
  ns: string;
  pod: string;
  ip: string;
  lab: LabPod;
}

/** Serves TCP 80, 81 and UDP 80 (echo); or probes targets `tcp:ip:port` / `udp:ip:port` in parallel. */
const PROBE_SCRIPT = `
import selectors, socket, sys, time
def serve():
    sel = selectors.DefaultSelector()
    for port in (80, 81):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('0.0.0.0', port)); s.listen(128); s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, 'tcp')
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(('0.0.0.0', 80)); u.setblocking(False)
    sel.register(u, selectors.EVENT_READ, 'udp')
    print('serving', flush=True)
    while True:
        for key, _ in sel.select():
            try:
                if key.data == 'tcp':
                    c, _ = key.fileobj.accept(); c.close()
                else:
                    data, addr = key.fileobj.recvfrom(64); key.fileobj.sendto(data, addr)
            except OSError:
                pass
def probe(timeout, targets):
    sel = selectors.DefaultSelector()
    result = {t: 0 for t in targets}
    for t in targets:
        proto, ip, port = t.split(':')
        if proto == 'tcp':
            s = socket.socket(); s.setblocking(False)
            s.connect_ex((ip, int(port)))
            sel.register(s, selectors.EVENT_WRITE, t)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
            s.connect((ip, int(port))); s.send(b'p')
            sel.register(s, selectors.EVENT_READ, t)
    deadline = time.monotonic() + timeout
    pending = len(targets)
    while pending > 0:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(left):
            s = key.fileobj
            if key.data.startswith('tcp'):
                ok = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            else:
                try:
                    s.recv(64); ok = True
                except OSError:
                    ok = False
            result[key.data] = 1 if ok else 0
            sel.unregister(s); s.close(); pending -= 1
    print(' '.join(f'{t}={v}' for t, v in result.items()))
if sys.argv[1] == 'serve':
    serve()
else:
    probe(float(sys.argv[2]), sys.argv[3:])
`;

/** Reachability per probe: `from → to` allowed, self pairs left out. */
type Matrix = Record<Probe, Map<string, boolean>>;

interface PeerFilter {
  ns?: string;
  pod?: string;
}

const matches = (p: Pod, f: PeerFilter) =>
  (f.ns === undefined || f.ns === p.ns) && (f.pod === undefined || f.pod === p.pod);

describeWith(
  [root(), command('etcd'), command('iptables'), command('ipset'), command('python3')],
  'Felix enforces network policy (upstream e2e model: x, y, z × a, b, c)',
  () => {
    let lab: Lab;
    let etcd: EtcdProcess;
    let ds: Datastore;
    let felix: Felix;
    let scriptDir: string;
    let script: string;
    const pods: Pod[] = [];
    const prefix = runPrefix('pl');
    const foreignChain = `${prefix}-KEEP`;

    const podIface = (ns: string, pod: string) =>
      `cali${createHash('sha1').update(`${ns}.${pod}`).digest('hex').slice(0, 11)}`;

    async function addPod(ns: string, pod: string, ip: string): Promise<Pod> {
      const node = lab.nodes[0]!;
      const labPod = await lab.addPod(node.index, `${ns}${pod}`);
      const iface = podIface(ns, pod);
      await node.netlink.createVeth({ name: iface, peer: { name: 'eth0', namespace: labPod.namespace } });
      await node.netlink.setLink(iface, { up: true });
      const nl = Netlink.open(labPod.namespace);
      let mac: string;
      try {
        await nl.setLink('lo', { up: true });
        await nl.setLink('eth0', { up: true });
        await nl.addAddress('eth0', `${ip}/32`);
        await nl.replaceRoute({ dst: '169.254.1.1/32', dev: 'eth0', scope: 'link' });
        await nl.replaceRoute({ dst: '0.0.0.0/0', gateway: '169.254.1.1', dev: 'eth0' });
        mac = (await nl.getLink('eth0')).mac!;
      } finally {
        nl.close();
      }
      await ds.create('WorkloadEndpoint', {
        metadata: {
          name: `${NODE}-k8s-${pod}-eth0`,
          namespace: ns,
          labels: {
            pod,
            'projectcalico.org/namespace': ns,
            'projectcalico.org/orchestrator': 'k8s',
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
          profiles: [`kns.${ns}`],
          // Upstream's container ports, named serve-<port>-<proto>.
          ports: [
            { name: 'serve-80-tcp', protocol: 'TCP', port: 80 },
            { name: 'serve-81-tcp', protocol: 'TCP', port: 81 },
            { name: 'serve-80-udp', protocol: 'UDP', port: 80 },
          ],
        },
      });
      const p: Pod = { id: `${ns}/${pod}`, ns, pod, ip, lab: labPod };
      pods.push(p);
      return p;
    }

    async function iptablesSave(): Promise<string> {
      return (await execInNamespace(lab.nodes[0]!.namespace, 'iptables-save', ['-t', 'filter'])).stdout;
    }

    async function ipsetSave(): Promise<string> {
      return (await execInNamespace(lab.nodes[0]!.namespace, 'ipset', ['save'])).stdout;
    }

    /** Waits until these policy chains (ingress or egress) are all in the kernel, and these are gone. */
    async function waitChains(present: readonly string[], absent: readonly string[] = []): Promise<void> {
      await waitFor(
        async () => {
          const save = await iptablesSave();
          const has = (c: string) => save.includes(`:${c} `);
          return present.every(has) && !absent.some(has);
        },
        {
          timeoutMs: 15_000,
          intervalMs: 50,
          what: `chains ${present.join(', ')} in, ${absent.join(', ')} out`,
        },
      );
    }

    async function measure(): Promise<Matrix> {
      const out: Matrix = { 'tcp/80': new Map(), 'tcp/81': new Map(), 'udp/80': new Map() };
      await Promise.all(
        pods.map(async (from) => {
          const targets = pods
            .filter((to) => to !== from)
            .flatMap((to) => PROBES.map((p) => `${p.split('/')[0]}:${to.ip}:${p.split('/')[1]}`));
          const r = await execInNamespace(from.lab.namespace, PYTHON, [script, 'probe', '1.0', ...targets]);
          if (r.exitCode !== 0) throw new Error(`probe from ${from.id} failed: ${r.stderr}`);
          for (const word of r.stdout.trim().split(' ')) {
            const [target, value] = word.split('=');
            const [proto, ip, port] = target!.split(':');
            const to = pods.find((p) => p.ip === ip)!;
            out[`${proto}/${port}` as Probe].set(`${from.id}>${to.id}`, value === '1');
          }
        }),
      );
      return out;
    }

    /** What evaluateFlow says (through explainFlow), from the objects in the datastore. */
    async function evaluated(): Promise<Matrix> {
      const snapshot = policySnapshot({
        networkPolicies: (await ds.list('NetworkPolicy')).items,
        globalNetworkPolicies: (await ds.list('GlobalNetworkPolicy')).items,
        kubernetesNetworkPolicies: (await ds.list('KubernetesNetworkPolicy')).items,
        tiers: (await ds.list('Tier')).items,
        profiles: (await ds.list('Profile')).items,
        workloadEndpoints: (await ds.list('WorkloadEndpoint')).items,
      });
      const out: Matrix = { 'tcp/80': new Map(), 'tcp/81': new Map(), 'udp/80': new Map() };
      for (const probe of PROBES) {
        const [protocol, port] = probe.split('/') as [string, string];
        for (const from of pods) {
          for (const to of pods) {
            if (from === to) continue;
            const verdict = explainFlow(snapshot, {
              protocol,
              srcIp: from.ip,
              dstIp: to.ip,
              srcPort: 40000,
              dstPort: Number(port),
            });
            expect(verdict.source?.name).toBe(`${from.ns}/${NODE}-k8s-${from.pod}-eth0`);
            out[probe].set(`${from.id}>${to.id}`, verdict.allowed);
          }
        }
      }
      return out;
    }

    /** Upstream's truth table: all allowed, then `deny(from, to, probes)` closes pairs. */
    function expectation(
      ...denials: { from?: PeerFilter; to?: PeerFilter; probes?: readonly Probe[]; allow?: boolean }[]
    ): Matrix {
      const out: Matrix = { 'tcp/80': new Map(), 'tcp/81': new Map(), 'udp/80': new Map() };
      for (const probe of PROBES) {
        for (const from of pods) {
          for (const to of pods) {
            if (from === to) continue;
            let allowed = true;
            for (const d of denials) {
              if (
                (d.probes ?? PROBES).includes(probe) &&
                matches(from, d.from ?? {}) &&
                matches(to, d.to ?? {})
              )
                allowed = d.allow ?? false;
            }
            out[probe].set(`${from.id}>${to.id}`, allowed);
          }
        }
      }
      return out;
    }

    /** Rows = from, columns = to, `.` reached, `X` blocked (upstream's printout). */
    function render(m: Matrix): string {
      const ids = pods.map((p) => p.id);
      return PROBES.map(
        (probe) =>
          `${probe}\n      ${ids.join(' ')}\n${ids
            .map(
              (from) =>
                `${from}   ${ids.map((to) => (from === to ? '-' : m[probe].get(`${from}>${to}`) ? '.' : 'X')).join('   ')}`,
            )
            .join('\n')}`,
      ).join('\n');
    }

    /** Measured == expected == evaluated; measured once more if it first differs (upstream's retry round). */
    async function assertMatrix(expected: Matrix): Promise<void> {
      const model = render(await evaluated());
      expect(model, 'evaluateFlow').toBe(render(expected));
      let measured = render(await measure());
      for (let attempt = 0; attempt < 2 && measured !== render(expected); attempt++) {
        measured = render(await measure());
      }
      expect(measured, 'measured').toBe(render(expected));
    }

    const policyKinds: readonly KindName[] = [
      'NetworkPolicy',
      'GlobalNetworkPolicy',
      'KubernetesNetworkPolicy',
      'Tier',
    ];

    /** Deletes every policy and tier, and waits until no policy chain is left. */
    const clearPolicies = () => clearPoliciesOf(ds, policyKinds, iptablesSave);

    const knp = (ns: string, name: string, spec: ResourceInput<'KubernetesNetworkPolicy'>['spec']) =>
      ds.create('KubernetesNetworkPolicy', {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name, namespace: ns },
        spec,
      });

    beforeAll(async () => {
      scriptDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
      script = join(scriptDir, 'netpol-probe.py');
      writeFileSync(script, PROBE_SCRIPT);
      lab = await createLab({ prefix, nodes: 1 });
      etcd = await startEtcd();
      ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
      await ds.create('IPPool', {
        metadata: { name: 'pool' },
        spec: { cidr: POOL, ipipMode: 'Never', vxlanMode: 'Never', blockSize: 26 },
      });
      await ds.create('Node', {
        metadata: { name: NODE },
        spec: { bgp: { ipv4Address: `${labNodeIpv4(1)}/24` } },
      });
      // What kube-controllers would write for each namespace: the profile pods name, labelled.
      for (const ns of NAMESPACES) await ds.create('Profile', namespaceProfile(ns, { ns }));
      let host = 10;
      for (const ns of NAMESPACES) {
        for (const pod of PODS) {
          const p = await addPod(ns, pod, `10.66.0.${host++}`);
          await lab.spawn(p.lab, PYTHON, [script, 'serve']);
        }
      }
      felix = new Felix({ datastore: ds, nodeName: NODE, netns: lab.nodes[0]!.namespace });
      felix.start();
      await felix.whenReady();
    }, 60_000);

    afterAll(() => tearDown({ felix, ds, etcd, lab, scriptDir }), 60_000);

    it('no policy: every pod reaches every pod on every port', async () => {
      expect(felix.status()).toMatchObject({ ready: true, endpoints: 9, missingProfiles: [], errors: [] });
      await assertMatrix(expectation());
    });

    it('Kubernetes default-deny ingress in x', async () => {
      await knp('x', 'default-deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
      await waitChains([policyChainName('ingress', 'knp/x/default-deny-ingress')]);
      await assertMatrix(expectation({ to: { ns: 'x' } }));
      await clearPolicies();
    });

    it('allow from the same namespace only', async () => {
      await knp('x', 'allow-same-ns', {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: {} }] }],
      });
      await waitChains([policyChainName('ingress', 'knp/x/allow-same-ns')]);
      await assertMatrix(
        expectation({ to: { ns: 'x' } }, { from: { ns: 'x' }, to: { ns: 'x' }, allow: true }),
      );
      await clearPolicies();
    });

    it('allow from namespaceSelector × podSelector (y/a only) to x/a', async () => {
      await knp('x', 'allow-y-a', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'a' } } },
            ],
          },
        ],
      });
      await waitChains([policyChainName('ingress', 'knp/x/allow-y-a')]);
      await assertMatrix(
        expectation(
          { to: { ns: 'x', pod: 'a' } },
          { from: { ns: 'y', pod: 'a' }, to: { ns: 'x', pod: 'a' }, allow: true },
        ),
      );
      await clearPolicies();
    });

    it('allow only from namespace y on TCP 81 to x/a (ports and protocols)', async () => {
      await knp('x', 'allow-y-81', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }],
            ports: [{ protocol: 'TCP', port: 81 }],
          },
        ],
      });
      await waitChains([policyChainName('ingress', 'knp/x/allow-y-81')]);
      await assertMatrix(
        expectation(
          { to: { ns: 'x', pod: 'a' } },
          { from: { ns: 'y' }, to: { ns: 'x', pod: 'a' }, probes: ['tcp/81'], allow: true },
        ),
      );
      await clearPolicies();
    });

    it('allow ingress to x on one named port (serve-81-tcp): a hash:ip,port set', async () => {
      await knp('x', 'allow-named-81', {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ ports: [{ protocol: 'TCP', port: 'serve-81-tcp' }] }],
      });
      await waitChains([policyChainName('ingress', 'knp/x/allow-named-81')]);
      expect(await ipsetSave()).toMatch(/^create cali40n:\S+ hash:ip,port /m);
      await assertMatrix(expectation({ to: { ns: 'x' }, probes: ['tcp/80', 'udp/80'] }));
      await clearPolicies();
    });

    it('egress deny-all in x', async () => {
      await knp('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] });
      await waitChains([policyChainName('egress', 'knp/x/deny-egress')]);
      await assertMatrix(expectation({ from: { ns: 'x' } }));
      await clearPolicies();
    });

    it('a Calico GlobalNetworkPolicy with namespaceSelector: y only from z', async () => {
      await ds.create('GlobalNetworkPolicy', {
        metadata: { name: 'y-from-z' },
        spec: {
          namespaceSelector: "ns == 'y'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { namespaceSelector: "ns == 'z'" } }],
        },
      });
      await waitChains([policyChainName('ingress', 'gnp/y-from-z')]);
      await assertMatrix(
        expectation({ to: { ns: 'y' } }, { from: { ns: 'z' }, to: { ns: 'y' }, allow: true }),
      );
      await clearPolicies();
    });

    it('a Deny ordered before an Allow wins, whatever the names', async () => {
      await ds.create('NetworkPolicy', {
        metadata: { name: 'z-deny-b', namespace: 'x' },
        spec: {
          order: 10,
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Deny', source: { selector: "pod == 'b'", namespaceSelector: 'all()' } }],
        },
      });
      await ds.create('NetworkPolicy', {
        metadata: { name: 'a-allow-all', namespace: 'x' },
        spec: { order: 20, selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Allow' }] },
      });
      await waitChains([
        policyChainName('ingress', 'np/x/z-deny-b'),
        policyChainName('ingress', 'np/x/a-allow-all'),
      ]);
      await assertMatrix(expectation({ from: { pod: 'b' }, to: { ns: 'x' } }));
    });

    it('rules we do not own survive a policy apply', async () => {
      const node = lab.nodes[0]!.namespace;
      const run = async (args: string[]) => {
        const r = await execInNamespace(node, 'iptables', args);
        expect(r.exitCode, r.stderr).toBe(0);
      };
      await run(['-t', 'filter', '-N', foreignChain]);
      await run(['-t', 'filter', '-A', foreignChain, '-s', '203.0.113.7/32', '-j', 'DROP']);
      await run(['-t', 'filter', '-A', 'FORWARD', '-s', '203.0.113.7/32', '-j', foreignChain]);
      await knp('z', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
      await waitChains([policyChainName('ingress', 'knp/z/deny-ingress')]);
      await assertMatrix(expectation({ from: { pod: 'b' }, to: { ns: 'x' } }, { to: { ns: 'z' } }));
      const save = await iptablesSave();
      expect(save).toContain(`:${foreignChain} `);
      expect(save).toContain(`-A ${foreignChain} -s 203.0.113.7/32 -j DROP`);
      expect(save).toContain(`-A FORWARD -s 203.0.113.7/32 -j ${foreignChain}`);
      await clearPolicies();
      expect(await iptablesSave()).toContain(`-A FORWARD -s 203.0.113.7/32 -j ${foreignChain}`);
    });

    it('a tier that passes: y may reach x past the security tier, then default-tier policy decides', async () => {
      await ds.create('Tier', { metadata: { name: 'security' }, spec: { order: 100 } });
      await ds.create('GlobalNetworkPolicy', {
        metadata: { name: 'security.guard-x' },
        spec: {
          tier: 'security',
          order: 10,
          selector: "projectcalico.org/namespace == 'x'",
          types: ['Ingress'],
          ingress: [{ action: 'Pass', source: { namespaceSelector: "ns == 'y'" } }, { action: 'Deny' }],
        },
      });
      // In the default tier only x/a is selected: it accepts pod b from any namespace.
      await knp('x', 'a-from-b', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'b' } } }] }],
      });
      await waitChains([
        policyChainName('ingress', 'gnp/security.guard-x'),
        policyChainName('ingress', 'knp/x/a-from-b'),
      ]);
      await assertMatrix(
        expectation(
          { to: { ns: 'x' } },
          { from: { ns: 'y' }, to: { ns: 'x' }, allow: true },
          { from: { ns: 'y' }, to: { ns: 'x', pod: 'a' } },
          { from: { ns: 'y', pod: 'b' }, to: { ns: 'x', pod: 'a' }, allow: true },
        ),
      );
    });

    it('a Felix restart over a programmed node writes no iptables or ipset change', async () => {
      const iptablesBefore = await iptablesSave();
      const ipsetsBefore = await ipsetSave();
      expect(ipsetsBefore).toMatch(/create cali40s:/);
      await felix.stop();
      felix = new Felix({ datastore: ds, nodeName: NODE, netns: lab.nodes[0]!.namespace });
      let first: ApplyStats | undefined;
      felix.once('applied', (stats) => {
        first = stats;
      });
      felix.start();
      await felix.whenReady();
      expect(felix.status().errors).toEqual([]);
      expect(first).toMatchObject({ iptablesLines: 0, errors: [] });
      const strip = (s: string) => s.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '');
      expect(strip(await iptablesSave())).toBe(strip(iptablesBefore));
      expect(await ipsetSave()).toBe(ipsetsBefore);
    });

    it('a policy deleted restores the traffic', async () => {
      await clearPolicies();
      await assertMatrix(expectation());
      // And once more with a fresh deny-all in x, then its deletion.
      await knp('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
      await waitChains([
        policyChainName('ingress', 'knp/x/deny-all'),
        policyChainName('egress', 'knp/x/deny-all'),
      ]);
      await assertMatrix(expectation({ to: { ns: 'x' } }, { from: { ns: 'x' } }));
      await ds.delete('KubernetesNetworkPolicy', 'deny-all', 'x');
      await waitChains([], [policyChainName('ingress', 'knp/x/deny-all')]);
      await assertMatrix(expectation());
    });

    it('a pod entering a selector is an ipset add: no iptables line is written', async () => {
      await knp('x', 'a-from-updated', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }],
      });
      await waitChains([policyChainName('ingress', 'knp/x/a-from-updated')]);
      await assertMatrix(expectation({ to: { ns: 'x', pod: 'a' } }));
      const stats: ApplyStats[] = [];
      const onApplied = (s: ApplyStats) => stats.push(s);
      felix.on('applied', onApplied);
      try {
        const xb = pods.find((p) => p.id === 'x/b')!;
        const wep = await ds.get('WorkloadEndpoint', `${NODE}-k8s-b-eth0`, 'x');
        await ds.update('WorkloadEndpoint', {
          ...wep,
          metadata: { ...wep.metadata, labels: { ...wep.metadata.labels, pod2: 'updated' } },
        });
        await waitFor(
          async () =>
            new RegExp(`^add cali40s:\\S+ ${xb.ip.replaceAll('.', '\\.')}$`, 'm').test(await ipsetSave()),
          {
            timeoutMs: 15_000,
            intervalMs: 50,
            what: 'x/b in the selector set',
          },
        );
        await assertMatrix(
          expectation(
            { to: { ns: 'x', pod: 'a' } },
            { from: { ns: 'x', pod: 'b' }, to: { ns: 'x', pod: 'a' }, allow: true },
          ),
        );
      } finally {
        felix.off('applied', onApplied);
      }
      expect(stats.length).toBeGreaterThan(0);
      expect(stats.map((s) => s.iptablesLines)).toEqual(stats.map(() => 0));
      await clearPolicies();
    });

    it('a pod whose namespace profile is missing gets no traffic, as in Calico', async () => {
      await ds.delete('Profile', 'kns.z');
      await waitChains([], [profileChainName('ingress', 'kns.z')]);
      expect(felix.status().missingProfiles).toEqual(['kns.z']);
      await assertMatrix(expectation({ to: { ns: 'z' } }, { from: { ns: 'z' } }));
      await ds.create('Profile', namespaceProfile('z', { ns: 'z' }));
      await waitChains([profileChainName('ingress', 'kns.z')]);
      expect(felix.status().missingProfiles).toEqual([]);
      await assertMatrix(expectation());
    });
  },
);

/**
 * Host endpoint policy enforced by Felix on a real kernel, driven only through the datastore: a
 * lab node whose underlay interface eth0 is a HostEndpoint, probed from the underlay switch
 * (198.51.100.1) — connections to the node itself (INPUT), and connections forwarded through the
 * node to a pod behind it (FORWARD). Each case compares what the probes measure with the case's
 * expectation and with evaluateHostFlow computed from the same datastore objects.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Datastore, EtcdDatastore, namespaceProfile, type ResourceInput } from '@calico-ts/datastore';
import { execInNamespace, type NetNamespace, waitFor } from '@calico-ts/kernel';
import {
  createLab,
  type EtcdProcess,
  LAB_GATEWAY_V4,
  type Lab,
  type LabPod,
  labNodeIpv4,
  startEtcd,
} from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  defaultFelixConfig,
  evaluateHostEndpointStage,
  evaluateHostFlow,
  Felix,
  type HostEndpointPeer,
  policySnapshot,
} from '../src/index.ts';
import { clearPolicies as clearPoliciesOf, tearDown } from './policy-harness.ts';
import { PYTHON, writeTcpProbe } from './tcp-probe.ts';

const NODE = 'node-1';
const POOL = '10.67.0.0/16';
const POD_IP = '10.67.0.10';
const NODE_IP = labNodeIpv4(1);
/** Ports the node serves: failsafe 2379 (etcd) and 179 (BGP), plus ordinary ones. */
const NODE_PORTS = [80, 81, 179, 2379, 9000] as const;
/** Ports the pod serves. */
const POD_PORTS = [80, 81] as const;

type Reach = Record<string, boolean>;

describeWith(
  [root(), command('etcd'), command('iptables'), command('ipset'), command('python3')],
  'Felix enforces host endpoint policy (failsafe, preDNAT, applyOnForward, doNotTrack)',
  () => {
    let lab: Lab;
    let etcd: EtcdProcess;
    let ds: Datastore;
    let felix: Felix;
    let scriptDir: string;
    let script: string;
    let pod: LabPod;
    const prefix = runPrefix('he');
    const dnatChain = `${prefix}-DNAT`;
    const nodeNs = (): NetNamespace => lab.nodes[0]!.namespace;

    const save = async (table: string) =>
      (await execInNamespace(nodeNs(), 'iptables-save', ['-t', table])).stdout;

    const targets = () => [
      ...NODE_PORTS.map((p) => `${NODE_IP}:${p}`),
      `${NODE_IP}:8080`,
      ...POD_PORTS.map((p) => `${POD_IP}:${p}`),
    ];

    async function measure(): Promise<Reach> {
      const r = await execInNamespace(lab.underlay.namespace, PYTHON, [script, 'probe', '1.0', ...targets()]);
      if (r.exitCode !== 0) throw new Error(`probe failed: ${r.stderr}`);
      const out: Reach = {};
      for (const word of r.stdout.trim().split(' ')) {
        const [target, value] = word.split('=');
        out[target!] = value === '1';
      }
      return out;
    }

    /**
     * What evaluateHostFlow says from the datastore's objects: to the node (INPUT through eth0;
     * 8080 is DNATed to 80 after preDNAT policy), or forwarded to the pod (in through eth0).
     */
    async function evaluated(): Promise<Reach> {
      const snapshot = policySnapshot({
        globalNetworkPolicies: (await ds.list('GlobalNetworkPolicy')).items,
        profiles: (await ds.list('Profile')).items,
        workloadEndpoints: (await ds.list('WorkloadEndpoint')).items,
      });
      const heps = (await ds.list('HostEndpoint')).items;
      const hep = heps.find((h) => h.spec.interfaceName === 'eth0');
      const peer: HostEndpointPeer | undefined = hep && {
        name: hep.metadata.name,
        resolved: snapshot.catalog.resolveHostEndpoint({
          namespace: undefined,
          labels: hep.metadata.labels ?? {},
          profiles: hep.spec.profiles ?? [],
        }),
      };
      const config = defaultFelixConfig();
      const failsafe = {
        inbound: config.failsafeInboundHostPorts,
        outbound: config.failsafeOutboundHostPorts,
      };
      const out: Reach = {};
      for (const target of targets()) {
        const [ip, port] = target.split(':') as [string, string];
        const packet = {
          protocol: 'TCP',
          srcIp: LAB_GATEWAY_V4,
          dstIp: ip,
          srcPort: 40000,
          dstPort: Number(port),
        };
        if (ip === NODE_IP) {
          // Untracked and preDNAT policy see the packet before the DNAT (8080 -> 80), normal
          // policy after it; an untracked or preDNAT accept skips normal policy (accept mark).
          const before = evaluateHostFlow({
            path: 'input',
            in: peer,
            packet,
            ipsets: snapshot.index,
            failsafe,
          });
          const early = before.stages.find(
            (s) =>
              s.stage !== 'normal' &&
              (s.result === 'drop' || (s.result === 'accept' && s.decision?.by !== 'failsafe')),
          );
          const afterDnat = Number(port) === 8080 ? { ...packet, dstPort: 80 } : packet;
          out[target] = early
            ? early.result === 'accept'
            : !peer ||
              evaluateHostEndpointStage('normal', 'ingress', peer, afterDnat, snapshot.index, failsafe)
                .result === 'accept';
        } else {
          // Workload policy of the pod: its profile allows (no policy selects it in these cases).
          out[target] = evaluateHostFlow({
            path: 'forward',
            in: peer,
            packet,
            ipsets: snapshot.index,
            failsafe,
          }).allowed;
        }
      }
      return out;
    }

    /** Measured (until it settles, with a deadline) == expected == evaluated. */
    async function assertReach(expected: Reach): Promise<void> {
      expect(await evaluated(), 'evaluateHostFlow').toEqual(expected);
      let measured: Reach = {};
      await waitFor(
        async () => {
          measured = await measure();
          return JSON.stringify(measured) === JSON.stringify(expected);
        },
        { timeoutMs: 15_000, intervalMs: 200, what: 'reachability as expected' },
      ).catch(() => undefined);
      expect(measured, 'measured').toEqual(expected);
    }

    const reach = (open: readonly string[]): Reach =>
      Object.fromEntries(targets().map((t) => [t, open.includes(t)]));
    const node = (p: number) => `${NODE_IP}:${p}`;
    const toPod = (p: number) => `${POD_IP}:${p}`;

    const gnp = (name: string, spec: ResourceInput<'GlobalNetworkPolicy'>['spec']) =>
      ds.create('GlobalNetworkPolicy', { metadata: { name }, spec });

    const clearPolicies = () => clearPoliciesOf(ds, ['GlobalNetworkPolicy'], () => save('filter'));

    beforeAll(async () => {
      scriptDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
      script = writeTcpProbe(scriptDir);
      lab = await createLab({ prefix, nodes: 1 });
      etcd = await startEtcd();
      ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
      await ds.create('IPPool', {
        metadata: { name: 'pool' },
        spec: { cidr: POOL, ipipMode: 'Never', vxlanMode: 'Never', blockSize: 26 },
      });
      await ds.create('Node', { metadata: { name: NODE }, spec: { bgp: { ipv4Address: `${NODE_IP}/24` } } });
      await ds.create('Profile', namespaceProfile('web', { ns: 'web' }));

      // A pod behind the node; the switch routes its address to the node.
      const n = lab.nodes[0]!;
      pod = await lab.addPod(n.index, 'web');
      const iface = `cali${createHash('sha1').update(prefix).digest('hex').slice(0, 11)}`;
      const { mac } = await lab.wirePod(pod, { iface, ipv4: POD_IP });
      await lab.underlay.netlink.replaceRoute({
        dst: `${POD_IP}/32`,
        gateway: NODE_IP,
        dev: lab.underlay.bridge,
      });
      await ds.create('WorkloadEndpoint', {
        metadata: {
          name: `${NODE}-k8s-web-eth0`,
          namespace: 'web',
          labels: { 'projectcalico.org/namespace': 'web', 'projectcalico.org/orchestrator': 'k8s' },
        },
        spec: {
          node: NODE,
          orchestrator: 'k8s',
          pod: 'web',
          endpoint: 'eth0',
          interfaceName: iface,
          mac,
          ipNetworks: [`${POD_IP}/32`],
          profiles: ['kns.web'],
        },
      });
      await lab.spawn(n, PYTHON, [script, 'serve', ...NODE_PORTS.map(String)]);
      await lab.spawn(pod, PYTHON, [script, 'serve', ...POD_PORTS.map(String)]);
      // A service-like DNAT on the node: 8080 is served by port 80 (a rule Felix does not own).
      const ipt = (args: string[]) => execInNamespace(nodeNs(), 'iptables', ['-w', '-t', 'nat', ...args]);
      await ipt(['-N', dnatChain]);
      await ipt(['-A', dnatChain, '-p', 'tcp', '--dport', '8080', '-j', 'REDIRECT', '--to-ports', '80']);
      await ipt(['-A', 'PREROUTING', '-j', dnatChain]);

      felix = new Felix({ datastore: ds, nodeName: NODE, netns: nodeNs() });
      felix.start();
      await felix.whenReady();
    }, 60_000);

    afterAll(() => tearDown({ felix, ds, etcd, lab, scriptDir }), 60_000);

    it('without a host endpoint everything is reachable', async () => {
      await assertReach(reach(targets()));
    });

    it('a host endpoint with no policy denies traffic to the node except failsafe tcp/2379 and tcp/179; forwarded traffic is untouched', async () => {
      await ds.create('HostEndpoint', {
        metadata: { name: `${NODE}-eth0`, labels: { role: 'uplink' } },
        spec: { node: NODE, interfaceName: 'eth0', expectedIPs: [NODE_IP] },
      });
      await waitFor(async () => (await save('filter')).includes(':cali-fh-eth0 '), {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: 'cali-fh-eth0 in filter',
      });
      expect(await save('filter')).toMatch(/-A cali-from-host-endpoint -i eth0 .*-g cali-fh-eth0/);
      await assertReach(reach([node(179), node(2379), toPod(80), toPod(81)]));
    });

    it('a GlobalNetworkPolicy on the host endpoint permits tcp/80 to the node and leaves the rest denied', async () => {
      await gnp('uplink-web', {
        selector: "role == 'uplink'",
        types: ['Ingress', 'Egress'],
        ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [80] } }],
        egress: [{ action: 'Allow' }],
      });
      // 8080 is redirected to 80 before the filter table: allowed too.
      await assertReach(reach([node(80), node(8080), node(179), node(2379), toPod(80), toPod(81)]));
    });

    it('preDNAT policy drops tcp/8080 before it is DNATed to the allowed port 80', async () => {
      await gnp('uplink-prednat', {
        selector: "role == 'uplink'",
        preDNAT: true,
        applyOnForward: true,
        types: ['Ingress'],
        ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [8080] } }],
      });
      await waitFor(
        async () => /-A cali-fh-eth0 .*-j cali-pi-gnp\/uplink-prednat/.test(await save('mangle')),
        {
          timeoutMs: 15_000,
          intervalMs: 50,
          what: 'preDNAT chain in mangle',
        },
      );
      await assertReach(reach([node(80), node(179), node(2379), toPod(80), toPod(81)]));
      await clearPolicies();
    });

    it('applyOnForward policy governs traffic forwarded through the host endpoint to a pod', async () => {
      await gnp('uplink-forward', {
        selector: "role == 'uplink'",
        applyOnForward: true,
        types: ['Ingress'],
        ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [81] } }],
      });
      await waitFor(
        async () => /-A cali-fhfw-eth0 .*-j cali-pi-gnp\/uplink-forward/.test(await save('filter')),
        {
          timeoutMs: 15_000,
          intervalMs: 50,
          what: 'forward chain jumps to the policy',
        },
      );
      // Forwarded tcp/80 to the pod now ends the tier undecided: dropped. The node itself allows 81.
      await assertReach(reach([node(81), node(179), node(2379), toPod(81)]));
      await clearPolicies();
    });

    it('doNotTrack policy lands in raw and admits untracked tcp/9000 past the deny-all host endpoint', async () => {
      await gnp('uplink-untracked', {
        selector: "role == 'uplink'",
        doNotTrack: true,
        applyOnForward: true,
        types: ['Ingress', 'Egress'],
        ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [9000] } }],
        egress: [{ action: 'Allow', protocol: 'TCP', source: { ports: [9000] } }],
      });
      await waitFor(async () => /-A cali-fh-eth0 .*-j NOTRACK/.test(await save('raw')), {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: 'untracked chain in raw',
      });
      const raw = await save('raw');
      expect(raw).toMatch(/-A cali-fh-eth0 .*-j cali-pi-gnp\/uplink-untracked/);
      expect(raw).toMatch(/-A cali-th-eth0 .*-j cali-po-gnp\/uplink-untracked/);
      expect(raw).toMatch(/-A cali-from-host-endpoint -i eth0 .*-g cali-fh-eth0/);
      await assertReach(reach([node(179), node(2379), node(9000), toPod(80), toPod(81)]));
      await clearPolicies();
    });

    it('deleting the host endpoint restores every connection and removes its chains', async () => {
      await ds.delete('HostEndpoint', `${NODE}-eth0`);
      await waitFor(async () => !(await save('filter')).includes(':cali-fh-eth0 '), {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: 'cali-fh-eth0 removed',
      });
      await assertReach(reach(targets()));
      // Our DNAT chain, which Felix does not own, survived every apply.
      expect(await save('nat')).toContain(`:${dnatChain} `);
    });
  },
);

/**
 * `calico connectivity test`: a self-test of a running lab cluster, tried for real with test pods
 * it adds and removes: the underlay between nodes, BGP's port between peers, pod↔pod on one node
 * and across nodes, pod→host, pod→outside when the pool masquerades (a host on the underlay this
 * command adds, with no route to any pod), full-size packets with DF set (MTU black holes), and
 * default-deny enforcement (a policy it applies and removes). Each failure names its likely cause.
 *
 * A check that needs a working underlay between two nodes is skipped for nodes whose underlay
 * check failed, and the MTU check only tries pairs that answered small packets: one fault fails
 * the check that matches it, not every check behind it.
 */
import { randomBytes } from 'node:crypto';
import type { Datastore } from '@calico-ts/datastore';
import { connectTcp, NetNamespace, waitFor } from '@calico-ts/kernel';
import { addOutsideHost, type OutsideHost, probeFrom } from '@calico-ts/lab';
import { Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import type { ClusterNodeRecord, ClusterPodRecord, ClusterRecord } from '../cluster-context.ts';
import type { CommandContext } from '../command-context.ts';
import { callSupervisor, nameOption, runningCluster } from './cluster-client.ts';
import { inNamespace, linkMtu, routeFor } from './trace.ts';
import { cidrContains } from './trace-analysis.ts';

export type CheckName =
  | 'underlay'
  | 'bgp'
  | 'pod-pod-same-node'
  | 'pod-pod-cross-node'
  | 'pod-host'
  | 'pod-outside'
  | 'mtu'
  | 'default-deny';

export interface CheckFailure {
  what: string;
  cause: string;
}

export interface CheckResult {
  check: CheckName;
  status: 'pass' | 'fail' | 'skip';
  /** What was tried (passes) or why it was skipped. */
  detail: string;
  failures: CheckFailure[];
}

export interface ConnectivityReport {
  cluster: string;
  passed: boolean;
  checks: CheckResult[];
  durationMs: number;
}

const TEST_NAMESPACE = 'calico-conntest';
const SERVE_PORT = 8080;
/** A check's probe: a TCP connect may lose its SYN once, so up to two tries in this window. */
const ONE_TRY_MS = 1000;
/** Encapsulation overhead on the pod MTU (Calico's VXLAN 50, IPIP 20). */
const OVERHEAD: Readonly<Record<string, number>> = { vxlan: 50, ipip: 20, none: 0 };

/** Pass, fail or skip from what was tried: failures fail it, nothing tried skips it. */
export function checkResult(
  check: CheckName,
  tried: number,
  failures: CheckFailure[],
  detail: string,
  skipped: string[] = [],
): CheckResult {
  const skippedNote = skipped.length > 0 ? `; skipped ${skipped.join(', ')}` : '';
  if (failures.length > 0)
    return { check, status: 'fail', detail: `${failures.length}/${tried} failed${skippedNote}`, failures };
  if (tried === 0) return { check, status: 'skip', detail: `${detail}${skippedNote}`, failures };
  return { check, status: 'pass', detail: `${detail}${skippedNote}`, failures };
}

/** The report as a person reads it: one line per check, then each failure with its cause. */
export function renderConnectivity(r: ConnectivityReport): string {
  const lines = [`connectivity test of cluster ${r.cluster} (${(r.durationMs / 1000).toFixed(1)} s)`];
  const mark = { pass: '✓', fail: '✗', skip: '-' } as const;
  for (const c of r.checks) {
    lines.push(`  ${mark[c.status]} ${c.check.padEnd(20)} ${c.status.padEnd(5)} ${c.detail}`);
    for (const f of c.failures) lines.push(`      ✗ ${f.what}\n        likely cause: ${f.cause}`);
  }
  const failed = r.checks.filter((c) => c.status === 'fail').map((c) => c.check);
  lines.push(failed.length === 0 ? 'all checks passed' : `FAILED: ${failed.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

async function ping(netns: string, ip: string, extra: string[] = []): Promise<{ ok: boolean; out: string }> {
  return inNamespace(netns, 'ping', ['-c', '1', '-W', '1', ...extra, ip]);
}

/** ping, tried again until it answers or `forMs` runs out (pods just added, routes just learned). */
async function pingUntil(
  netns: string,
  ip: string,
  forMs: number,
  extra: string[] = [],
): Promise<{ ok: boolean; out: string }> {
  const deadline = Date.now() + forMs;
  for (;;) {
    const r = await ping(netns, ip, extra);
    if (r.ok || Date.now() >= deadline) return r;
  }
}

async function tcpUntil(netns: string, ip: string, forMs: number): Promise<boolean> {
  const deadline = Date.now() + forMs;
  for (;;) {
    if (await probeFrom(netns, ip, { protocol: 'tcp', port: SERVE_PORT }, 1000)) return true;
    if (Date.now() >= deadline) return false;
  }
}

async function linkState(netns: string, dev: string): Promise<{ up: boolean; mtu: number | undefined }> {
  const r = await inNamespace(netns, 'ip', ['-j', 'link', 'show', 'dev', dev]);
  if (!r.ok) return { up: false, mtu: undefined };
  const [link] = JSON.parse(r.out) as { flags?: string[]; operstate?: string; mtu?: number }[];
  return { up: link?.operstate === 'UP' || (link?.flags ?? []).includes('LOWER_UP'), mtu: link?.mtu };
}

const short = (record: ClusterRecord, node: string): string =>
  node.startsWith(`${record.name}-`) ? node.slice(record.name.length + 1) : node;

/** Why a pod on one node did not reach a pod on another, from the source node's route. */
async function crossNodeCause(
  record: ClusterRecord,
  from: ClusterPodRecord,
  to: ClusterPodRecord,
): Promise<string> {
  const route = await routeFor(from.node, to.ip);
  if (!route) return `${short(record, from.node)} has no route at all to ${to.ip}`;
  if (route.dst === 'default' || route.type !== 'unicast')
    return `${short(record, from.node)} has no route to ${to.ip}'s block (${route.type === 'unicast' ? 'only the default route' : `${route.type} ${route.dst}`}): the route from ${short(record, to.node)} is missing (BGP did not install it, or it was deleted)`;
  const back = await routeFor(to.node, from.ip);
  if (!back || back.dst === 'default' || back.type !== 'unicast')
    return `the answer cannot come back: ${short(record, to.node)} has no route to ${from.ip}'s block (${back ? (back.type === 'unicast' ? 'only the default route' : `${back.type} ${back.dst}`) : 'none'}): the route from ${short(record, from.node)} is missing (BGP did not install it, or it was deleted)`;
  const dest = await routeFor(to.node, to.ip);
  if (!dest?.dev?.startsWith('cali'))
    return `${short(record, to.node)} has no /32 route to its pod ${to.ip} (Felix did not program the workload)`;
  return `routes are in place (${route.dst} via ${route.gateway ?? route.dev}); packets are lost on the way or dropped by policy (try calico trace --from ${from.namespace}/${from.name} --to ${to.namespace}/${to.name} --port tcp/${SERVE_PORT})`;
}

interface TestPods {
  /** One pod per node, in node order, then the second pod on the first node. */
  perNode: Map<string, ClusterPodRecord>;
  second: ClusterPodRecord | undefined;
  all: ClusterPodRecord[];
}

export interface ConnectivityOptions {
  /** How long a pod just added may take to be reachable (default 8 s). */
  settleMs?: number;
  /** Called with each check's name before it runs (and awaited). */
  progress?: (line: string) => void | Promise<void>;
}

/** Runs every check against a running lab cluster; cleans up what it added, also on failure. */
export async function connectivityTest(
  record: ClusterRecord,
  datastore: Datastore,
  options: ConnectivityOptions = {},
): Promise<ConnectivityReport> {
  const started = Date.now();
  const settleMs = options.settleMs ?? 8000;
  const progress = options.progress ?? (() => undefined);
  const run = randomBytes(2).toString('hex');
  const nodes = record.nodes;
  const checks: CheckResult[] = [];
  const added: ClusterPodRecord[] = [];
  let outside: OutsideHost | undefined;
  let policyName: string | undefined;

  const cleanup = async () => {
    const errors: string[] = [];
    if (policyName)
      await datastore.delete('NetworkPolicy', policyName, TEST_NAMESPACE).catch((e: Error) => {
        if (!/not ?found/i.test(e.message)) errors.push(`policy ${policyName}: ${e.message}`);
      });
    policyName = undefined;
    for (const p of added.splice(0))
      await callSupervisor(record, { op: 'pod-del', namespace: p.namespace, name: p.name }).catch(
        (e: Error) => errors.push(`pod ${p.namespace}/${p.name}: ${e.message}`),
      );
    await outside?.remove().catch((e: Error) => errors.push(`outside host: ${e.message}`));
    outside = undefined;
    if (errors.length > 0) throw new CliError(`connectivity test: cleaning up failed: ${errors.join('; ')}`);
  };
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // 1. Underlay: each node's uplink is up and reaches every other node.
    await progress('underlay');
    const badNodes = new Set<string>();
    {
      const failures: CheckFailure[] = [];
      const down = new Set<string>();
      const links = await Promise.all(nodes.map((n) => linkState(n.name, 'eth0')));
      for (const [i, n] of nodes.entries()) {
        if (!links[i]!.up) {
          down.add(n.name);
          failures.push({
            what: `${short(record, n.name)}: eth0 is down`,
            cause: `the link of ${short(record, n.name)} to the underlay is down (ip link set eth0 up)`,
          });
        }
      }
      const unreachable = new Map<string, number>();
      const pairs = nodes.flatMap((a) =>
        nodes.filter((b) => b !== a && !down.has(a.name) && !down.has(b.name)).map((b) => [a, b] as const),
      );
      const results = await Promise.all(pairs.map(([a, b]) => ping(a.name, b.address)));
      pairs.forEach(([a, b], i) => {
        if (results[i]!.ok) return;
        unreachable.set(b.name, (unreachable.get(b.name) ?? 0) + 1);
        failures.push({
          what: `${short(record, a.name)} → ${short(record, b.name)} (${b.address}): no answer on the underlay`,
          cause: `the underlay between ${short(record, a.name)} and ${short(record, b.name)} drops packets (a link, the switch, or a firewall on a node)`,
        });
      });
      for (const n of down) badNodes.add(n);
      for (const [n, count] of unreachable)
        if (count >= nodes.length - 1 - down.size && count > 0) badNodes.add(n);
      checks.push(
        checkResult(
          'underlay',
          nodes.length + pairs.length,
          failures,
          `${nodes.length} uplinks up, ${pairs.length} node pairs answer`,
        ),
      );
    }
    const usable = (n: string) => !badNodes.has(n);
    const skippedFor = (names: string[]) =>
      names.filter((n) => !usable(n)).map((n) => `${short(record, n)} (underlay failed)`);

    // 2. BGP: every peer's port 179 answers from every other node.
    await progress('bgp');
    if (record.encapsulation === 'vxlan') {
      checks.push({
        check: 'bgp',
        status: 'skip',
        detail: 'encapsulation vxlan: the nodes do not peer',
        failures: [],
      });
    } else {
      const failures: CheckFailure[] = [];
      const pairs = nodes.flatMap((a) =>
        nodes.filter((b) => b !== a && usable(a.name) && usable(b.name)).map((b) => [a, b] as const),
      );
      await Promise.all(
        pairs.map(async ([a, b]) => {
          const ns = NetNamespace.open(a.name);
          try {
            const s = await connectTcp({ host: b.address, port: 179, namespace: ns, timeoutMs: 1500 });
            s.destroy();
          } catch (err) {
            const refused = /ECONNREFUSED|refused/i.test(String(err));
            failures.push({
              what: `${short(record, a.name)} → ${short(record, b.name)} ${b.address}:179 ${refused ? 'refused' : 'timed out'}`,
              cause: refused
                ? `nothing listens on TCP 179 on ${short(record, b.name)}: its BGP agent is not running`
                : `TCP 179 to ${short(record, b.name)} is dropped: a firewall rule on ${short(record, b.name)} (or on the path) blocks BGP`,
            });
          } finally {
            ns.close();
          }
        }),
      );
      checks.push(
        checkResult(
          'bgp',
          pairs.length,
          failures,
          `${pairs.length} peer pairs reach port 179`,
          skippedFor(nodes.map((n) => n.name)),
        ),
      );
    }

    // Test pods: one per node, a second on the first node.
    await progress('adding test pods');
    try {
      await callSupervisor(record, { op: 'namespace-add', name: TEST_NAMESPACE, labels: {} });
    } catch (err) {
      if (!/already exists/.test((err as Error).message)) throw err;
    }
    const addPod = async (node: ClusterNodeRecord, name: string, labels: Record<string, string> = {}) => {
      const p = (await callSupervisor(record, {
        op: 'pod-add',
        node: node.name,
        namespace: TEST_NAMESPACE,
        name,
        labels,
        serve: `tcp:${SERVE_PORT}`,
      })) as ClusterPodRecord;
      added.push(p);
      return p;
    };
    const pods: TestPods = { perNode: new Map(), second: undefined, all: [] };
    // Pods only on nodes whose underlay works: a node cut off from etcd cannot add one.
    const podNodes = nodes.filter((n) => usable(n.name));
    const first = podNodes[0];
    if (!first)
      throw new CliError(`cluster ${record.name}: no node passed the underlay check, so no test pod can run`);
    const settled = await Promise.allSettled([
      ...podNodes.map((n) => addPod(n, `ct-${run}-${short(record, n.name)}`)),
      addPod(first, `ct-${run}-${short(record, first.name)}b`),
      addPod(first, `ct-${run}-deny`, { 'conntest-role': `deny-${run}` }),
    ]);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const made = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    for (const [i, n] of podNodes.entries()) pods.perNode.set(n.name, made[i]!);
    pods.second = made[podNodes.length];
    const denyTarget = made[podNodes.length + 1]!;
    pods.all = made.slice(0, podNodes.length + 1);

    // New pods need Felix's routes and chains, and a new block's route over BGP: wait (bounded)
    // until every pair answers once, so the checks below each try once and see only faults.
    await progress('waiting for the test pods');
    {
      const pairs = made.flatMap((x) => made.filter((y) => y !== x).map((y) => [x, y] as const));
      // (the default-deny target included: it must answer before its policy is applied)
      await Promise.all(pairs.map(([x, y]) => tcpUntil(x.netns, y.ip, settleMs)));
    }

    // 3. Pod ↔ pod on one node.
    await progress('pod-pod-same-node');
    {
      const a = pods.perNode.get(first.name)!;
      const b = pods.second!;
      const failures: CheckFailure[] = [];
      for (const [x, y] of [
        [a, b],
        [b, a],
      ] as const) {
        if (!(await tcpUntil(x.netns, y.ip, ONE_TRY_MS))) {
          const dest = await routeFor(y.node, y.ip);
          failures.push({
            what: `${x.name} → ${y.name} on ${short(record, y.node)} (tcp/${SERVE_PORT})`,
            cause: dest?.dev?.startsWith('cali')
              ? `the /32 route is in place (${dest.dev}); policy or the pod's veth drops it (calico trace shows which)`
              : `${short(record, y.node)} has no /32 route to ${y.ip} (Felix did not program the workload)`,
          });
        }
      }
      checks.push(
        checkResult(
          'pod-pod-same-node',
          2,
          failures,
          `${short(record, first.name)}: 2 pods reach each other`,
        ),
      );
    }

    // 4. Pod ↔ pod across nodes.
    await progress('pod-pod-cross-node');
    const crossOk = new Set<string>();
    {
      const failures: CheckFailure[] = [];
      const skipped = skippedFor(nodes.map((n) => n.name));
      const pairs = nodes.flatMap((a) =>
        nodes
          .filter((b) => b !== a && usable(a.name) && usable(b.name))
          .map((b) => [pods.perNode.get(a.name)!, pods.perNode.get(b.name)!] as const),
      );
      const results = await Promise.all(pairs.map(([x, y]) => tcpUntil(x.netns, y.ip, ONE_TRY_MS)));
      for (const [i, [x, y]] of pairs.entries()) {
        if (results[i]) {
          crossOk.add(`${x.name}>${y.name}`);
          continue;
        }
        failures.push({
          what: `${x.name} on ${short(record, x.node)} → ${y.name} on ${short(record, y.node)} (tcp/${SERVE_PORT})`,
          cause: await crossNodeCause(record, x, y),
        });
      }
      checks.push(
        checkResult('pod-pod-cross-node', pairs.length, failures, `${pairs.length} node pairs`, skipped),
      );
    }

    // 5. Pod → host: its own node and another node.
    await progress('pod-host');
    {
      const failures: CheckFailure[] = [];
      const skipped: string[] = [];
      const tries: { pod: ClusterPodRecord; n: ClusterNodeRecord; t: ClusterNodeRecord }[] = [];
      for (const [i, n] of nodes.entries()) {
        const pod = pods.perNode.get(n.name);
        if (!pod) {
          skipped.push(`${short(record, n.name)} (underlay failed)`);
          continue;
        }
        const other = nodes[(i + 1) % nodes.length]!;
        for (const t of [n, ...(other !== n ? [other] : [])]) {
          if (t !== n && (!usable(n.name) || !usable(t.name)))
            skipped.push(`${short(record, n.name)}→${short(record, t.name)} (underlay failed)`);
          else tries.push({ pod, n, t });
        }
      }
      const results = await Promise.all(tries.map(({ pod, t }) => pingUntil(pod.netns, t.address, 2000)));
      for (const [k, { pod, n, t }] of tries.entries()) {
        if (results[k]!.ok) continue;
        failures.push({
          what: `${pod.name} on ${short(record, n.name)} → host ${short(record, t.name)} (${t.address})`,
          cause:
            t === n
              ? `${short(record, n.name)} does not answer its own pod: check DefaultEndpointToHostAction and the pod's default route via 169.254.1.1 (proxy ARP on its veth)`
              : `${short(record, n.name)} forwards pod traffic to ${short(record, t.name)} but no answer comes back`,
        });
      }
      const tried = tries.length;
      checks.push(checkResult('pod-host', tried, failures, `${tried} pod→host pings`, [...new Set(skipped)]));
    }

    // 6. Pod → outside, when the pool masquerades.
    await progress('pod-outside');
    {
      const pools = (await datastore.list('IPPool')).items;
      const masq = pools.some(
        (p) => p.spec.natOutgoing === true && cidrContains(p.spec.cidr, pods.all[0]!.ip),
      );
      if (!masq) {
        checks.push({
          check: 'pod-outside',
          status: 'skip',
          detail: 'the pool has natOutgoing off: pods are not meant to reach outside',
          failures: [],
        });
      } else {
        const address = outsideAddress(record.underlay);
        outside = await addOutsideHost({
          name: `${record.name}-out`,
          underlayNamespace: `${record.name}-ul`,
          bridge: `${record.name}-br`,
          address,
        });
        const failures: CheckFailure[] = [];
        const usableNodes = nodes.filter((n) => usable(n.name));
        const results = await Promise.all(
          usableNodes.map((n) => pingUntil(pods.perNode.get(n.name)!.netns, outside!.ip, 2000)),
        );
        for (const [i, n] of usableNodes.entries()) {
          if (results[i]!.ok) continue;
          const nat = await inNamespace(n.name, 'iptables-save', ['-t', 'nat']);
          failures.push({
            what: `${pods.perNode.get(n.name)!.name} on ${short(record, n.name)} → outside ${outside.ip}`,
            cause: /MASQUERADE/.test(nat.out)
              ? `${short(record, n.name)} has its NAT-outgoing rule but the outside host does not answer (the underlay to it)`
              : `${short(record, n.name)} does not masquerade pod traffic (no MASQUERADE rule in cali-nat-outgoing): the outside host cannot answer a pod address`,
          });
        }
        checks.push(
          checkResult(
            'pod-outside',
            usableNodes.length,
            failures,
            `${usableNodes.length} nodes masquerade pods to ${outside.ip}`,
            skippedFor(nodes.map((n) => n.name)),
          ),
        );
      }
    }

    // 7. Full-size packets with DF across nodes (only pairs that answered small packets).
    await progress('mtu');
    {
      const failures: CheckFailure[] = [];
      const skipped: string[] = [];
      const sample = pods.all[0]!;
      const podMtu = (await linkState(sample.netns, 'eth0')).mtu ?? 1500;
      const payload = podMtu - 28;
      const pairs = nodes.flatMap((a) =>
        nodes
          .filter((b) => b !== a && usable(a.name) && usable(b.name))
          .map((b) => [pods.perNode.get(a.name)!, pods.perNode.get(b.name)!] as const),
      );
      const tried = pairs.filter(([x, y]) => {
        const ok = crossOk.has(`${x.name}>${y.name}`);
        if (!ok) skipped.push(`${short(record, x.node)}→${short(record, y.node)} (no basic connectivity)`);
        return ok;
      });
      const results = await Promise.all(
        tried.map(([x, y]) => pingUntil(x.netns, y.ip, 1000, ['-M', 'do', '-s', String(payload)])),
      );
      for (const [i, [x, y]] of tried.entries()) {
        if (results[i]!.ok) continue;
        const overhead = OVERHEAD[record.encapsulation] ?? 0;
        const [mx, my] = await Promise.all([linkMtu(x.node, 'eth0'), linkMtu(y.node, 'eth0')]);
        const smallest = Math.min(mx ?? Infinity, my ?? Infinity);
        const which = (mx ?? Infinity) <= (my ?? Infinity) ? x.node : y.node;
        const needed = podMtu + overhead;
        failures.push({
          what: `${podMtu}-byte packets with DF from ${short(record, x.node)} to ${short(record, y.node)} are lost (small ones pass)`,
          cause:
            smallest < needed
              ? `${short(record, which)}'s underlay MTU ${smallest} is below ${overhead ? `the pod MTU ${podMtu} + ${overhead} bytes of ${record.encapsulation} = ${needed}` : `the pod MTU ${podMtu}`}: an MTU black hole (lower the pod MTU or raise the underlay's)`
              : `a link on the path between ${short(record, x.node)} and ${short(record, y.node)} has an MTU below ${needed} (the nodes' own are ${mx}/${my}): an MTU black hole`,
        });
      }
      checks.push(
        checkResult(
          'mtu',
          tried.length,
          failures,
          `${tried.length} node pairs carry ${podMtu}-byte packets with DF`,
          [...new Set(skipped)],
        ),
      );
    }

    // 8. Default deny: a policy with no rules isolates a pod; it is applied, checked, and removed.
    await progress('default-deny');
    {
      const failures: CheckFailure[] = [];
      const target = denyTarget;
      const client = pods.perNode.get(first.name)!;
      const reachable = await tcpUntil(client.netns, target.ip, ONE_TRY_MS);
      if (!reachable) {
        checks.push({
          check: 'default-deny',
          status: 'skip',
          detail: 'the test pod was not reachable before the policy, so denial would prove nothing',
          failures: [],
        });
      } else {
        policyName = `conntest-deny-${run}`;
        await datastore.apply('NetworkPolicy', {
          apiVersion: 'projectcalico.org/v3',
          kind: 'NetworkPolicy',
          metadata: { name: policyName, namespace: TEST_NAMESPACE },
          spec: { selector: `conntest-role == 'deny-${run}'`, types: ['Ingress'] },
        });
        const denied = await waitFor(
          async () => !(await probeFrom(client.netns, target.ip, { protocol: 'tcp', port: SERVE_PORT }, 500)),
          {
            timeoutMs: 10_000,
            what: 'default deny',
          },
        ).then(
          () => true,
          () => false,
        );
        if (!denied)
          failures.push({
            what: `${client.name} → ${target.name} still connects 10 s after a default-deny policy selected it`,
            cause: `Felix on ${short(record, first.name)} does not enforce policy (policy not programmed: check its log and calico policy explain)`,
          });
        checks.push(
          checkResult('default-deny', 1, failures, 'a pod selected by a policy without rules is isolated'),
        );
      }
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await cleanup();
  }
  return {
    cluster: record.name,
    passed: checks.every((c) => c.status !== 'fail'),
    checks,
    durationMs: Date.now() - started,
  };
}

/** An address near the top of the underlay subnet, for the outside host (nodes count from the bottom). */
export function outsideAddress(underlay: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(underlay);
  if (!m) throw new CliError(`underlay ${JSON.stringify(underlay)}: expected an IPv4 CIDR`);
  const bits = Number(m[5]);
  if (bits > 28)
    throw new CliError(`underlay ${underlay}: too small for an outside host (expected /28 or larger)`);
  const base = m.slice(1, 5).reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - bits);
  const ip = ((base & (~(size - 1) >>> 0)) >>> 0) + size - 6;
  return `${[24, 16, 8, 0].map((s) => (ip >>> s) & 255).join('.')}/${bits}`;
}

export function connectivityCommand(ctx: CommandContext): Command {
  const connectivity = new Command('connectivity').summary('Test what reaches what in a cluster');
  connectivity
    .command('test')
    .summary(
      'Self-test a running lab cluster: underlay, BGP, pod↔pod, pod→host, pod→outside, MTU, default deny',
    )
    .option('--settle <SECONDS>', 'how long a test pod just added may take to be reachable', '8')
    .addOption(new Option('-o, --output <FORMAT>', 'text or json').choices(['text', 'json']).default('text'))
    .addOption(nameOption())
    .action(async (opts: { settle: string; output: string; name?: string }) => {
      if (!/^\d+$/.test(opts.settle))
        throw new CliError(`--settle ${JSON.stringify(opts.settle)}: expected whole seconds`);
      const record = runningCluster(opts.name, ctx.io.env);
      const datastore = await ctx.datastore();
      const report = await connectivityTest(record, datastore, {
        settleMs: Number(opts.settle) * 1000,
        progress: (line) => ctx.log.info(`checking ${line}`),
      });
      ctx.io.stdout(
        opts.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderConnectivity(report),
      );
      if (!report.passed)
        throw new CliError(
          `connectivity test failed: ${report.checks
            .filter((c) => c.status === 'fail')
            .map((c) => c.check)
            .join(', ')}`,
        );
    });
  return connectivity;
}

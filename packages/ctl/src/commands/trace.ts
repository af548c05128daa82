/**
 * `calico trace --from NS/POD|IP --to NS/POD|IP --port tcp/80`: sends one probe from a pod of the
 * current lab cluster and follows it with the kernel's own tracing (nftables `meta nftrace` and
 * `nft monitor trace` on the nodes it passes), then reports its hops and the rule that decided.
 */
import { randomInt } from 'node:crypto';
import type { Datastore } from '@calico-ts/datastore';
import { explainFlow, policyChainName, policyIdString, stagedPolicyChainName } from '@calico-ts/felix';
import { connectTcp, execInNamespace, NetNamespace } from '@calico-ts/kernel';
import { PacketTrace, type PodPort, probeFrom, type TraceMatch } from '@calico-ts/lab';
import { Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import type { ClusterPodRecord, ClusterRecord } from '../cluster-context.ts';
import type { CommandContext } from '../command-context.ts';
import { nameOption, podOf, runningCluster } from './cluster-client.ts';
import { parsePort } from './cluster-connectivity.ts';
import { describeDecision, describePolicy, readPolicyState } from './policy.ts';
import {
  analyseTrace,
  type ChainRules,
  joinChainRules,
  type NodeTrace,
  parseChainHandles,
  parseRuleComments,
  type RouteChoice,
  renderTrace,
  type TraceReport,
} from './trace-analysis.ts';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export type TraceProbe = { protocol: 'icmp' } | PodPort;

/** `tcp/80`, `udp/53`, `80` or `icmp`. */
export function parseTraceProbe(spec: string): TraceProbe {
  if (spec.toLowerCase() === 'icmp') return { protocol: 'icmp' };
  try {
    return parsePort(spec);
  } catch {
    throw new CliError(`--port ${JSON.stringify(spec)}: expected tcp/PORT, udp/PORT, PORT or icmp`);
  }
}

function sourcePod(record: ClusterRecord, ref: string): ClusterPodRecord {
  if (IPV4.test(ref)) {
    const pod = record.pods.find((p) => p.ip === ref);
    if (!pod)
      throw new CliError(
        `--from ${ref}: no pod of cluster ${record.name} has this address; a trace starts in a pod (NS/POD or its address)`,
      );
    return pod;
  }
  return podOf(record, ref);
}

function destinationOf(
  record: ClusterRecord,
  ref: string,
): { label: string; ip: string; pod?: ClusterPodRecord } {
  if (IPV4.test(ref)) {
    const pod = record.pods.find((p) => p.ip === ref);
    return pod ? { label: `${pod.namespace}/${pod.name}`, ip: ref, pod } : { label: ref, ip: ref };
  }
  const pod = podOf(record, ref);
  return { label: `${pod.namespace}/${pod.name}`, ip: pod.ip, pod };
}

export async function inNamespace(
  name: string,
  command: string,
  args: string[],
): Promise<{ out: string; ok: boolean }> {
  const ns = NetNamespace.open(name);
  try {
    const r = await execInNamespace(ns, command, args);
    return { out: r.stdout + r.stderr, ok: r.exitCode === 0 };
  } finally {
    ns.close();
  }
}

export async function linkMtu(node: string, dev: string): Promise<number | undefined> {
  const r = await inNamespace(node, 'ip', ['-j', 'link', 'show', 'dev', dev]);
  if (!r.ok) return undefined;
  const links = JSON.parse(r.out) as { mtu?: number }[];
  return links[0]?.mtu;
}

const prefixLength = (dst: string): number => (dst === 'default' ? 0 : Number(dst.split('/')[1] ?? 32));

/** The node's longest-prefix route for `ip` in its main table, with the device's MTU. */
export async function routeFor(node: string, ip: string): Promise<RouteChoice | undefined> {
  const r = await inNamespace(node, 'ip', ['-j', 'route', 'show', 'match', ip]);
  if (!r.ok) return undefined;
  const routes = JSON.parse(r.out || '[]') as {
    dst: string;
    type?: string;
    gateway?: string;
    dev?: string;
    protocol?: string;
    metrics?: { mtu?: number }[];
  }[];
  const best = [...routes].sort((a, b) => prefixLength(b.dst) - prefixLength(a.dst))[0];
  if (!best) return undefined;
  const routeMtu = best.metrics?.find((m) => m.mtu !== undefined)?.mtu;
  return {
    dst: best.dst,
    type: best.type ?? 'unicast',
    gateway: best.gateway,
    dev: best.dev,
    protocol: best.protocol,
    mtu: routeMtu ?? (best.dev ? await linkMtu(node, best.dev) : undefined),
  };
}

/** A node's filter table: each chain's rules with handle, position and Felix's comments. */
async function chainRules(node: string): Promise<ChainRules> {
  const [listing, save] = await Promise.all([
    inNamespace(node, 'nft', ['-a', 'list', 'table', 'ip', 'filter']),
    inNamespace(node, 'iptables-save', ['-t', 'filter']),
  ]);
  return joinChainRules(parseChainHandles(listing.out), parseRuleComments(save.out));
}

/**
 * Felix's policy chain names → the policy, for every policy in the datastore: the enforced
 * policies' chains and their staged forms (a staged view may walk an enforced policy), and the
 * staged policies' chains.
 */
async function policyChains(datastore: Datastore): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  const add = (key: string, staged = false) => {
    for (const direction of ['ingress', 'egress'] as const) {
      if (!staged) owners.set(policyChainName(direction, key), describePolicy(key));
      owners.set(stagedPolicyChainName(direction, key), describePolicy(key));
    }
  };
  for (const p of (await datastore.list('NetworkPolicy')).items)
    add(policyIdString({ kind: 'NetworkPolicy', namespace: p.metadata.namespace, name: p.metadata.name }));
  for (const p of (await datastore.list('GlobalNetworkPolicy')).items)
    add(policyIdString({ kind: 'GlobalNetworkPolicy', namespace: undefined, name: p.metadata.name }));
  for (const p of (await datastore.list('KubernetesNetworkPolicy')).items)
    add(
      policyIdString({
        kind: 'KubernetesNetworkPolicy',
        namespace: p.metadata.namespace,
        name: p.metadata.name,
      }),
    );
  for (const p of (await datastore.list('StagedNetworkPolicy')).items)
    add(
      policyIdString({ kind: 'StagedNetworkPolicy', namespace: p.metadata.namespace, name: p.metadata.name }),
      true,
    );
  for (const p of (await datastore.list('StagedGlobalNetworkPolicy')).items)
    add(
      policyIdString({ kind: 'StagedGlobalNetworkPolicy', namespace: undefined, name: p.metadata.name }),
      true,
    );
  for (const p of (await datastore.list('StagedKubernetesNetworkPolicy')).items)
    add(
      policyIdString({
        kind: 'StagedKubernetesNetworkPolicy',
        namespace: p.metadata.namespace,
        name: p.metadata.name,
      }),
      true,
    );
  return owners;
}

export interface TraceOptions {
  from: string;
  to: string;
  port: string;
  /** ICMP payload bytes (ping -s); sent with DF set. */
  size?: number | undefined;
  timeoutMs: number;
  /** The nft table's name (tests give theirs a run prefix). */
  table?: string | undefined;
}

/** Runs one trace on a running lab cluster. */
export async function traceProbe(
  record: ClusterRecord,
  datastore: Datastore | undefined,
  options: TraceOptions,
): Promise<TraceReport> {
  const from = sourcePod(record, options.from);
  const to = destinationOf(record, options.to);
  const probe = parseTraceProbe(options.port);
  if (options.size !== undefined && probe.protocol !== 'icmp')
    throw new CliError(`--size ${options.size}: only an icmp probe has a size; give --port icmp`);
  const srcNode = from.node;
  const dstNode = to.pod?.node;
  const namespaces = dstNode && dstNode !== srcNode ? [srcNode, dstNode] : [srcNode];
  const srcPort = probe.protocol === 'tcp' ? randomInt(33_000, 61_000) : undefined;
  const match: TraceMatch = {
    src: from.ip,
    dst: to.ip,
    protocol: probe.protocol,
    ...(srcPort !== undefined ? { srcPort } : {}),
    ...(probe.protocol !== 'icmp' ? { dstPort: probe.port } : {}),
  };

  let owners = new Map<string, string>();
  let model: { egress: string; ingress: string; egressPolicy?: string; ingressPolicy?: string } | undefined;
  if (datastore) {
    owners = await policyChains(datastore);
    const snapshot = await readPolicyState(datastore);
    const verdict = explainFlow(snapshot, {
      protocol: probe.protocol,
      srcIp: from.ip,
      dstIp: to.ip,
      ...(probe.protocol !== 'icmp' ? { dstPort: probe.port } : {}),
      ...(srcPort !== undefined ? { srcPort } : {}),
    });
    const policyOf = (d: typeof verdict.egress.decision) =>
      d.by === 'rule' ? describePolicy(d.policy) : undefined;
    const egressPolicy = policyOf(verdict.egress.decision);
    const ingressPolicy = policyOf(verdict.ingress.decision);
    model = {
      egress: `the datastore's policy: ${describeDecision(verdict.egress.decision)}`,
      ingress: `the datastore's policy: ${describeDecision(verdict.ingress.decision)}`,
      ...(egressPolicy ? { egressPolicy } : {}),
      ...(ingressPolicy ? { ingressPolicy } : {}),
    };
  }

  const trace = await PacketTrace.start({
    namespaces,
    match,
    ...(options.table ? { table: options.table } : {}),
  });
  const onSignal = () => {
    void trace.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let answered = false;
  let probeOutput = '';
  let size: number | undefined;
  try {
    if (probe.protocol === 'icmp') {
      const payload = options.size ?? 56;
      size = payload + 28;
      const r = await inNamespace(from.netns, 'ping', [
        '-c',
        '1',
        '-W',
        String(Math.max(1, Math.ceil(options.timeoutMs / 1000))),
        '-M',
        'do',
        '-s',
        String(payload),
        to.ip,
      ]);
      answered = r.ok;
      probeOutput = r.out;
    } else if (probe.protocol === 'tcp') {
      const ns = NetNamespace.open(from.netns);
      try {
        const s = await connectTcp({
          host: to.ip,
          port: probe.port,
          localPort: srcPort,
          namespace: ns,
          timeoutMs: options.timeoutMs,
        });
        s.destroy();
        answered = true;
      } catch (err) {
        probeOutput = (err as Error).message;
      } finally {
        ns.close();
      }
    } else {
      answered = await probeFrom(from.netns, to.ip, probe, options.timeoutMs);
    }
    await trace.flush();
  } catch (err) {
    await trace.stop();
    throw err;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  const packets = new Map(namespaces.map((n) => [n, trace.packets(n)[0] ?? []]));
  await trace.stop();

  const nodes: NodeTrace[] = [];
  for (const node of namespaces)
    nodes.push({
      node,
      events: packets.get(node) ?? [],
      rules: await chainRules(node),
      uplinkMtu: await linkMtu(node, 'eth0'),
    });
  return analyseTrace({
    source: { label: `${from.namespace}/${from.name}`, ip: from.ip, node: srcNode },
    destination: { label: to.label, ip: to.ip, node: dstNode },
    probe:
      probe.protocol === 'icmp'
        ? `icmp echo${options.size !== undefined ? ` ${size} bytes, DF` : ''}`
        : `${probe.protocol}/${probe.port}`,
    size,
    dontFragment: probe.protocol === 'icmp',
    nodes,
    route: await routeFor(srcNode, to.ip),
    nodeAddresses: new Map(record.nodes.map((n) => [n.address, n.name])),
    poolCidrs: [record.poolCidr],
    chainOwners: owners,
    ...(model ? { model } : {}),
    answered,
    probeOutput,
  });
}

export function traceCommand(ctx: CommandContext): Command {
  return new Command('trace')
    .summary("Follow one probe through the kernel's tracing: each hop and the rule that decided")
    .requiredOption('--from <NS/POD|IP>', 'the pod the probe starts in')
    .requiredOption('--to <NS/POD|IP>', 'a pod or an address')
    .option('--port <PORT>', 'tcp/80, udp/53, 80 or icmp', 'tcp/80')
    .option('--size <BYTES>', 'with --port icmp: payload bytes, sent with DF set (MTU checks)')
    .option('--timeout <MS>', 'how long the probe waits for an answer', '1500')
    .addOption(new Option('-o, --output <FORMAT>', 'text or json').choices(['text', 'json']).default('text'))
    .addOption(nameOption())
    .action(
      async (opts: {
        from: string;
        to: string;
        port: string;
        size?: string;
        timeout: string;
        output: string;
        name?: string;
      }) => {
        const record = runningCluster(opts.name, ctx.io.env);
        if (opts.size !== undefined && !/^\d+$/.test(opts.size))
          throw new CliError(`--size ${JSON.stringify(opts.size)}: expected a number of bytes`);
        if (!/^\d+$/.test(opts.timeout))
          throw new CliError(`--timeout ${JSON.stringify(opts.timeout)}: expected milliseconds`);
        let datastore: Datastore | undefined;
        try {
          datastore = await ctx.datastore();
        } catch (err) {
          ctx.log.warn(`policy names unavailable, the datastore is unreachable: ${(err as Error).message}`);
        }
        const report = await traceProbe(record, datastore, {
          from: opts.from,
          to: opts.to,
          port: opts.port,
          size: opts.size !== undefined ? Number(opts.size) : undefined,
          timeoutMs: Number(opts.timeout),
        });
        ctx.io.stdout(opts.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderTrace(report));
        if (report.result !== 'delivered') throw new CliError(`not delivered: ${report.summary}`);
      },
    );
}

import { execFileSync } from 'node:child_process';
import { execInNamespace, isKernelError, listNamespaces, readSysctl, waitFor } from '@calico-ts/kernel';
import { afterAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { createLab, isLabError, LAB_GATEWAY_V4, type Lab, labNodeIpv4, removeLab } from '../src/index.ts';

const prefix = runPrefix('kt');

const ping = async (ns: Parameters<typeof execInNamespace>[0], ip: string) =>
  (await execInNamespace(ns, 'ping', ['-c', '1', '-W', '1', ip])).exitCode === 0;

function hostLinks(): string {
  return execFileSync('ip', ['-o', 'link', 'show']).toString();
}

describeWith([root(), command('ip'), command('ping')], 'lab fabric', () => {
  let lab: Lab | undefined;
  const linksBefore = hostLinks();

  afterAll(async () => {
    await lab?.teardown();
    await removeLab(prefix);
  });

  it('builds an underlay switch with nodes that reach the gateway and each other (v4 and v6)', async () => {
    lab = await createLab({ prefix, nodes: 3, ipv6: true, router: true });
    expect(lab.namespaces).toEqual([`${prefix}-ul`, `${prefix}-n1`, `${prefix}-n2`, `${prefix}-n3`]);
    const n1 = lab.node(1);
    expect(n1.ipv4).toBe('198.51.100.11');
    expect(labNodeIpv4(1)).toBe(n1.ipv4);
    expect(n1.ipv6).toBe('2001:db8::b');
    const routes = await n1.netlink.listRoutes({ dst: 'default' });
    expect(routes[0]?.gateway).toBe(LAB_GATEWAY_V4);
    expect(LAB_GATEWAY_V4).toBe('198.51.100.1');
    expect(readSysctl('net.ipv4.ip_forward', n1.namespace)).toBe('1');
    expect(readSysctl('net.ipv4.ip_forward', lab.underlay.namespace)).toBe('1');
    await waitFor(() => ping(n1.namespace, LAB_GATEWAY_V4), { what: 'gateway reachable', timeoutMs: 10_000 });
    await waitFor(() => ping(n1.namespace, lab!.node(3).ipv4), { what: 'n3 reachable', timeoutMs: 10_000 });
    await waitFor(() => ping(lab!.node(2).namespace, '2001:db8::b'), {
      what: 'n1 reachable over IPv6',
      timeoutMs: 10_000,
    });
    // Nothing in our own namespace.
    expect(hostLinks()).toBe(linksBefore);
  });

  it('makes pod namespaces and tracks processes', async () => {
    const pod = await lab!.addPod(2, 'web');
    expect(pod.name).toBe(`${prefix}-n2-web`);
    const proc = await lab!.spawn(pod, 'sleep', ['300']);
    expect(proc.running).toBe(true);
    expect(() => lab!.node(9)).toThrow(/lab node 9/);
  });

  it('tears down everything it created, processes included', async () => {
    const proc = await lab!.spawn(lab!.node(1), 'sleep', ['300']);
    await lab!.teardown();
    expect(proc.running).toBe(false);
    expect(listNamespaces(prefix)).toEqual([]);
    expect(hostLinks()).toBe(linksBefore);
    await lab!.teardown(); // idempotent
  });

  it('cleans up after a failed create and rejects bad options', async () => {
    const bad = await createLab({ prefix: 'Bad_Prefix!', nodes: 1 }).catch((e: unknown) => e);
    expect(isLabError(bad, 'Invalid')).toBe(true);
    // Occupy n2's namespace name so the second node fails half way.
    const clash = `${prefix}x`;
    execFileSync('ip', ['netns', 'add', `${clash}-n2`]);
    try {
      const err = await createLab({ prefix: clash, nodes: 2 }).catch((e: unknown) => e);
      expect(isKernelError(err, 'Namespace', 'EEXIST')).toBe(true);
      expect(listNamespaces(clash)).toEqual([`${clash}-n2`]);
    } finally {
      execFileSync('ip', ['netns', 'del', `${clash}-n2`]);
    }
  });
});

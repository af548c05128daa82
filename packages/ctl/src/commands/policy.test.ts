import { MemoryDatastore, namespaceProfile } from '@calico-ts/datastore';
import { beforeEach, describe, expect, it } from 'vitest';
import { run } from '../calico-program.ts';
import { captureIo } from '../cli-io.ts';

/** Two pods in namespace x, one in y, their namespaces' profiles, and the policies of each case. */
async function cluster(): Promise<MemoryDatastore> {
  const ds = new MemoryDatastore();
  for (const ns of ['x', 'y']) await ds.create('Profile', namespaceProfile(ns, { ns }));
  const pods: [string, string, string, Record<string, string>][] = [
    ['x', 'a', '10.244.1.1', { pod: 'a' }],
    ['x', 'b', '10.244.1.2', { pod: 'b' }],
    ['y', 'a', '10.244.2.1', { pod: 'a' }],
  ];
  for (const [ns, pod, ip, labels] of pods) {
    await ds.create('WorkloadEndpoint', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: {
        name: `node--1-k8s-${pod}-eth0`,
        namespace: ns,
        labels: { ...labels, 'projectcalico.org/namespace': ns, 'projectcalico.org/orchestrator': 'k8s' },
      },
      spec: {
        orchestrator: 'k8s',
        node: 'node-1',
        pod,
        endpoint: 'eth0',
        interfaceName: `cali${ns}${pod}`,
        ipNetworks: [`${ip}/32`],
        profiles: [`kns.${ns}`],
      },
    });
  }
  return ds;
}

async function explain(ds: MemoryDatastore, ...args: string[]) {
  const io = captureIo();
  const code = await run(['policy', 'explain', ...args], io, { connect: async () => ds });
  return { code, out: io.out, err: io.err };
}

describe('calico policy explain', () => {
  let ds: MemoryDatastore;
  beforeEach(async () => {
    ds = await cluster();
  });

  it('falls through to the namespace profiles when no policy selects either pod', async () => {
    const r = await explain(ds, '--from', 'x/a', '--to', 'y/a', '--port', 'tcp/80');
    expect(r).toEqual({
      code: 0,
      err: '',
      out: [
        'Flow x/node--1-k8s-a-eth0 (10.244.1.1) → y/node--1-k8s-a-eth0 (10.244.2.1) tcp/80',
        'Egress from x/node--1-k8s-a-eth0 (10.244.1.1): ALLOW — allow by profile kns.x, rule 1',
        'Ingress to y/node--1-k8s-a-eth0 (10.244.2.1): ALLOW — allow by profile kns.y, rule 1',
        'Verdict: allowed',
        '',
      ].join('\n'),
    });
  });

  it('names the Kubernetes policy and the end of tier that deny a flow, and the rule that allows another', async () => {
    await ds.create('KubernetesNetworkPolicy', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'allow-same-ns', namespace: 'y' },
      spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }], policyTypes: ['Ingress'] },
    });
    const denied = JSON.parse(
      (await explain(ds, '--from', 'x/a', '--to', 'y/a', '--port', 'tcp/80', '-o', 'json')).out,
    );
    expect(denied.allowed).toBe(false);
    expect(denied.ingress.decision).toEqual({ by: 'endOfTier', tier: 'default' });
    expect(denied.egress.decision).toMatchObject({ by: 'profile', profile: 'kns.x', action: 'allow' });

    await ds.create('NetworkPolicy', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'NetworkPolicy',
      metadata: { name: 'from-x', namespace: 'y' },
      spec: {
        order: 10,
        selector: 'all()',
        types: ['Ingress'],
        ingress: [
          { action: 'Deny', protocol: 'TCP', destination: { ports: [81] } },
          { action: 'Allow', source: { namespaceSelector: "ns == 'x'" } },
        ],
      },
    });
    const allowed = await explain(ds, '--from', '10.244.1.1', '--to', 'y/a', '--port', 'tcp/80');
    expect(allowed.out).toContain(
      'Ingress to y/node--1-k8s-a-eth0 (10.244.2.1): ALLOW — allow by tier default, NetworkPolicy y/from-x, rule 2',
    );
    expect(allowed.out).toContain('Verdict: allowed');
    const port81 = await explain(ds, '--from', 'x/a', '--to', 'y/a', '--port', 'tcp/81');
    expect(port81.out).toContain('DENY — deny by tier default, NetworkPolicy y/from-x, rule 1');
  });

  it('says what staged policies would decide, beside the enforced verdict', async () => {
    await ds.create('StagedNetworkPolicy', {
      metadata: { name: 'deny-web', namespace: 'y' },
      spec: { selector: "pod == 'a'", types: ['Ingress'], ingress: [{ action: 'Deny', protocol: 'TCP' }] },
    });
    const r = await explain(ds, '--from', 'x/a', '--to', 'y/a', '--port', 'tcp/80');
    expect(r.out.split('\n').slice(3)).toEqual([
      'Verdict: allowed',
      'Staged policies (not enforced) would decide:',
      'Egress from x/node--1-k8s-a-eth0 (10.244.1.1): ALLOW — allow by profile kns.x, rule 1',
      'Ingress to y/node--1-k8s-a-eth0 (10.244.2.1): DENY — deny by tier default, StagedNetworkPolicy y/deny-web, rule 1',
      'Staged verdict: would be denied',
      '',
    ]);
    const json = JSON.parse(
      (await explain(ds, '--from', 'x/b', '--to', 'x/a', '--port', 'tcp/80', '-o', 'json')).out,
    );
    expect(json.staged).toBeNull();
  });

  it('treats an address outside every endpoint as unpoliced on its side', async () => {
    const r = JSON.parse(
      (await explain(ds, '--from', '192.0.2.9', '--to', 'x/b', '--port', 'icmp', '-o', 'json')).out,
    );
    expect(r.source).toEqual({ ip: '192.0.2.9', endpoint: null });
    expect(r.egress.decision).toEqual({ by: 'notAnEndpoint' });
    expect(r.ingress.decision).toMatchObject({ by: 'profile', profile: 'kns.x' });
  });

  it('refuses a peer or port it cannot read, naming the flag and what it expected', async () => {
    expect(await explain(ds, '--from', 'x/nope', '--to', 'y/a', '--port', 'tcp/80')).toEqual({
      code: 1,
      out: '',
      err: '--from "x/nope": no pod or workload endpoint x/nope; expected an IP address or <namespace>/<pod>\n',
    });
    expect((await explain(ds, '--from', 'x/a', '--to', 'y/a', '--port', 'tcp/99999')).err).toBe(
      '--port "tcp/99999": expected tcp/<port 1-65535>\n',
    );
    expect((await explain(ds, '--from', 'x/a', '--to', 'y/a', '--port', 'gre')).err).toBe(
      '--port "gre": expected tcp/<port>, udp/<port>, sctp/<port> or icmp[/<type>[/<code>]]\n',
    );
  });

  describe('host endpoints', () => {
    beforeEach(async () => {
      await ds.create('HostEndpoint', {
        metadata: { name: 'node-1-eth0', labels: { role: 'node' } },
        spec: { node: 'node-1', interfaceName: 'eth0', expectedIPs: ['192.0.2.10'] },
      });
      await ds.create('GlobalNetworkPolicy', {
        metadata: { name: 'node-web' },
        spec: {
          selector: "role == 'node'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [80] } }],
        },
      });
      await ds.create('GlobalNetworkPolicy', {
        metadata: { name: 'node-untracked' },
        spec: {
          selector: "role == 'node'",
          doNotTrack: true,
          applyOnForward: true,
          types: ['Ingress'],
          ingress: [{ action: 'Deny', protocol: 'UDP', destination: { ports: [53] } }],
        },
      });
    });

    it('traffic to a host endpoint address meets its untracked and normal policy', async () => {
      const web = await explain(ds, '--from', '198.51.100.1', '--to', '192.0.2.10', '--port', 'tcp/80');
      expect(web.out).toBe(
        [
          'Flow 198.51.100.1 → 192.0.2.10 tcp/80',
          'Egress from 198.51.100.1: ALLOW — allow: not a workload endpoint, so no policy applies on this side',
          'Into host endpoint node-1-eth0 (192.0.2.10): ALLOW',
          '    untracked (doNotTrack, raw) ingress: CONTINUE — no rule decided; on to the next stage',
          '        pass: tier default ends in Pass → next tier',
          '    normal ingress: ACCEPT — allow by tier default, GlobalNetworkPolicy node-web, rule 1',
          'Verdict: allowed',
          '',
        ].join('\n'),
      );
      const dns = await explain(ds, '--from', '198.51.100.1', '--to', '192.0.2.10', '--port', 'udp/53');
      expect(dns.out).toContain(
        'untracked (doNotTrack, raw) ingress: DROP — deny by tier default, GlobalNetworkPolicy node-untracked, rule 1',
      );
      expect(dns.out).toContain('Verdict: denied');
      const ssh = await explain(ds, '--from', '198.51.100.1', '--to', '192.0.2.10', '--port', 'tcp/81');
      expect(ssh.out).toContain(
        'normal ingress: DROP — deny at the end of tier default: policies in it select the endpoint and none of their rules matched',
      );
    });

    it("Calico's failsafe ports keep etcd reachable under the host policy, as FelixConfiguration sets them", async () => {
      const etcd = JSON.parse(
        (
          await explain(
            ds,
            '--from',
            '198.51.100.1',
            '--to',
            '192.0.2.10',
            '--port',
            'tcp/2379',
            '-o',
            'json',
          )
        ).out,
      );
      expect(etcd.allowed).toBe(true);
      expect(etcd.hostEndpoint.stages.at(-1)).toMatchObject({
        stage: 'normal',
        result: 'accept',
        decision: { by: 'failsafe', protocol: 'tcp', port: 2379 },
      });
      await ds.create('FelixConfiguration', {
        metadata: { name: 'node.node-1' },
        spec: { failsafeInboundHostPorts: [{ protocol: 'TCP', port: 2222 }] },
      });
      const after = async (port: string) =>
        JSON.parse(
          (await explain(ds, '--from', '198.51.100.1', '--to', '192.0.2.10', '--port', port, '-o', 'json'))
            .out,
        ).allowed;
      expect(await after('tcp/2379')).toBe(false);
      expect(await after('tcp/2222')).toBe(true);
    });

    it('traffic from the host out through its endpoint meets its egress policy', async () => {
      const r = await explain(ds, '--from', '192.0.2.10', '--to', 'x/a', '--port', 'tcp/80');
      // node-web governs ingress only: egress falls to the (absent) profiles and is denied.
      expect(r.out).toContain('Out of host endpoint node-1-eth0 (192.0.2.10): DENY');
      expect(r.out).toContain('Ingress to x/node--1-k8s-a-eth0 (10.244.1.1): ALLOW');
      expect(r.out).toContain('Verdict: denied');
    });
  });
});

import { describe, expect, it } from 'vitest';
import { vethNameForWorkload, workloadEndpointName } from './names.ts';
import { type CniResult, parseResult, renderResult } from './result.ts';

const result: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cali1234567890a', mac: 'ee:ee:ee:ee:ee:ee' },
    { name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1450, sandbox: '/run/netns/p1' },
  ],
  ips: [
    { address: '10.244.0.5/32', gateway: '169.254.1.1', interface: 1 },
    { address: 'fd00::5/128', gateway: 'fe80::ecee:eeff:feee:eeee', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1', mtu: 1450 }],
};

describe('results', () => {
  it('renders 1.1 with interface MTU and route extras', () => {
    const r = renderResult(result, '1.1.0') as { interfaces: { mtu?: number }[]; routes: { mtu?: number }[] };
    expect(r.interfaces[1]!.mtu).toBe(1450);
    expect(r.routes[0]!.mtu).toBe(1450);
  });
  it('renders 1.0 without 1.1 fields and without ip versions', () => {
    const r = renderResult(result, '1.0.0') as {
      interfaces: { mtu?: number }[];
      ips: { version?: string }[];
    };
    expect(r.interfaces[1]!.mtu).toBeUndefined();
    expect(r.ips[0]!.version).toBeUndefined();
  });
  it('renders 0.3.1 and 0.4.0 with ip versions', () => {
    for (const v of ['0.3.1', '0.4.0'] as const) {
      const r = renderResult(result, v) as { cniVersion: string; ips: { version?: string }[] };
      expect(r.cniVersion).toBe(v);
      expect(r.ips.map((i) => i.version)).toEqual(['4', '6']);
    }
  });
  it('reads a prevResult of an older version back', () => {
    const back = parseResult(renderResult(result, '0.4.0'));
    expect(back?.ips?.[0]).toEqual({ interface: 1, address: '10.244.0.5/32', gateway: '169.254.1.1' });
  });
});

describe('names', () => {
  it('host veth is cali + 11 hex of sha1(namespace.pod)', () => {
    // python3 -c "import hashlib;print(hashlib.sha1(b'default.nginx').hexdigest()[:11])" → c440f455693
    expect(vethNameForWorkload('default', 'nginx')).toBe('calic440f455693');
    expect(vethNameForWorkload('default', 'nginx')).toHaveLength(15);
  });
  it('WorkloadEndpoint names double the dashes inside segments', () => {
    expect(
      workloadEndpointName({ node: 'node-1', orchestrator: 'k8s', workload: 'nginx-abc', endpoint: 'eth0' }),
    ).toBe('node--1-k8s-nginx--abc-eth0');
  });
});

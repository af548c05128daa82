import { describe, expect, it } from 'vitest';
import { autodetectAddress, type HostAddress, inCidr } from './autodetect.ts';
import { ConfigError, loadNodeConfig } from './config.ts';

describe('node config', () => {
  it('has Calico defaults', () => {
    const c = loadNodeConfig({}, { NODENAME: 'n1' });
    expect(c.nodeName).toBe('n1');
    expect(c.ipv4Pool).toEqual({
      cidr: '192.168.0.0/16',
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: true,
      nodeSelector: 'all()',
      disableBGPExport: false,
    });
    expect(c.ipv6Pool).toBeUndefined();
    expect([c.healthPort, c.metricsPort]).toEqual([9099, 9091]);
    expect(c.networkingBackend).toBe('bird');
  });

  it('reads liveness timeouts from FELIX_HEALTHTIMEOUTOVERRIDES and names a bad entry', () => {
    expect(loadNodeConfig({}, { NODENAME: 'n1' }).healthTimeouts).toEqual({
      InternalDataplaneMainLoop: 90_000,
      BGPAgentApplyLoop: 90_000,
    });
    const c = loadNodeConfig(
      {},
      {
        NODENAME: 'n1',
        FELIX_HEALTHTIMEOUTOVERRIDES: 'InternalDataplaneMainLoop=30s, BGPAgentApplyLoop=500ms',
      },
    );
    expect(c.healthTimeouts).toEqual({ InternalDataplaneMainLoop: 30_000, BGPAgentApplyLoop: 500 });
    expect(() =>
      loadNodeConfig({}, { NODENAME: 'n1', FELIX_HEALTHTIMEOUTOVERRIDES: 'CalcGraph=30s' }),
    ).toThrow(
      /FELIX_HEALTHTIMEOUTOVERRIDES: "CalcGraph" — expected InternalDataplaneMainLoop or BGPAgentApplyLoop/,
    );
    expect(() =>
      loadNodeConfig({}, { NODENAME: 'n1', FELIX_HEALTHTIMEOUTOVERRIDES: 'BGPAgentApplyLoop=soon' }),
    ).toThrow(/BGPAgentApplyLoop="soon" — expected a duration/);
  });

  it('reads pool settings and flags win over the environment', () => {
    const c = loadNodeConfig(
      { 'node-name': 'flagged' },
      {
        NODENAME: 'env',
        CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
        CALICO_IPV4POOL_VXLAN: 'cross-subnet',
        CALICO_IPV4POOL_BLOCK_SIZE: '24',
        CALICO_IPV4POOL_NAT_OUTGOING: 'false',
      },
    );
    expect(c.nodeName).toBe('flagged');
    expect(c.ipv4Pool).toMatchObject({
      cidr: '10.244.0.0/16',
      vxlanMode: 'CrossSubnet',
      blockSize: 24,
      natOutgoing: false,
    });
  });

  it('reads FELIX_IPTABLESBACKEND in any case and rejects other values', () => {
    expect(loadNodeConfig({}, { NODENAME: 'n1' }).iptablesBackend).toBeUndefined();
    expect(loadNodeConfig({}, { FELIX_IPTABLESBACKEND: 'nft' }).iptablesBackend).toBe('NFT');
    expect(loadNodeConfig({}, { FELIX_IPTABLESBACKEND: 'Legacy' }).iptablesBackend).toBe('Legacy');
    expect(loadNodeConfig({}, { FELIX_IPTABLESBACKEND: 'AUTO' }).iptablesBackend).toBe('Auto');
    expect(() => loadNodeConfig({}, { FELIX_IPTABLESBACKEND: 'nftables' })).toThrow(
      new ConfigError('FELIX_IPTABLESBACKEND: "nftables" — expected Legacy, NFT or Auto'),
    );
  });

  it('CALICO_IPV4POOL_CIDR=none means no pool', () => {
    expect(loadNodeConfig({}, { CALICO_IPV4POOL_CIDR: 'none' }).ipv4Pool).toBeUndefined();
  });

  it('names the variable, the value and what was expected', () => {
    expect(() => loadNodeConfig({}, { CALICO_IPV4POOL_IPIP: 'sometimes' })).toThrow(
      new ConfigError('CALICO_IPV4POOL_IPIP: "sometimes" — expected Never, Always or CrossSubnet'),
    );
    expect(() => loadNodeConfig({}, { CALICO_IPV4POOL_BLOCK_SIZE: '40' })).toThrow(/from 20 to 32/);
    expect(() => loadNodeConfig({}, { CALICO_NETWORKING_BACKEND: 'quagga' })).toThrow(/bird, vxlan or none/);
  });
});

describe('address autodetection', () => {
  const hosts: HostAddress[] = [
    { iface: 'docker0', address: '172.17.0.1', cidr: '172.17.0.1/16', family: 4 },
    { iface: 'cali12345678901', address: '169.254.1.1', cidr: '169.254.1.1/32', family: 4 },
    { iface: 'eth0', address: '192.0.2.11', cidr: '192.0.2.11/24', family: 4 },
    { iface: 'eth1', address: '198.51.100.7', cidr: '198.51.100.7/24', family: 4 },
    { iface: 'eth0', address: '2001:db8::11', cidr: '2001:db8::11/64', family: 6 },
  ];
  it('first-found skips Calico and container interfaces', async () => {
    expect((await autodetectAddress('first-found', 4, hosts)).address).toBe('192.0.2.11');
    expect((await autodetectAddress('first-found', 6, hosts)).cidr).toBe('2001:db8::11/64');
  });
  it('interface=, skip-interface=, cidr=', async () => {
    expect((await autodetectAddress('interface=eth1', 4, hosts)).address).toBe('198.51.100.7');
    expect((await autodetectAddress('skip-interface=eth0', 4, hosts)).address).toBe('198.51.100.7');
    expect((await autodetectAddress('cidr=198.51.100.0/24', 4, hosts)).address).toBe('198.51.100.7');
  });
  it('fails with the reason', async () => {
    await expect(autodetectAddress('interface=wlan.*', 4, hosts)).rejects.toThrow(
      /no interface matches wlan/,
    );
    await expect(autodetectAddress('guess', 4, hosts)).rejects.toThrow(
      /unknown autodetection method "guess"/,
    );
  });
  it('can-reach= uses the kernel route to the destination', async () => {
    const lo: HostAddress[] = [{ iface: 'lo', address: '127.0.0.1', cidr: '127.0.0.1/8', family: 4 }];
    expect((await autodetectAddress('can-reach=127.0.0.1', 4, lo)).address).toBe('127.0.0.1');
  });
  it('inCidr', () => {
    expect(inCidr('10.1.2.3', '10.0.0.0/8')).toBe(true);
    expect(inCidr('11.1.2.3', '10.0.0.0/8')).toBe(false);
    expect(inCidr('2001:db8::1', '2001:db8::/32')).toBe(true);
    expect(inCidr('2001:db8::1', '10.0.0.0/8')).toBe(false);
  });
});

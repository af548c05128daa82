/**
 * Interop with FRR 8.4's bgpd on loopback (Debian's `frr` package, bgpd started alone without
 * zebra): eBGP with a 4-octet AS and iBGP, IPv4 and IPv6 (MP-BGP over an IPv4 session), and our
 * speaker as route reflector for two FRR clients, each FRR checked for the ORIGINATOR_ID and
 * CLUSTER_LIST it receives. TCP-MD5 with FRR is in packages/bgp-agent/test/frr-md5.int.test.ts
 * (it needs the kernel's socket options).
 *
 * FRR treats 127.0.0.0/8 next hops as martian and rejects the UPDATE, so every next hop we send
 * it is a documentation address, set by export policy (IPv4) or `nextHopV6`.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker, type PeerConfig } from '../src/index.ts';
import { FRR_BGPD, type Frr, freePort, startFrr, tempDir, waitFor } from './lab.ts';

const AS = 64512;
const US = '127.0.23.1';
const FRR_E = '127.0.23.11';
const FRR_I1 = '127.0.23.12';
const FRR_I2 = '127.0.23.13';
const CLUSTER = '10.255.23.1';

interface FrrPath {
  aspath: { string: string };
  origin: string;
  valid?: boolean;
  locPrf?: number;
  community?: { list: string[] };
  originatorId?: string;
  clusterList?: { list: string[] };
  nexthops: { ip: string; afi: string }[];
  peer: { peerId: string };
}

/** The paths FRR holds for one prefix (none when it has no such route). */
async function frrPaths(frr: Frr, family: 'ipv4' | 'ipv6', prefix: string): Promise<FrrPath[]> {
  const r = await frr.json<{ paths?: FrrPath[] }>(`show bgp ${family} unicast ${prefix} json`);
  return r.paths ?? [];
}

/** FRR's config: one `router bgp` with one neighbour (us) and the networks it originates. */
function frrConfig(o: {
  as: number;
  routerId: string;
  self: string;
  ourPort: number;
  v4: string[];
  v6: string[];
  /** route-map applied to the IPv4 networks (local-pref and community on iBGP). */
  v4Map?: string;
}): string {
  const nb = US;
  return [
    'frr defaults traditional',
    `hostname frr-${o.routerId}`,
    'route-map NH6 permit 10',
    ` set ipv6 next-hop global 2001:db8::${o.routerId.split('.')[3]}`,
    'exit',
    'route-map ORIG permit 10',
    ' set local-preference 200',
    ' set community 65000:7',
    'exit',
    `router bgp ${o.as}`,
    ` bgp router-id ${o.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    ` neighbor ${nb} remote-as ${AS}`,
    ` neighbor ${nb} port ${o.ourPort}`,
    ` neighbor ${nb} update-source ${o.self}`,
    ...(o.as === AS ? [] : [` neighbor ${nb} ebgp-multihop 255`]),
    ` neighbor ${nb} timers connect 1`,
    ` neighbor ${nb} advertisement-interval 0`,
    ' address-family ipv4 unicast',
    ...o.v4.map((p) => `  network ${p}${o.v4Map ? ` route-map ${o.v4Map}` : ''}`),
    `  neighbor ${nb} activate`,
    ' exit-address-family',
    ' address-family ipv6 unicast',
    ...o.v6.map((p) => `  network ${p}`),
    `  neighbor ${nb} activate`,
    `  neighbor ${nb} route-map NH6 out`,
    ' exit-address-family',
    '',
  ].join('\n');
}

describeWith([command(FRR_BGPD)], 'interop with FRR 8.4 bgpd', () => {
  const tmp = tempDir('frr');
  let speaker: BgpSpeaker;
  let frrE: Frr;
  let frrI1: Frr;
  let frrI2: Frr;

  beforeAll(async () => {
    const [ourPort, eP, i1P, i2P] = [await freePort(), await freePort(), await freePort(), await freePort()];
    speaker = new BgpSpeaker(
      { routerId: '192.0.2.230', asNumber: AS, clusterId: CLUSTER, listen: { address: US, port: ourPort } },
      { logger: pino({ level: process.env['BGP_TEST_LOG'] ?? 'silent' }) },
    );
    const common = (address: string, port: number, asNumber: number): PeerConfig => ({
      address,
      asNumber,
      port,
      localAddress: US,
      connectRetryTime: 1,
      nextHopV6: '2001:db8::230',
      // FRR rejects loopback next hops as martian; iBGP keeps the originator's next hop.
      exportPolicy: { rules: [{ match: { nextHop: ['127.0.0.0/8'] }, set: { nextHop: '192.0.2.230' } }, {}] },
    });
    speaker.addPeer(common(FRR_E, eP, 4200000023));
    speaker.addPeer({ ...common(FRR_I1, i1P, AS), routeReflectorClient: true });
    speaker.addPeer({ ...common(FRR_I2, i2P, AS), routeReflectorClient: true });
    speaker.originate('198.18.23.0/24', { communities: ['64512:1'], nextHop: '192.0.2.230' });
    speaker.originate('2001:db8:230::/64');
    await speaker.start();
    const base = { ourPort, v6: [] as string[] };
    frrE = await startFrr(
      tmp.dir,
      'frr-e',
      { address: FRR_E, port: eP },
      frrConfig({
        ...base,
        as: 4200000023,
        routerId: '192.0.2.231',
        self: FRR_E,
        v4: ['240.23.1.0/24'],
        v6: ['2001:db8:23::/48'],
      }),
    );
    frrI1 = await startFrr(
      tmp.dir,
      'frr-i1',
      { address: FRR_I1, port: i1P },
      frrConfig({
        ...base,
        as: AS,
        routerId: '192.0.2.232',
        self: FRR_I1,
        v4: ['240.23.2.0/24'],
        v6: ['2001:db8:232::/48'],
        v4Map: 'ORIG',
      }),
    );
    frrI2 = await startFrr(
      tmp.dir,
      'frr-i2',
      { address: FRR_I2, port: i2P },
      frrConfig({ ...base, as: AS, routerId: '192.0.2.233', self: FRR_I2, v4: ['240.23.3.0/24'] }),
    );
  });

  afterAll(async () => {
    await speaker?.stop();
    await frrE?.stop();
    await frrI1?.stop();
    await frrI2?.stop();
    tmp.remove();
  });

  const peer = (a: string) => speaker.status().peers.find((p) => p.address === a)!;
  const established = (a: string) => peer(a).state === 'Established';
  const firstPath = (frr: Frr, family: 'ipv4' | 'ipv6', prefix: string) =>
    waitFor(`${prefix} at FRR`, async () => (await frrPaths(frr, family, prefix))[0]);

  it('establishes eBGP (4-octet AS) and iBGP sessions and receives FRR routes, IPv4 and IPv6', async () => {
    await waitFor(
      'three sessions Established',
      () => established(FRR_E) && established(FRR_I1) && established(FRR_I2),
      30_000,
    );
    await waitFor(
      'FRR routes in our Loc-RIB',
      () => speaker.routes().filter((r) => r.peer !== 'local').length === 5,
    );
    const byPrefix = new Map(speaker.routes().map((r) => [r.prefix, r]));
    expect(byPrefix.get('240.23.1.0/24')).toMatchObject({ asPath: '4200000023', peer: FRR_E, best: true });
    expect(byPrefix.get('2001:db8:23::/48')).toMatchObject({
      asPath: '4200000023',
      nextHop: '2001:db8::231',
    });
    expect(byPrefix.get('240.23.2.0/24')).toMatchObject({
      asPath: '',
      localPref: 200,
      communities: ['65000:7'],
      peer: FRR_I1,
    });
    expect(byPrefix.get('2001:db8:232::/48')).toMatchObject({
      asPath: '',
      nextHop: '2001:db8::232',
      peer: FRR_I1,
    });
    expect(peer(FRR_E).families.sort()).toEqual(['1/1', '2/1']);
  });

  it('sends our routes to FRR: AS prepended on eBGP, LOCAL_PREF 100 and no AS on iBGP, IPv6 next hop', async () => {
    const e = await firstPath(frrE, 'ipv4', '198.18.23.0/24');
    expect(e).toMatchObject({ aspath: { string: '64512' }, valid: true, community: { list: ['64512:1'] } });
    expect(e.nexthops[0]?.ip).toBe('192.0.2.230');
    const e6 = await firstPath(frrE, 'ipv6', '2001:db8:230::/64');
    expect(e6.aspath.string).toBe('64512');
    expect(e6.nexthops[0]?.ip).toBe('2001:db8::230');
    const i = await firstPath(frrI1, 'ipv4', '198.18.23.0/24');
    expect(i).toMatchObject({ aspath: { string: 'Local' }, locPrf: 100 });
    // Locally originated: no reflection attributes.
    expect(i.originatorId).toBeUndefined();
    expect(i.clusterList).toBeUndefined();
    // An eBGP route passed to iBGP clients: our next hop, no reflection attributes either.
    const viaE = await firstPath(frrI1, 'ipv4', '240.23.1.0/24');
    expect(viaE.aspath.string).toBe('4200000023');
    expect(viaE.originatorId).toBeUndefined();
    // An iBGP client's route goes to the eBGP peer with our AS and next hop.
    const fromClient = await firstPath(frrE, 'ipv4', '240.23.2.0/24');
    expect(fromClient.aspath.string).toBe('64512');
    expect(fromClient.nexthops[0]?.ip).toBe('192.0.2.230');
  });

  it('reflects between two FRR clients with ORIGINATOR_ID and our CLUSTER_LIST', async () => {
    const reflected = await firstPath(frrI2, 'ipv4', '240.23.2.0/24');
    expect(reflected).toMatchObject({
      originatorId: '192.0.2.232',
      clusterList: { list: [CLUSTER] },
      locPrf: 200,
      community: { list: ['65000:7'] },
      aspath: { string: 'Local' },
    });
    const reflected6 = await firstPath(frrI2, 'ipv6', '2001:db8:232::/48');
    expect(reflected6).toMatchObject({ originatorId: '192.0.2.232', clusterList: { list: [CLUSTER] } });
    // The other way round.
    const back = await firstPath(frrI1, 'ipv4', '240.23.3.0/24');
    expect(back).toMatchObject({ originatorId: '192.0.2.233', clusterList: { list: [CLUSTER] } });
  });

  it('withdraws a client route at the other client when its FRR goes away', async () => {
    await firstPath(frrI2, 'ipv4', '240.23.2.0/24');
    await frrI1.stop();
    await waitFor('session to FRR i1 down', () => !established(FRR_I1));
    await waitFor(
      'reflected route withdrawn at FRR i2',
      async () => (await frrPaths(frrI2, 'ipv4', '240.23.2.0/24')).length === 0,
    );
    await waitFor('IPv6 too', async () => (await frrPaths(frrI2, 'ipv6', '2001:db8:232::/48')).length === 0);
    // The eBGP peer's withdrawal goes out on its own session: it may land after i2's.
    await waitFor(
      'withdrawn at FRR e',
      async () => (await frrPaths(frrE, 'ipv4', '240.23.2.0/24')).length === 0,
    );
  });
});

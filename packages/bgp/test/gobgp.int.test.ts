/**
 * Interop with GoBGP 3.10: eBGP IPv4 + IPv6, our ROUTE-REFRESH answered, and our own graceful
 * restart (restarting-speaker mode): GoBGP, as helper, keeps our routes while we are down and
 * until our End-of-RIB after we come back with the R bit set.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker } from '../src/index.ts';
import { freePort, type Gobgp, gobgpRibCount, gobgpToml, startGobgp, tempDir, waitFor } from './lab.ts';

const US = '127.0.8.22';
const GOBGP = '127.0.8.23';

describeWith([command('gobgpd'), command('gobgp')], 'interop with GoBGP', () => {
  const tmp = tempDir('gobgp');
  let gobgp: Gobgp;
  let speaker: BgpSpeaker;
  let ourPort = 0;
  let gobgpPort = 0;

  const makeSpeaker = async (restarting: boolean) => {
    const s = new BgpSpeaker({
      routerId: '192.0.2.82',
      asNumber: 4200000082,
      listen: { address: US, port: ourPort },
      gracefulRestart: { restartTime: 60, restarting },
    });
    s.addPeer({
      address: GOBGP,
      asNumber: 65008,
      port: gobgpPort,
      localAddress: US,
      connectRetryTime: 1,
      nextHopV4: '192.0.2.82',
      nextHopV6: '2001:db8::82',
    });
    s.originate('198.18.8.0/24', { largeCommunities: ['4200000082:1:2'] });
    s.originate('2001:db8:8::/64');
    await s.start();
    return s;
  };

  beforeAll(async () => {
    [ourPort, gobgpPort] = [await freePort(), await freePort()];
    gobgp = await startGobgp(
      tmp.dir,
      'gobgp',
      gobgpToml({
        as: 65008,
        routerId: '192.0.2.83',
        port: gobgpPort,
        localAddress: GOBGP,
        neighbor: US,
        peerAs: 4200000082,
        families: ['ipv4', 'ipv6'],
        gracefulRestartHelper: 60,
      }),
    );
    speaker = await makeSpeaker(false);
  });

  afterAll(async () => {
    await speaker?.stop();
    await gobgp?.stop();
    tmp.remove();
  });

  const established = () => speaker.status().peers[0]!.state === 'Established';

  it('exchanges IPv4 and IPv6 routes with a 4-octet AS', async () => {
    await waitFor('Established', established);
    await gobgp.gobgp(
      'global',
      'rib',
      'add',
      '-a',
      'ipv4',
      '198.18.9.0/24',
      'nexthop',
      '192.0.2.83',
      'origin',
      'igp',
    );
    await gobgp.gobgp(
      'global',
      'rib',
      'add',
      '-a',
      'ipv6',
      '2001:db8:9::/64',
      'nexthop',
      '2001:db8::83',
      'origin',
      'igp',
    );
    await waitFor('GoBGP routes at us', () => speaker.routes().filter((r) => r.peer === GOBGP).length === 2);
    expect(speaker.routes({ prefix: '2001:db8:9::/64' })[0]).toMatchObject({
      nextHop: '2001:db8::83',
      asPath: '65008',
    });
    await waitFor(
      'our routes at GoBGP',
      async () => (await gobgpRibCount(gobgp, 'ipv4')) === 2 && (await gobgpRibCount(gobgp, 'ipv6')) === 2,
    );
    const v4 = await gobgp.gobgp('global', 'rib', '-a', 'ipv4', '198.18.8.0/24');
    expect(v4).toContain('4200000082');
    expect(v4).toMatch(/LargeCommunity: \[ 4200000082:1:2\]/);
  });

  it('refreshes routes from GoBGP on request', async () => {
    const before = speaker.status().peers[0]!.received;
    speaker.refresh(GOBGP);
    await waitFor('GoBGP re-sent its routes', () => speaker.status().peers[0]!.received > before);
    expect(established()).toBe(true);
  });

  it('keeps our routes at GoBGP through our graceful restart', async () => {
    await speaker.stop({ graceful: true });
    await waitFor(
      'GoBGP sees the session down',
      async () => !(await gobgp.gobgp('neighbor')).includes('Establ'),
    );
    // Our routes stay (stale) in GoBGP's RIB while we are away.
    expect(await gobgpRibCount(gobgp, 'ipv4')).toBe(2);
    expect(await gobgp.gobgp('global', 'rib', '-a', 'ipv4', '198.18.8.0/24')).toContain('198.18.8.0/24');
    speaker = await makeSpeaker(true);
    await waitFor('Established again', established);
    await waitFor(
      'our routes refreshed, GoBGP routes back',
      () => speaker.routes().filter((r) => r.peer === GOBGP).length === 2,
    );
    expect(await gobgpRibCount(gobgp, 'ipv4')).toBe(2);
  });
});

/**
 * Interop with BIRD 2 on loopback: eBGP with a 4-octet AS and iBGP, IPv4 and IPv6 (MP-BGP),
 * route refresh, graceful restart (BIRD killed and restarted) and hold-timer expiry (SIGSTOP).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker } from '../src/index.ts';
import { type Bird, freePort, startBird, tempDir, waitFor } from './lab.ts';

const US = '127.0.1.22';
const BIRD_E = '127.0.1.21';
const BIRD_I = '127.0.1.23';

describeWith([command('bird'), command('birdc')], 'interop with BIRD 2', () => {
  const tmp = tempDir('bird');
  let bird: Bird;
  let speaker: BgpSpeaker;
  let birdI: Bird;
  let birdConfig = '';
  let birdIConfig = '';

  beforeAll(async () => {
    const [ourPort, ePort, iPort] = [await freePort(), await freePort(), await freePort()];
    birdConfig = `
router id 192.0.2.21;
protocol device {}
protocol static s4 { ipv4; route 240.1.0.0/24 blackhole; route 240.1.1.0/24 blackhole; }
protocol static s6 { ipv6; route 2001:db8:100::/48 blackhole; }
protocol bgp peer_e {
  local ${BIRD_E} port ${ePort} as 4200000001;
  neighbor ${US} port ${ourPort} as 64512;
  multihop; hold time 9; connect delay time 1; connect retry time 2; error wait time 1,2;
  graceful restart on; graceful restart time 8;
  ipv4 { import all; export all; next hop self; };
  ipv6 { import all; export all; next hop address 2001:db8::21; };
}
`;
    // BIRD allows one protocol per neighbour address, so the iBGP side is a second BIRD.
    birdIConfig = `
router id 192.0.2.23;
protocol device {}
protocol static si { ipv4 { import filter { bgp_local_pref = 200; bgp_community.add((65000,7)); accept; }; }; route 240.2.0.0/24 blackhole; }
protocol bgp peer_i {
  local ${BIRD_I} port ${iPort} as 64512;
  neighbor ${US} port ${ourPort} as 64512;
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,2;
  ipv4 { import all; export all; next hop self; };
}
`;
    bird = await startBird(tmp.dir, 'bird', birdConfig);
    birdI = await startBird(tmp.dir, 'bird-i', birdIConfig);
    speaker = new BgpSpeaker(
      { routerId: '192.0.2.22', asNumber: 64512, listen: { address: US, port: ourPort } },
      { logger: pino({ level: process.env['BGP_TEST_LOG'] ?? 'silent' }) },
    );
    speaker.addPeer({
      address: BIRD_E,
      asNumber: 4200000001,
      port: ePort,
      localAddress: US,
      holdTime: 9,
      connectRetryTime: 1,
      nextHopV6: '2001:db8::22',
    });
    speaker.addPeer({
      address: BIRD_I,
      asNumber: 64512,
      port: iPort,
      localAddress: US,
      holdTime: 9,
      connectRetryTime: 1,
      families: ['ipv4'],
    });
    speaker.originate('198.18.1.0/24', { communities: ['64512:1'] });
    speaker.originate('2001:db8:1::/64');
    await speaker.start();
  });

  afterAll(async () => {
    await speaker?.stop();
    await bird?.stop();
    await birdI?.stop();
    tmp.remove();
  });

  const peer = (a: string) => speaker.status().peers.find((p) => p.address === a)!;
  const established = (a: string) => peer(a).state === 'Established';

  it('establishes eBGP (4-octet AS) and iBGP and exchanges IPv4 and IPv6 routes', async () => {
    await waitFor('both sessions Established', () => established(BIRD_E) && established(BIRD_I));
    await waitFor(
      'BIRD routes in our Loc-RIB',
      () => speaker.routes().filter((r) => r.peer !== 'local').length === 4,
    );
    const byPrefix = new Map(speaker.routes().map((r) => [r.prefix, r]));
    expect(byPrefix.get('240.1.0.0/24')).toMatchObject({ asPath: '4200000001', nextHop: BIRD_E, best: true });
    expect(byPrefix.get('2001:db8:100::/48')).toMatchObject({
      asPath: '4200000001',
      nextHop: '2001:db8::21',
    });
    expect(byPrefix.get('240.2.0.0/24')).toMatchObject({
      asPath: '',
      localPref: 200,
      communities: ['65000:7'],
      peer: BIRD_I,
    });
    // Our routes at BIRD: eBGP with our AS prepended, iBGP with LOCAL_PREF 100.
    const out = await waitFor('our routes at BIRD', async () => {
      const o = await bird.birdc('show', 'route', 'all', '198.18.1.0/24');
      return o.includes('peer_e') ? o : undefined;
    });
    const outI = await waitFor('our routes at the iBGP BIRD', async () => {
      const o = await birdI.birdc('show', 'route', 'all', '198.18.1.0/24');
      return o.includes('peer_i') ? o : undefined;
    });
    expect(outI).toMatch(/BGP.local_pref: 100/);
    expect(outI).toMatch(/BGP.as_path: \n/);
    expect(out).toMatch(/BGP.as_path: 64512/);
    expect(out).toMatch(/BGP.community: \(64512,1\)/);
    expect(await bird.birdc('show', 'route', 'all', '2001:db8:1::/64')).toMatch(/BGP.next_hop: 2001:db8::22/);
    // iBGP routes are not reflected back to the other (non-client) iBGP peer, but eBGP ones are.
    const viaIbgp = await waitFor('eBGP routes passed to iBGP', async () => {
      const o = await birdI.birdc('show', 'route', 'protocol', 'peer_i');
      return o.includes('240.1.0.0/24') ? o : undefined;
    });
    expect(viaIbgp).not.toContain('240.2.0.0/24');
    expect(await bird.birdc('show', 'route', '240.2.0.0/24')).toContain('peer_e'); // iBGP route passed to eBGP
  });

  it('answers a route refresh from BIRD and refreshes from BIRD on request', async () => {
    const before = peer(BIRD_E).received;
    await bird.birdc('reload', 'in', 'peer_e');
    speaker.refresh(BIRD_E);
    await waitFor('re-sent routes counted', () => peer(BIRD_E).received > before);
    expect(established(BIRD_E)).toBe(true);
    expect(speaker.routes({ prefix: '240.1.0.0/24' })).toHaveLength(1);
    // BIRD's reload runs on its own: its table holds our route again once our re-send is in.
    await waitFor('BIRD holding 198.18.1.0/24 from us again', async () =>
      (await bird.birdc('show', 'route', '198.18.1.0/24')).includes('peer_e'),
    );
  });

  it('keeps routes stale through a graceful restart of BIRD and refreshes them after End-of-RIB', async () => {
    const stale: string[] = [];
    await bird.stop(); // SIGKILL: no NOTIFICATION, the TCP connection just closes
    await waitFor('session down with stale routes', () => !established(BIRD_E) && peer(BIRD_E).stale > 0);
    for (const r of speaker.routes()) if (r.stale) stale.push(r.prefix);
    expect(stale.sort()).toEqual(['2001:db8:100::/48', '240.1.0.0/24', '240.1.1.0/24']);
    await bird.restart();
    await waitFor('re-established', () => established(BIRD_E));
    await waitFor(
      'stale routes refreshed',
      () => peer(BIRD_E).stale === 0 && speaker.routes().filter((r) => r.peer === BIRD_E).length === 3,
    );
    expect(speaker.routes().some((r) => r.stale)).toBe(false);
  });

  it('withdraws routes when the hold timer expires (BIRD stopped with SIGSTOP)', async () => {
    await waitFor('Established', () => established(BIRD_E) && established(BIRD_I));
    const started = Date.now();
    bird.signal('SIGSTOP');
    try {
      await waitFor('hold timer expiry', () => !established(BIRD_E), 15_000);
      const elapsed = (Date.now() - started) / 1000;
      expect(elapsed).toBeGreaterThan(5);
      expect(peer(BIRD_E).lastError).toMatch(/^hold timer expired/);
      expect(speaker.routes().filter((r) => r.peer === BIRD_E)).toEqual([]);
      expect(established(BIRD_I)).toBe(true);
    } finally {
      bird.signal('SIGCONT');
    }
    await waitFor('back after SIGCONT', () => established(BIRD_E) && established(BIRD_I), 30_000);
  });

  it('drops stale routes when a restarting peer does not come back within its restart time', async () => {
    await waitFor('Established', () => established(BIRD_E));
    // Established comes before the routes: stop BIRD only once all three have arrived.
    await waitFor(
      '3 routes from the restarting peer',
      () => speaker.routes().filter((r) => r.peer === BIRD_E).length === 3,
    );
    await bird.stop();
    await waitFor('stale', () => peer(BIRD_E).stale === 3);
    const t0 = Date.now();
    await waitFor('stale routes dropped after the 8 s restart time', () => peer(BIRD_E).stale === 0, 20_000);
    expect(Date.now() - t0).toBeGreaterThan(5000);
    expect(speaker.routes().filter((r) => r.peer === BIRD_E)).toEqual([]);
  });
});

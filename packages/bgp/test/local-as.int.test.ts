/**
 * A per-session local AS (BIRD `local as N`, Calico BGPPeer `localASNumber`) against BIRD 2:
 * the peer sees our OPEN in that AS, eBGP routes leave with it prepended, and a peer in that same
 * AS is an iBGP session (LOCAL_PREF sent, nothing prepended) although the speaker's AS differs.
 * Export policy toward the eBGP peer matches LOCAL_PREF (Calico's BGPFilter `priority`) as BIRD's
 * export filters do (LOCAL_PREF itself is still not sent to that peer: unit-tested in rib.test.ts).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker } from '../src/index.ts';
import { type Bird, freePort, startBird, tempDir, waitFor } from './lab.ts';

const US = '127.0.42.1';
const BIRD_E = '127.0.42.11';
const BIRD_I = '127.0.42.12';

describeWith([command('bird'), command('birdc')], 'per-session local AS with BIRD 2', () => {
  const tmp = tempDir('local-as');
  let birdE: Bird;
  let birdI: Bird;
  let speaker: BgpSpeaker;

  beforeAll(async () => {
    const [ourPort, ePort, iPort] = [await freePort(), await freePort(), await freePort()];
    const bird = (local: string, port: number, as: number) => `
router id ${local};
protocol device {}
protocol static orig { ipv4; route 240.42.${as === 65010 ? 1 : 2}.0/24 blackhole; }
protocol bgp p_up {
  local ${local} port ${port} as ${as};
  neighbor ${US} port ${ourPort} as 65099;
  multihop; hold time 9; connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export all; next hop self; };
}
`;
    birdE = await startBird(tmp.dir, 'bird-e', bird(BIRD_E, ePort, 65010));
    birdI = await startBird(tmp.dir, 'bird-i', bird(BIRD_I, iPort, 65099));
    speaker = new BgpSpeaker(
      { routerId: '192.0.2.42', asNumber: 64512, listen: { address: US, port: ourPort } },
      { logger: pino({ level: process.env['BGP_TEST_LOG'] ?? 'silent' }) },
    );
    for (const [address, port, asNumber] of [
      [BIRD_E, ePort, 65010],
      [BIRD_I, iPort, 65099],
    ] as const) {
      speaker.addPeer({
        address,
        port,
        asNumber,
        localAsNumber: 65099,
        localAddress: US,
        connectRetryTime: 1,
        // Toward eBGP: routes of priority LOCAL_PREF 200 are held back.
        ...(address === BIRD_E
          ? { exportPolicy: { rules: [{ match: { localPref: 200 }, action: 'reject' as const }] } }
          : {}),
      });
    }
    speaker.originate('240.42.0.0/24', { nextHop: US });
    speaker.originate('240.42.9.0/24', { nextHop: US, localPref: 200 });
    await speaker.start();
  }, 30_000);

  afterAll(async () => {
    await speaker?.stop();
    await birdE?.stop();
    await birdI?.stop();
    tmp.remove();
  });

  const route = (b: Bird) => b.birdc('show', 'route', '240.42.0.0/24', 'all');

  it('establishes with peers that expect us in the session AS, not the speaker AS', async () => {
    await waitFor('both sessions Established', () =>
      speaker.status().peers.every((p) => p.state === 'Established'),
    );
    expect(await birdE.birdc('show', 'protocols', 'p_up')).toContain('Established');
    expect(await birdI.birdc('show', 'protocols', 'p_up')).toContain('Established');
  });

  it('prepends the session AS toward an eBGP peer', async () => {
    const out = await waitFor('route at the eBGP BIRD', async () => {
      const r = await route(birdE);
      return r.includes('BGP.as_path') ? r : undefined;
    });
    expect(out).toMatch(/BGP\.as_path: 65099\n/);
    expect(out).not.toContain('64512');
  });

  it('matches LOCAL_PREF in eBGP export policy', async () => {
    // The iBGP peer gets the priority-200 route; by then the eBGP peer has had its chance.
    await waitFor('240.42.9.0/24 at the iBGP BIRD', async () =>
      (await birdI.birdc('show', 'route', '240.42.9.0/24')).includes('240.42.9.0/24'),
    );
    await waitFor('240.42.0.0/24 at the eBGP BIRD', async () =>
      (await birdE.birdc('show', 'route', '240.42.0.0/24')).includes('240.42.0.0/24'),
    );
    const table = await birdE.birdc('show', 'route');
    expect(table).toContain('240.42.0.0/24');
    expect(table).not.toContain('240.42.9.0/24');
  });

  it('is iBGP with a peer in the session AS: LOCAL_PREF sent, empty AS path', async () => {
    const out = await waitFor('route at the iBGP BIRD', async () => {
      const r = await route(birdI);
      return r.includes('BGP.as_path') ? r : undefined;
    });
    expect(out).toMatch(/BGP\.as_path: *\n/);
    expect(out).toMatch(/BGP\.local_pref: 100\n/);
    // And the eBGP peer's route reaches the iBGP one with the peer's AS only.
    const fromE = await waitFor('240.42.1.0/24 at the iBGP BIRD', async () => {
      const r = await birdI.birdc('show', 'route', '240.42.1.0/24', 'all');
      return r.includes('BGP.as_path') ? r : undefined;
    });
    expect(fromE).toMatch(/BGP\.as_path: 65010\n/);
  });
});

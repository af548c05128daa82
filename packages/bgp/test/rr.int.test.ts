/**
 * Route reflection (RFC 4456) with three iBGP BIRDs around our speaker: routes from a client are
 * reflected to clients and non-clients with ORIGINATOR_ID and CLUSTER_LIST; routes from a
 * non-client go to clients only.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker } from '../src/index.ts';
import { type Bird, freePort, startBird, tempDir, waitFor } from './lab.ts';

const US = '127.0.10.1';
const CLIENT_A = '127.0.10.11';
const CLIENT_B = '127.0.10.12';
const NON_CLIENT = '127.0.10.13';

describeWith([command('bird'), command('birdc')], 'route reflection with BIRD', () => {
  const tmp = tempDir('rr');
  const birds: Bird[] = [];
  let speaker: BgpSpeaker;

  beforeAll(async () => {
    const ourPort = await freePort();
    speaker = new BgpSpeaker({
      routerId: '192.0.2.100',
      asNumber: 64512,
      listen: { address: US, port: ourPort },
    });
    const peers: [string, string, boolean][] = [
      [CLIENT_A, '240.10.1.0/24', true],
      [CLIENT_B, '240.10.2.0/24', true],
      [NON_CLIENT, '240.10.3.0/24', false],
    ];
    for (const [addr, prefix, client] of peers) {
      const port = await freePort();
      const id = `192.0.2.${addr.split('.')[3]}`;
      birds.push(
        await startBird(
          tmp.dir,
          `bird-${addr}`,
          `
router id ${id};
protocol device {}
protocol static st { ipv4; route ${prefix} blackhole; }
protocol bgp to_rr {
  local ${addr} port ${port} as 64512;
  neighbor ${US} port ${ourPort} as 64512;
  connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export all; next hop self; };
}
`,
        ),
      );
      speaker.addPeer({
        address: addr,
        asNumber: 64512,
        port,
        localAddress: US,
        routeReflectorClient: client,
        connectRetryTime: 1,
        families: ['ipv4'],
      });
    }
    await speaker.start();
  });

  afterAll(async () => {
    await speaker?.stop();
    for (const b of birds) await b.stop();
    tmp.remove();
  });

  const [a, b, n] = [0, 1, 2];
  const show = (i: number, prefix: string) => birds[i]!.birdc('show', 'route', 'all', prefix);

  it('reflects client routes to clients and non-clients with ORIGINATOR_ID and CLUSTER_LIST', async () => {
    await waitFor('all sessions up', () => speaker.status().peers.every((p) => p.state === 'Established'));
    const atB = await waitFor('A’s route at client B', async () => {
      const o = await show(b, '240.10.1.0/24');
      return o.includes('240.10.1.0/24') ? o : undefined;
    });
    expect(atB).toMatch(/BGP.originator_id: 192.0.2.11/);
    expect(atB).toMatch(/BGP.cluster_list: 192.0.2.100/);
    expect(atB).toMatch(/BGP.next_hop: 127.0.10.11/); // reflection keeps the next hop
    const atN = await waitFor('A’s route at the non-client', async () => {
      const o = await show(n, '240.10.1.0/24');
      return o.includes('240.10.1.0/24') ? o : undefined;
    });
    expect(atN).toMatch(/BGP.originator_id: 192.0.2.11/);
  });

  it('reflects non-client routes to clients only', async () => {
    await waitFor('the non-client’s route at client A', async () =>
      (await show(a, '240.10.3.0/24')).includes('240.10.3.0/24'),
    );
    // Never back to the sender, and the only non-client is the sender itself.
    expect(await birds[n]!.birdc('show', 'route', 'protocol', 'to_rr')).not.toContain('240.10.3.0/24');
    expect(speaker.status().peers.find((p) => p.address === NON_CLIENT)!.sent).toBe(2);
  });
});

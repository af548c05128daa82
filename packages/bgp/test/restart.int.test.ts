/**
 * A restarted peer is back to Established whichever side of the pair is passive: our two
 * speakers as a mesh pair (the one with the higher address passive, as Calico's mesh does),
 * restarting each side in turn; and a peer whose old session is half-dead (a frozen BIRD, no FIN,
 * no hold expiry yet) coming back as a new process, which our side takes over at once instead of
 * refusing it until the old session's hold timer expires.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker } from '../src/index.ts';
import { type Bird, freePort, startBird, tempDir, waitFor } from './lab.ts';

const AS = 64512;

describeWith([], 'restarting one speaker of a pair', () => {
  const LOW = '127.0.24.1'; // dials
  const HIGH = '127.0.24.2'; // passive
  let ports: [number, number];
  let low: BgpSpeaker;
  let high: BgpSpeaker;

  const make = async (which: 'low' | 'high') => {
    const [me, other, myPort, otherPort, id] =
      which === 'low'
        ? [LOW, HIGH, ports[0], ports[1], '192.0.2.241']
        : [HIGH, LOW, ports[1], ports[0], '192.0.2.242'];
    const s = new BgpSpeaker({ routerId: id, asNumber: AS, listen: { address: me, port: myPort } });
    s.addPeer({
      address: other,
      asNumber: AS,
      port: otherPort,
      localAddress: me,
      passive: which === 'high',
      connectRetryTime: 1,
      holdTime: 90,
    });
    s.originate(which === 'low' ? '198.51.124.0/24' : '198.51.125.0/24');
    await s.start();
    return s;
  };
  const up = (s: BgpSpeaker) => s.status().peers[0]!.state === 'Established';

  beforeAll(async () => {
    ports = [await freePort(), await freePort()];
    low = await make('low');
    high = await make('high');
    await waitFor('first session', () => up(low) && up(high));
  });

  afterAll(async () => {
    await low?.stop();
    await high?.stop();
  });

  it('the dialling side restarts: the passive side takes its new session', async () => {
    await low.stop();
    await waitFor('passive side noticed', () => !up(high));
    low = await make('low');
    await waitFor('Established again', () => up(low) && up(high));
    await waitFor('routes again', () => high.routes({ prefix: '198.51.124.0/24' }).length === 1);
  });

  it('the passive side restarts after the dialling side failed to reach it several times', async () => {
    await high.stop();
    await waitFor('dialling side noticed', () => !up(low));
    // Let a few ConnectRetry rounds fail against the closed port before coming back.
    const refusedSince = Date.now();
    await waitFor('refused a few times', () => Date.now() - refusedSince > 4000 && !up(low), 10_000);
    high = await make('high');
    await waitFor('Established again', () => up(low) && up(high));
    await waitFor('routes again', () => low.routes({ prefix: '198.51.125.0/24' }).length === 1);
    expect(low.status().peers[0]!.lastError).not.toBeNull();
  });
});

describeWith([command('bird'), command('birdc')], 'a peer back while its old session is half-dead', () => {
  const US = '127.0.24.11';
  const PEER = '127.0.24.12';
  const tmp = tempDir('restart');
  const birds: Bird[] = [];
  let speaker: BgpSpeaker;
  let ourPort = 0;

  const birdConfig = (port: number) => `
router id 192.0.2.249;
protocol device {}
protocol static st { ipv4; route 240.24.1.0/24 blackhole; }
protocol bgp to_us {
  local ${PEER} port ${port} as ${AS};
  neighbor ${US} port ${ourPort} as ${AS};
  hold time 240; connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export all; next hop self; };
}
`;

  beforeAll(async () => {
    ourPort = await freePort();
    speaker = new BgpSpeaker({
      routerId: '192.0.2.248',
      asNumber: AS,
      listen: { address: US, port: ourPort },
    });
    speaker.addPeer({ address: PEER, asNumber: AS, passive: true, holdTime: 240, families: ['ipv4'] });
    await speaker.start();
    birds.push(await startBird(tmp.dir, 'old', birdConfig(await freePort())));
  });

  afterAll(async () => {
    await speaker?.stop();
    for (const b of birds) await b.stop();
    tmp.remove();
  });

  it('replaces the old session with the new one at once', async () => {
    const peer = () => speaker.status().peers[0]!;
    await waitFor('Established with the old BIRD', () => peer().state === 'Established');
    await waitFor('its route', () => speaker.routes({ prefix: '240.24.1.0/24' }).length === 1);
    // Freeze the old BIRD: its kernel keeps the connection open, it sends nothing any more.
    birds[0]!.signal('SIGSTOP');
    // A new BIRD from the same address (its own listening port; it dials us).
    const fresh = await startBird(tmp.dir, 'new', birdConfig(await freePort()));
    birds.push(fresh);
    await waitFor('Established with the new BIRD', async () =>
      /Established/.test(await fresh.birdc('show', 'protocols', 'to_us')),
    );
    expect(peer().state).toBe('Established');
    expect(peer().lastError).toMatch(/new session/);
    await waitFor(
      'route from the new session',
      () => speaker.routes({ prefix: '240.24.1.0/24' }).length === 1,
    );
  });
});

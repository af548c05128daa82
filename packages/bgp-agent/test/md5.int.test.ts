/**
 * TCP-MD5 (RFC 2385) against BIRD through the SocketOptions hook, implemented by
 * @calico-ts/kernel (libc setsockopt via koffi): BIRD dialling our listener, us dialling BIRD,
 * and a wrong key that fails silently except for the kernel's MD5 counters.
 */
import { BgpSpeaker } from '@calico-ts/bgp';
import { tcpMd5Counters } from '@calico-ts/kernel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { type Bird, freePort, startBird, tempDir, waitFor } from '../../bgp/test/lab.ts';
import { kernelSocketOptions } from '../src/index.ts';

describeWith([root(), command('bird'), command('birdc')], 'TCP-MD5 with BIRD', () => {
  const tmp = tempDir('md5');
  let bird: Bird;
  const speakers: BgpSpeaker[] = [];

  beforeAll(async () => {
    const socketOptions = kernelSocketOptions();
    const ports = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
    const [pIn, pOut, pBad, bOut, bIn, bBad] = ports as [number, number, number, number, number, number];
    bird = await startBird(
      tmp.dir,
      'bird',
      `
router id 192.0.2.71;
protocol device {}
protocol static s7 { ipv4; route 240.7.0.0/24 blackhole; }
template bgp t { multihop; connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import all; export all; next hop self; }; }
protocol bgp md5_in from t { local 127.0.7.21 port ${bIn} as 65007; neighbor 127.0.7.22 port ${pIn} as 64512; password "s3cret"; }
protocol bgp md5_out from t { local 127.0.7.23 port ${bOut} as 65007; neighbor 127.0.7.24 port ${pOut} as 64512; password "s3cret"; passive on; }
protocol bgp md5_bad from t { local 127.0.7.25 port ${bBad} as 65007; neighbor 127.0.7.26 port ${pBad} as 64512; password "wrong"; }
`,
    );
    const make = async (addr: string, port: number, peer: string, peerPort: number, passive: boolean) => {
      const s = new BgpSpeaker(
        { routerId: '192.0.2.72', asNumber: 64512, listen: { address: addr, port } },
        { socketOptions },
      );
      s.addPeer({
        address: peer,
        asNumber: 65007,
        port: peerPort,
        localAddress: addr,
        password: 's3cret',
        passive,
        connectRetryTime: 1,
      });
      speakers.push(s);
      await s.start();
      return s;
    };
    await make('127.0.7.22', pIn, '127.0.7.21', bIn, true);
    await make('127.0.7.24', pOut, '127.0.7.23', bOut, false);
    await make('127.0.7.26', pBad, '127.0.7.25', bBad, true);
  });

  afterAll(async () => {
    for (const s of speakers) await s.stop();
    await bird?.stop();
    tmp.remove();
  });

  const state = (i: number) => speakers[i]!.status().peers[0]!.state;

  it('establishes with the key when BIRD connects to our listener and when we connect to BIRD', async () => {
    await waitFor('passive side Established', () => state(0) === 'Established');
    await waitFor('active side Established', () => state(1) === 'Established');
    await waitFor(
      'routes over both',
      () => speakers[0]!.routes().length === 1 && speakers[1]!.routes().length === 1,
    );
  });

  it('never establishes with a wrong key; the kernel counts the MD5 failures', async () => {
    const before = tcpMd5Counters();
    await waitFor('MD5 drops counted', () => {
      const now = tcpMd5Counters();
      return (
        now.failure + now.notFound + now.unexpected > before.failure + before.notFound + before.unexpected
      );
    });
    expect(state(2)).not.toBe('Established');
    expect(await bird.birdc('show', 'protocols', 'md5_bad')).not.toContain('Established');
  });
});

/**
 * TCP-MD5 (RFC 2385) against FRR 8.4's bgpd (started alone, without zebra) through the
 * SocketOptions hook of @calico-ts/kernel: FRR dialling our listener, us dialling FRR, and a wrong
 * key that never establishes while the kernel counts the MD5 failures.
 */
import { BgpSpeaker } from '@calico-ts/bgp';
import { tcpMd5Counters } from '@calico-ts/kernel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { FRR_BGPD, type Frr, freePort, startFrr, tempDir, waitFor } from '../../bgp/test/lab.ts';
import { kernelSocketOptions } from '../src/index.ts';

const FRR = '127.0.24.1';
const IN = '127.0.24.2'; // FRR dials us
const OUT = '127.0.24.3'; // we dial FRR
const BAD = '127.0.24.4'; // FRR dials us with another key

describeWith([root(), command(FRR_BGPD)], 'TCP-MD5 with FRR', () => {
  const tmp = tempDir('frr-md5');
  let frr: Frr;
  const speakers: BgpSpeaker[] = [];

  beforeAll(async () => {
    const socketOptions = kernelSocketOptions();
    const [frrPort, pIn, pOut, pBad] = await Promise.all([1, 2, 3, 4].map(() => freePort()));
    const make = async (addr: string, port: number, passive: boolean) => {
      const s = new BgpSpeaker(
        { routerId: '192.0.2.242', asNumber: 64512, listen: { address: addr, port: port! } },
        { socketOptions },
      );
      s.addPeer({
        address: FRR,
        asNumber: 65024,
        port: frrPort!,
        localAddress: addr,
        password: 's3cret',
        passive,
        connectRetryTime: 1,
        families: ['ipv4'],
      });
      speakers.push(s);
      await s.start();
    };
    await make(IN, pIn!, true);
    await make(OUT, pOut!, false);
    await make(BAD, pBad!, true);
    const neighbor = (addr: string, port: number, password: string, passive: boolean) => [
      ` neighbor ${addr} remote-as 64512`,
      ` neighbor ${addr} port ${port}`,
      ` neighbor ${addr} update-source ${FRR}`,
      ` neighbor ${addr} ebgp-multihop 255`,
      ` neighbor ${addr} timers connect 1`,
      ` neighbor ${addr} password ${password}`,
      ...(passive ? [` neighbor ${addr} passive`] : []),
    ];
    frr = await startFrr(
      tmp.dir,
      'frr',
      { address: FRR, port: frrPort! },
      [
        'frr defaults traditional',
        'hostname frr-md5',
        'router bgp 65024',
        ' bgp router-id 192.0.2.241',
        ' no bgp ebgp-requires-policy',
        ' no bgp network import-check',
        ...neighbor(IN, pIn!, 's3cret', false),
        ...neighbor(OUT, pOut!, 's3cret', true),
        ...neighbor(BAD, pBad!, 'wrong', false),
        ' address-family ipv4 unicast',
        '  network 240.24.0.0/24',
        ' exit-address-family',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    for (const s of speakers) await s.stop();
    await frr?.stop();
    tmp.remove();
  });

  const state = (i: number) => speakers[i]!.status().peers[0]!.state;
  const frrState = async (addr: string) =>
    (await frr.json<{ peers?: Record<string, { state?: string }> }>('show bgp ipv4 unicast summary json'))
      .peers?.[addr]?.state;

  it('establishes with the key when FRR connects to our listener and when we connect to FRR', async () => {
    await waitFor('passive side Established', () => state(0) === 'Established', 30_000);
    await waitFor('active side Established', () => state(1) === 'Established', 30_000);
    expect(await frrState(IN)).toBe('Established');
    expect(await frrState(OUT)).toBe('Established');
    await waitFor(
      "FRR's route over both",
      () => speakers[0]!.routes().length === 1 && speakers[1]!.routes().length === 1,
    );
    expect(speakers[0]!.routes()[0]).toMatchObject({ prefix: '240.24.0.0/24', asPath: '65024' });
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
    expect(await frrState(BAD)).not.toBe('Established');
  });
});

/**
 * Mixed route reflection (RFC 4456), each side checking the ORIGINATOR_ID and CLUSTER_LIST it
 * receives: our speaker reflecting between a BIRD client and a GoBGP client, and a BIRD reflector
 * with two of our speakers as its clients.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker } from '../src/index.ts';
import {
  type Bird,
  freePort,
  type Gobgp,
  gobgpToml,
  startBird,
  startGobgp,
  tempDir,
  waitFor,
} from './lab.ts';

const AS = 64512;

interface GobgpPath {
  nlri: { prefix: string };
  attrs: { type: number; value?: unknown }[];
}

describeWith(
  [command('bird'), command('birdc'), command('gobgpd'), command('gobgp')],
  'our reflector between a BIRD client and a GoBGP client',
  () => {
    const US = '127.0.22.1';
    const BIRD = '127.0.22.11';
    const GOBGP = '127.0.22.12';
    const CLUSTER = '10.255.22.1';
    const tmp = tempDir('rr-interop');
    let bird: Bird;
    let gobgp: Gobgp;
    let rr: BgpSpeaker;

    beforeAll(async () => {
      const [ourPort, birdPort, gobgpPort] = [await freePort(), await freePort(), await freePort()];
      rr = new BgpSpeaker({
        routerId: '192.0.2.220',
        asNumber: AS,
        clusterId: CLUSTER,
        listen: { address: US, port: ourPort },
      });
      bird = await startBird(
        tmp.dir,
        'bird-client',
        `
router id 192.0.2.221;
protocol device {}
protocol static st { ipv4; route 240.22.1.0/24 blackhole; }
protocol bgp to_rr {
  local ${BIRD} port ${birdPort} as ${AS};
  neighbor ${US} port ${ourPort} as ${AS};
  connect delay time 1; connect retry time 1; error wait time 1,2;
  # GoBGP refuses loopback next hops ("invalid nexthop address").
  ipv4 { import all; export all; next hop address 192.0.2.221; add paths rx; };
}
`,
      );
      gobgp = await startGobgp(
        tmp.dir,
        'gobgp-client',
        gobgpToml({
          as: AS,
          routerId: '192.0.2.222',
          port: gobgpPort,
          localAddress: GOBGP,
          neighbor: US,
          peerAs: AS,
          families: ['ipv4'],
        }),
      );
      for (const [address, port] of [
        [BIRD, birdPort],
        [GOBGP, gobgpPort],
      ] as const) {
        rr.addPeer({
          address,
          asNumber: AS,
          port,
          localAddress: US,
          routeReflectorClient: true,
          connectRetryTime: 1,
          families: ['ipv4'],
        });
      }
      await rr.start();
    });

    afterAll(async () => {
      await rr?.stop();
      await bird?.stop();
      await gobgp?.stop();
      tmp.remove();
    });

    it('each client learns the other’s route with ORIGINATOR_ID and our CLUSTER_LIST', async () => {
      await waitFor('both sessions up', () => rr.status().peers.every((p) => p.state === 'Established'));
      await gobgp.gobgp('global', 'rib', 'add', '-a', 'ipv4', '240.22.2.0/24', 'nexthop', '192.0.2.222');
      const atBird = await waitFor('GoBGP’s route at BIRD', async () => {
        const o = await bird.birdc('show', 'route', 'all', '240.22.2.0/24');
        return o.includes('240.22.2.0/24') ? o : undefined;
      });
      expect(atBird).toMatch(/BGP.originator_id: 192.0.2.222/);
      expect(atBird).toMatch(new RegExp(`BGP.cluster_list: ${CLUSTER.replaceAll('.', '\\.')}\\s`));
      expect(atBird).toMatch(/BGP.next_hop: 192.0.2.222/); // reflection keeps the next hop
      const atGobgp = await waitFor('BIRD’s route at GoBGP', async () => {
        const rib = await gobgp.json<Record<string, GobgpPath[]>>('global', 'rib', '-a', 'ipv4');
        return rib['240.22.1.0/24']?.[0];
      });
      expect(atGobgp.attrs.find((a) => a.type === 3)).toMatchObject({ nexthop: '192.0.2.221' });
      const attr = (type: number) => atGobgp.attrs.find((a) => a.type === type);
      expect(attr(9)).toMatchObject({ value: '192.0.2.221' }); // ORIGINATOR_ID
      expect(JSON.stringify(attr(10))).toContain(CLUSTER); // CLUSTER_LIST
      expect(JSON.stringify(attr(10))).toMatch(/\[\s*"10\.255\.22\.1"\s*\]/);
    });

    it('withdraws through the reflector', async () => {
      await gobgp.gobgp('global', 'rib', 'del', '-a', 'ipv4', '240.22.2.0/24');
      await waitFor(
        'withdrawn at BIRD',
        async () => !(await bird.birdc('show', 'route')).includes('240.22.2.0/24'),
      );
    });

    it('sends BIRD (add paths rx) both paths of a prefix two clients announce', async () => {
      // A third client, our own speaker, announces the prefix GoBGP announces too.
      const ours = new BgpSpeaker({ routerId: '192.0.2.223', asNumber: AS, listen: false });
      ours.addPeer({
        address: US,
        asNumber: AS,
        port: rr.listenPort!,
        localAddress: '127.0.22.13',
        nextHopV4: '192.0.2.223',
        connectRetryTime: 1,
        families: ['ipv4'],
      });
      rr.addPeer({ address: '127.0.22.13', asNumber: AS, passive: true, routeReflectorClient: true });
      try {
        await ours.start();
        ours.originate('240.22.9.0/24');
        await gobgp.gobgp('global', 'rib', 'add', '-a', 'ipv4', '240.22.9.0/24', 'nexthop', '192.0.2.222');
        const out = await waitFor('two paths at BIRD', async () => {
          const o = await bird.birdc('show', 'route', 'all', '240.22.9.0/24').catch(() => '');
          return (o.match(/BGP.originator_id/g) ?? []).length === 2 ? o : undefined;
        });
        expect(out).toContain('BGP.originator_id: 192.0.2.222');
        expect(out).toContain('BGP.originator_id: 192.0.2.223');
      } finally {
        await ours.stop();
        rr.removePeer('127.0.22.13');
        await gobgp.gobgp('global', 'rib', 'del', '-a', 'ipv4', '240.22.9.0/24');
      }
    });
  },
);

describeWith([command('bird'), command('birdc')], 'a BIRD reflector with our speakers as clients', () => {
  const RR = '127.0.23.1';
  const CLIENTS = [
    { addr: '127.0.23.11', id: '192.0.2.231', prefix: '240.23.1.0/24' },
    { addr: '127.0.23.12', id: '192.0.2.232', prefix: '240.23.2.0/24' },
  ];
  const CLUSTER = '10.255.23.1';
  const tmp = tempDir('bird-rr');
  let bird: Bird;
  const speakers: BgpSpeaker[] = [];

  beforeAll(async () => {
    const rrPort = await freePort();
    const ports = [await freePort(), await freePort()];
    const protocols = CLIENTS.map(
      (c, i) => `
protocol bgp client${i} {
  local ${RR} port ${rrPort} as ${AS};
  neighbor ${c.addr} port ${ports[i]} as ${AS};
  rr client; rr cluster id ${CLUSTER};
  connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export all; };
}`,
    );
    bird = await startBird(
      tmp.dir,
      'bird-rr',
      `router id 192.0.2.230;\nprotocol device {}\n${protocols.join('\n')}\n`,
    );
    for (const [i, c] of CLIENTS.entries()) {
      const s = new BgpSpeaker({
        routerId: c.id,
        asNumber: AS,
        listen: { address: c.addr, port: ports[i]! },
      });
      s.addPeer({
        address: RR,
        asNumber: AS,
        port: rrPort,
        localAddress: c.addr,
        connectRetryTime: 1,
        families: ['ipv4'],
      });
      s.originate(c.prefix);
      speakers.push(s);
    }
    await Promise.all(speakers.map((s) => s.start()));
  });

  afterAll(async () => {
    for (const s of speakers) await s.stop();
    await bird?.stop();
    tmp.remove();
  });

  it('each of our clients gets the other’s route with ORIGINATOR_ID and BIRD’s CLUSTER_LIST', async () => {
    for (const [i, s] of speakers.entries()) {
      const other = CLIENTS[1 - i]!;
      const r = await waitFor(`${other.prefix} at client ${i}`, () => s.locRib.get(other.prefix)?.best);
      expect(r.attrs.originatorId).toBe(other.id);
      expect(r.attrs.clusterList).toEqual([CLUSTER]);
      expect(r.attrs.nextHop).toBe(other.addr);
    }
    const atRr = await bird.birdc('show', 'route', 'all', CLIENTS[0]!.prefix);
    expect(atRr).toMatch(/BGP.next_hop: 127.0.23.11/);
  });
});

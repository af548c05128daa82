// BGP memory per route, in bytes of V8 heap after a full GC: one BgpSpeaker in this process,
// fed over loopback TCP by raw senders writing pre-encoded UPDATEs (so the senders cost nothing
// in the speaker's heap), each scenario in its own child process started with --expose-gc:
//   one-session: 1 eBGP peer × 100,000 /32 in, nothing out (bgp.bench.ts's workload);
//   fan-in:      10 eBGP peers × 10,000 /32 in and a monitor peer, every route out to all 11
//                (bgp-fanin.bench.ts's workload; the 11 sessions form one update group).
// The figure is (heap after − heap before the routes) ÷ routes received, with the speaker's
// Loc-RIB, Adj-RIB-In and the group's Adj-RIB-Out all live. It complements the RSS comparisons
// with BIRD and FRR in the two benches named above, which include the runtime.
// `cd bench && node --conditions=@calico-ts/source bgp-heap.bench.ts`.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { BgpSpeaker, encodeKeepalive, encodeOpen, packUpdates } from '@calico-ts/bgp';

const SCENARIOS = {
  'one-session': { peers: 1, prefixes: 100_000, monitor: false },
  'fan-in': { peers: 10, prefixes: 10_000, monitor: true },
} as const;
type Scenario = keyof typeof SCENARIOS;
const TARGET = '127.0.27.1';
const senderAddr = (i: number) => `127.0.27.${11 + i}`;
const MONITOR = '127.0.27.100';

async function child(name: Scenario): Promise<void> {
  const { peers, prefixes, monitor } = SCENARIOS[name];
  const gc = (globalThis as { gc?: () => void }).gc!;
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, TARGET, r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const target = new BgpSpeaker({
    routerId: '192.0.2.1',
    asNumber: 64512,
    listen: { address: TARGET, port },
  });
  for (let i = 0; i < peers; i++)
    target.addPeer({ address: senderAddr(i), asNumber: 65001 + i, passive: true, families: ['ipv4'] });
  if (monitor) target.addPeer({ address: MONITOR, asNumber: 65200, passive: true, families: ['ipv4'] });
  await target.start();
  const updates: Uint8Array[][] = [];
  for (let i = 0; i < peers; i++) {
    const routes: { prefix: string }[] = [];
    for (let k = 0; k < prefixes; k++) {
      const a = ((240 << 24) + i * 65536 + k) >>> 0;
      routes.push({ prefix: `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/32` });
    }
    updates.push(
      packUpdates({
        afi: 1,
        safi: 1,
        attributes: { origin: 0, asPath: [{ type: 2, asns: [65001 + i] }] },
        nextHop: senderAddr(i),
        routes,
        ctx: { fourOctetAs: true },
      }),
    );
  }
  const sockets: net.Socket[] = [];
  const open = (addr: string, as: number, send: Uint8Array[]) => {
    const s = net.connect({ host: TARGET, port, localAddress: addr });
    s.on('error', () => {});
    s.on('connect', () => {
      s.write(
        encodeOpen({
          myAs: as,
          holdTime: 90,
          bgpId: addr,
          capabilities: [
            { kind: 'multiprotocol', afi: 1, safi: 1 },
            { kind: 'four-octet-as', asNumber: as },
          ],
        }),
      );
      s.write(encodeKeepalive());
    });
    sockets.push(s);
    return { s, send };
  };
  const conns = [
    ...(monitor ? [open(MONITOR, 65200, [])] : []),
    ...updates.map((u, i) => open(senderAddr(i), 65001 + i, u)),
  ];
  const deadline = Date.now() + 60_000;
  const until = async (what: string, ok: () => boolean) => {
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await until('sessions', () => target.status().peers.every((p) => p.state === 'Established'));
  gc();
  gc();
  const before = process.memoryUsage();
  const cpu0 = process.cpuUsage();
  for (const c of conns) for (const m of c.send) c.s.write(m);
  const total = peers * prefixes;
  await until('routes in', () => target.locRib.size === total);
  if (monitor)
    await until('routes out', () => target.status().peers.every((p) => p.sent >= total - prefixes));
  const cpu = process.cpuUsage(cpu0);
  gc();
  gc();
  const after = process.memoryUsage();
  const groups = target.updateGroups();
  process.stdout.write(
    `${JSON.stringify({
      name,
      routes: total,
      heapBytesPerRoute: Math.round((after.heapUsed - before.heapUsed) / total),
      heapMb: (after.heapUsed - before.heapUsed) / 1048576,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      groups: groups.map((g) => ({ members: g.members.length, paths: g.routes })),
    })}\n`,
  );
  for (const s of sockets) s.destroy();
  await target.stop();
}

function main(): void {
  const rows: string[] = [];
  for (const name of Object.keys(SCENARIOS) as Scenario[]) {
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', '--conditions=@calico-ts/source', fileURLToPath(import.meta.url), name],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`);
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      routes: number;
      heapBytesPerRoute: number;
      heapMb: number;
      cpuSeconds: number;
      groups: { members: number; paths: number }[];
    };
    const g = m.groups.map((x) => `${x.members} peer(s), ${x.paths} paths`).join('; ');
    rows.push(
      `| ${name} | ${m.routes} | ${m.heapBytesPerRoute} | ${m.heapMb.toFixed(1)} MB | ${m.cpuSeconds.toFixed(2)} s | ${g} |`,
    );
  }
  process.stdout.write(
    `\nBGP heap per route (${new Date().toISOString()})\n\n| scenario | routes | heap bytes / route | heap | CPU | update groups |\n| --- | ---: | ---: | ---: | ---: | --- |\n${rows.join('\n')}\n`,
  );
}

const arg = process.argv[2];
if (arg) await child(arg as Scenario);
else main();
process.exit(0);

import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  createNamespace,
  deleteNamespace,
  execInNamespace,
  isKernelError,
  Netlink,
  type NetlinkEvent,
  type NetNamespace,
  waitFor,
} from '../src/index.ts';

const prefix = runPrefix('kt');
/** rtm_protocol values used here: Felix's own (80) and RTPROT_BOOT (3), the kernel's default. */
const CALICO_PROTOCOL = 80;
const RTPROT_BOOT = 3;
const names = { n1: `${prefix}-n1`, n2: `${prefix}-n2` };

/**
 * Whether this kernel can make ipip links, asked of iproute2 rather than of the code under test
 * (`Unknown device type` without the module).
 */
function kernelCanMakeIpip(namespace: string): boolean {
  const probe = `${prefix}probe`;
  try {
    execFileSync('ip', ['-n', namespace, 'link', 'add', probe, 'type', 'ipip'], { stdio: 'pipe' });
  } catch {
    return false;
  }
  execFileSync('ip', ['-n', namespace, 'link', 'del', probe]);
  return true;
}

async function ping(ns: NetNamespace, ip: string): Promise<boolean> {
  const r = await execInNamespace(ns, 'ping', ['-c', '1', '-W', '1', ip]);
  return r.exitCode === 0;
}

describeWith([root(), command('ip'), command('ping')], 'netlink in namespaces', () => {
  let n1: NetNamespace;
  let n2: NetNamespace;
  let nl1: Netlink;
  let nl2: Netlink;

  beforeAll(async () => {
    n1 = await createNamespace(names.n1);
    n2 = await createNamespace(names.n2);
    nl1 = Netlink.open(n1);
    nl2 = Netlink.open(n2);
    await nl1.setLink('lo', { up: true });
    await nl2.setLink('lo', { up: true });
  });

  afterAll(async () => {
    nl1?.close();
    nl2?.close();
    n1?.close();
    n2?.close();
    await deleteNamespace(names.n1, { ifExists: true });
    await deleteNamespace(names.n2, { ifExists: true });
  });

  describe('links and addresses', () => {
    it('creates a veth pair with the peer directly in another namespace and pings across it', async () => {
      const host = await nl1.createVeth({
        name: `${prefix}h`,
        mtu: 1450,
        mac: 'ee:ee:ee:ee:ee:ee',
        peer: { name: 'eth0', namespace: n2, mac: '02:00:00:00:00:02' },
      });
      expect(host.kind).toBe('veth');
      expect(host.mtu).toBe(1450);
      expect(host.mac).toBe('ee:ee:ee:ee:ee:ee');
      const peer = await nl2.getLink('eth0');
      expect(peer.mac).toBe('02:00:00:00:00:02');
      expect(peer.kind).toBe('veth');
      expect(await nl1.findLink('eth0')).toBeUndefined();

      await nl1.addAddress(host.index, '198.51.100.1/24');
      await nl2.addAddress('eth0', '198.51.100.2/24');
      await nl1.addAddress(host.index, '2001:db8:1::1/64', { nodad: true });
      await nl2.addAddress('eth0', '2001:db8:1::2/64', { nodad: true });
      await nl1.setLink(host.index, { up: true });
      await nl2.setLink('eth0', { up: true });
      expect((await nl1.getLink(host.index)).up).toBe(true);

      const addrs = await nl2.listAddresses({ dev: 'eth0' });
      expect(addrs.map((a) => a.cidr)).toEqual(
        expect.arrayContaining(['198.51.100.2/24', '2001:db8:1::2/64']),
      );
      expect((await nl2.listAddresses({ dev: 'eth0', family: 4 })).map((a) => a.cidr)).toEqual([
        '198.51.100.2/24',
      ]);

      await waitFor(() => ping(n1, '198.51.100.2'), { what: 'IPv4 ping across the veth', timeoutMs: 10_000 });
      await waitFor(() => ping(n1, '2001:db8:1::2'), {
        what: 'IPv6 ping across the veth',
        timeoutMs: 10_000,
      });
    });

    it('reports errno and operation on failure', async () => {
      const err = await nl2.addAddress('eth0', '198.51.100.2/24').catch((e: unknown) => e);
      expect(isKernelError(err, 'Netlink', 'EEXIST')).toBe(true);
      expect((err as Error).message).toBe(
        `EEXIST adding address 198.51.100.2/24 to eth0 in netns ${names.n2}`,
      );
      const missing = await nl2.getLink('nope0').catch((e: unknown) => e);
      expect(isKernelError(missing, 'Netlink', 'ENODEV')).toBe(true);
    });

    it('changes MTU, MAC, name and master, and deletes links', async () => {
      const br = await nl1.createBridge({ name: `${prefix}br` });
      const v = await nl1.createVeth({ name: `${prefix}x`, peer: { name: `${prefix}y` } });
      await nl1.setLink(v.index, { master: br.index, mtu: 1400, mac: '02:11:22:33:44:55' });
      let got = await nl1.getLink(v.index);
      expect(got.masterIndex).toBe(br.index);
      expect(got.mtu).toBe(1400);
      expect(got.mac).toBe('02:11:22:33:44:55');
      await nl1.setLink(v.index, { master: null, name: `${prefix}z` });
      got = await nl1.getLink(v.index);
      expect(got.masterIndex).toBeUndefined();
      expect(got.name).toBe(`${prefix}z`);
      await nl1.deleteLink(`${prefix}z`);
      expect(await nl1.findLink(`${prefix}y`)).toBeUndefined(); // the peer goes with it
      await nl1.deleteLink(br.index);
      await nl1.deleteLink(br.index, { ifExists: true });
    });

    it('creates an IPIP link where the kernel has ipip, and fails with ModuleMissing where it has not', async () => {
      const available = kernelCanMakeIpip(names.n1);
      const outcome = await nl1.createIpip({ name: `${prefix}tun`, local: '198.51.100.1' }).then(
        (link) => ({ link, err: undefined }),
        (err: unknown) => ({ link: undefined, err }),
      );
      if (available) {
        expect(outcome.err).toBeUndefined();
        expect(outcome.link).toMatchObject({ name: `${prefix}tun`, kind: 'ipip' });
        expect(await nl1.findLink(`${prefix}tun`)).toMatchObject({ kind: 'ipip' });
        await nl1.deleteLink(`${prefix}tun`);
      } else {
        expect(outcome.link).toBeUndefined();
        expect(isKernelError(outcome.err, 'ModuleMissing')).toBe(true);
        expect((outcome.err as Error).message).toMatch(/^ipip module not available/);
        expect(await nl1.findLink(`${prefix}tun`)).toBeUndefined();
      }
    });
  });

  describe('routes', () => {
    it('adds routes with protocol, metric, scope and source and reads them back', async () => {
      await nl1.addRoute({
        dst: '10.65.0.0/26',
        gateway: '198.51.100.2',
        protocol: CALICO_PROTOCOL,
        metric: 10,
      });
      await nl1.addRoute({
        dst: '10.65.0.64/32',
        dev: `${prefix}h`,
        protocol: RTPROT_BOOT,
        src: '198.51.100.1',
      });
      await nl1.addRoute({ dst: '10.65.1.0/26', type: 'blackhole', protocol: CALICO_PROTOCOL });
      await nl1.addRoute({
        dst: '10.65.2.0/26',
        type: 'unreachable',
        protocol: CALICO_PROTOCOL,
        table: 100,
      });
      await nl1.addRoute({
        dst: '2001:db8:65::/122',
        gateway: '2001:db8:1::2',
        protocol: CALICO_PROTOCOL,
      });

      const ours = await nl1.listRoutes({ protocol: CALICO_PROTOCOL });
      expect(ours.map((r) => [r.dst, r.type, r.gateway, r.metric])).toEqual(
        expect.arrayContaining([
          ['10.65.0.0/26', 'unicast', '198.51.100.2', 10],
          ['10.65.1.0/26', 'blackhole', undefined, undefined],
          ['2001:db8:65::/122', 'unicast', '2001:db8:1::2', expect.any(Number)],
        ]),
      );
      expect(ours.find((r) => r.dst === '10.65.2.0/26')).toBeUndefined(); // table 100, not main
      const t100 = await nl1.listRoutes({ table: 100 });
      expect(t100.map((r) => [r.dst, r.type, r.protocol])).toEqual([['10.65.2.0/26', 'unreachable', 80]]);

      const [dev] = await nl1.listRoutes({ dst: '10.65.0.64/32' });
      expect(dev?.scope).toBe(253); // link
      expect(dev?.src).toBe('198.51.100.1');
      expect(dev?.protocol).toBe(3);
      // iproute2 agrees.
      const text = execFileSync('ip', ['-n', names.n1, 'route', 'show', 'proto', '80']).toString();
      expect(text).toContain('10.65.0.0/26 via 198.51.100.2');
      expect(text).toContain('blackhole 10.65.1.0/26');

      const dup = await nl1
        .addRoute({ dst: '10.65.0.0/26', gateway: '198.51.100.2', protocol: 80, metric: 10 })
        .catch((e: unknown) => e);
      expect((dup as Error).message).toBe(
        `EEXIST adding route 10.65.0.0/26 via 198.51.100.2 proto 80 in netns ${names.n1}`,
      );
    });

    it('replaces a route in place and deletes routes', async () => {
      await nl1.replaceRoute({ dst: '10.65.0.0/26', type: 'blackhole', protocol: 80, metric: 10 });
      const [r] = await nl1.listRoutes({ dst: '10.65.0.0/26' });
      expect(r?.type).toBe('blackhole');
      await nl1.replaceRoute({ dst: '10.65.3.0/26', gateway: '198.51.100.2', protocol: 80 }); // creates
      expect(await nl1.listRoutes({ dst: '10.65.3.0/26' })).toHaveLength(1);
      await nl1.deleteRoute({ dst: '10.65.3.0/26' });
      await nl1.deleteRoute({ dst: '10.65.3.0/26' }, { ifExists: true });
      const err = await nl1.deleteRoute({ dst: '10.65.3.0/26' }).catch((e: unknown) => e);
      expect(isKernelError(err, 'Netlink', 'ESRCH')).toBe(true);
      await nl1.deleteRoute({ dst: '10.65.2.0/26', type: 'unreachable', table: 100 });
      expect(await nl1.listRoutes({ table: 100 })).toEqual([]);
    });

    it('programs ECMP routes over two next hops', async () => {
      await nl2.addAddress('eth0', '198.51.100.3/24');
      await nl1.addRoute({
        dst: '10.66.0.0/24',
        protocol: 80,
        nexthops: [
          { gateway: '198.51.100.2', dev: `${prefix}h`, weight: 1 },
          { gateway: '198.51.100.3', dev: `${prefix}h`, weight: 3 },
        ],
      });
      const [r] = await nl1.listRoutes({ dst: '10.66.0.0/24' });
      expect(r?.nexthops.map((n) => [n.gateway, n.weight])).toEqual([
        ['198.51.100.2', 1],
        ['198.51.100.3', 3],
      ]);
      const text = execFileSync('ip', ['-n', names.n1, 'route', 'show', '10.66.0.0/24']).toString();
      expect(text).toMatch(/nexthop via 198\.51\.100\.3 dev \S+ weight 3/);
    });
  });

  describe('batches', () => {
    it('adds, replaces and deletes 300 routes in packed sendmsgs, reporting each failure by route and errno', async () => {
      const dst = (i: number) => `10.67.${i >> 8}.${i & 255}/32`;
      // Two failures placed in different sendmsgs (128 messages each): a key that already exists
      // and a gateway with no route to it. Everything around them is still applied.
      await nl1.addRoute({ dst: dst(5), gateway: '198.51.100.2', protocol: CALICO_PROTOCOL });
      const routes = Array.from({ length: 300 }, (_, i) => ({
        dst: dst(i),
        gateway: i === 200 ? '203.0.113.9' : '198.51.100.2',
        dev: `${prefix}h`,
        protocol: CALICO_PROTOCOL,
      }));
      const added = await nl1.addRoutes(routes);
      expect(added).toHaveLength(300);
      const failed = added.flatMap((e, i) => (e ? [[i, e.errno, e.message]] : []));
      expect(failed).toEqual([
        [
          5,
          'EEXIST',
          `EEXIST adding route ${dst(5)} via 198.51.100.2 dev ${prefix}h proto 80 in netns ${names.n1}`,
        ],
        [
          200,
          'ENETUNREACH',
          `ENETUNREACH adding route ${dst(200)} via 203.0.113.9 dev ${prefix}h proto 80 in netns ${names.n1}`,
        ],
      ]);
      // iproute2 sees 299 routes of ours under 10.67/16: all but the unreachable one.
      const shown = () =>
        execFileSync('ip', ['-n', names.n1, 'route', 'show', 'root', '10.67.0.0/16', 'proto', '80'])
          .toString()
          .trim()
          .split('\n')
          .filter(Boolean);
      expect(shown()).toHaveLength(299);
      expect(shown()).not.toContain(`${dst(200).replace('/32', '')} via 203.0.113.9 dev ${prefix}h proto 80`);

      const replaced = await nl1.replaceRoutes(
        routes
          .slice(0, 150)
          .map((r) => ({ dst: r.dst, type: 'blackhole' as const, protocol: CALICO_PROTOCOL })),
      );
      expect(replaced.every((e) => e === undefined)).toBe(true);
      expect(shown().filter((l) => l.startsWith('blackhole'))).toHaveLength(150);

      const strict = await nl1.deleteRoutes([{ dst: dst(200) }, { dst: dst(201) }]);
      expect(strict.map((e) => e?.errno)).toEqual(['ESRCH', undefined]);
      // A delete names the route's type as an add does (the 150 replaced ones are blackholes now).
      const gone = await nl1.deleteRoutes(
        routes.map((r, i) => ({ dst: r.dst, ...(i < 150 ? { type: 'blackhole' as const } : {}) })),
        { ifExists: true },
      );
      expect(gone.every((e) => e === undefined)).toBe(true);
      expect(shown()).toEqual([]);
    });

    it('fails a route naming a device that does not exist alone (ENODEV), and applies the rest', async () => {
      const results = await nl1.addRoutes([
        { dst: '10.68.0.1/32', dev: `${prefix}nope`, protocol: CALICO_PROTOCOL },
        { dst: '10.68.0.2/32', gateway: '198.51.100.2', dev: `${prefix}h`, protocol: CALICO_PROTOCOL },
      ]);
      expect(results.map((e) => e?.message)).toEqual([
        `ENODEV adding route 10.68.0.1/32 dev ${prefix}nope proto 80 in netns ${names.n1}`,
        undefined,
      ]);
      expect((await nl1.listRoutes({ dst: '10.68.0.1/32' })).length).toBe(0);
      expect((await nl1.listRoutes({ dst: '10.68.0.2/32' })).length).toBe(1);
      await nl1.deleteRoutes([{ dst: '10.68.0.2/32' }]);
    });
  });

  describe('neighbours and events', () => {
    it('adds, replaces, lists and deletes permanent ARP and NDP entries', async () => {
      await nl1.addNeighbour(`${prefix}h`, '198.51.100.50', '02:00:00:00:00:50');
      await nl1.addNeighbour(`${prefix}h`, '2001:db8:1::50', '02:00:00:00:00:50');
      await nl1.replaceNeighbour(`${prefix}h`, '198.51.100.50', '02:00:00:00:00:51');
      const list = await nl1.listNeighbours({ dev: `${prefix}h` });
      const v4 = list.find((n) => n.address === '198.51.100.50');
      expect(v4?.mac).toBe('02:00:00:00:00:51');
      expect(v4?.permanent).toBe(true);
      expect(list.find((n) => n.address === '2001:db8:1::50')?.permanent).toBe(true);
      await nl1.deleteNeighbour(`${prefix}h`, '198.51.100.50');
      expect(
        (await nl1.listNeighbours({ family: 4 })).find((n) => n.address === '198.51.100.50'),
      ).toBeUndefined();
    });

    it('delivers link, address and route change events from the namespace', async () => {
      const events: NetlinkEvent[] = [];
      const sub = nl1.subscribe(['link', 'address', 'route'], (e) => events.push(e));
      try {
        const br = await nl1.createBridge({ name: `${prefix}ev` });
        await nl1.addAddress(br.index, '203.0.113.1/32');
        await nl1.addRoute({ dst: '10.67.0.0/26', type: 'blackhole', protocol: 80 });
        await nl1.deleteLink(br.index);
        await waitFor(
          () =>
            events.some((e) => e.kind === 'link' && e.action === 'del' && e.link.name === `${prefix}ev`) &&
            events.some((e) => e.kind === 'address' && e.address.cidr === '203.0.113.1/32') &&
            events.some((e) => e.kind === 'route' && e.action === 'new' && e.route.dst === '10.67.0.0/26'),
          { what: 'change events' },
        );
        expect(events.find((e) => e.kind === 'link' && e.action === 'new')).toBeDefined();
      } finally {
        sub.close();
      }
    });
  });

  describe('VXLAN', () => {
    it('carries packets between two namespaces over a VXLAN device with static FDB and ARP entries', async () => {
      // Underlay: the veth pair above (198.51.100.1 ↔ 198.51.100.2). Calico's shape per node:
      // vxlan device, /32 tunnel address, neighbour + FDB for the remote VTEP, onlink route.
      const vtep = [
        {
          nl: nl1,
          ns: n1,
          under: `${prefix}h`,
          local: '198.51.100.1',
          tun: '10.244.1.0',
          mac: '66:00:00:00:00:01',
          block: '10.244.1.0/26',
        },
        {
          nl: nl2,
          ns: n2,
          under: 'eth0',
          local: '198.51.100.2',
          tun: '10.244.2.0',
          mac: '66:00:00:00:00:02',
          block: '10.244.2.0/26',
        },
      ] as const;
      for (const v of vtep) {
        const dev = await v.nl.createVxlan({
          name: `${prefix}vx`,
          vni: 4096,
          port: 4789,
          local: v.local,
          dev: v.under,
          mac: v.mac,
          learning: false,
          mtu: 1450,
        });
        expect(dev.vxlan).toEqual({
          vni: 4096,
          port: 4789,
          local: v.local,
          learning: false,
          linkIndex: (await v.nl.getLink(v.under)).index,
        });
        await v.nl.addAddress(dev.index, `${v.tun}/32`);
        await v.nl.setLink(dev.index, { up: true });
      }
      for (const [a, b] of [
        [vtep[0], vtep[1]],
        [vtep[1], vtep[0]],
      ] as const) {
        await a.nl.replaceNeighbour(`${prefix}vx`, b.tun, b.mac);
        await a.nl.replaceFdb(`${prefix}vx`, b.mac, b.local);
        await a.nl.replaceRoute({
          dst: b.block,
          gateway: b.tun,
          dev: `${prefix}vx`,
          onlink: true,
          protocol: 80,
        });
      }
      const fdb = await nl1.listFdb({ dev: `${prefix}vx` });
      expect(fdb.find((f) => f.mac === '66:00:00:00:00:02')?.address).toBe('198.51.100.2');
      // A pod-like address in n2's block, reached from n1 through the tunnel.
      await nl2.addAddress('lo', '10.244.2.5/32');
      await waitFor(() => ping(n1, '10.244.2.5'), { what: 'ping over VXLAN', timeoutMs: 10_000 });
      const stats = execFileSync('ip', ['-n', names.n2, '-s', 'link', 'show', `${prefix}vx`]).toString();
      expect(stats).toMatch(/RX:.*\n\s+[1-9]\d*/); // packets really arrived on the VXLAN device
      await nl1.deleteFdb(`${prefix}vx`, '66:00:00:00:00:02', '198.51.100.2');
      expect(
        (await nl1.listFdb({ dev: `${prefix}vx` })).find((f) => f.mac === '66:00:00:00:00:02'),
      ).toBeUndefined();
    });
  });
});

import { describe, expect, it } from 'vitest';
import type { PathAttributes } from '../wire/attributes.ts';
import { AttrInterner, LOCAL_SOURCE, type Route, type RouteSource } from './attr-set.ts';
import { compareRoutes } from './best-path.ts';
import { LocRib } from './loc-rib.ts';
import { CompiledPolicy } from './policy.ts';
import { afterExportPolicy, exportAttributes, importViolation } from './route-rules.ts';

const interner = new AttrInterner();
const src = (peerAddress: string, o: Partial<RouteSource> = {}): RouteSource => ({
  peerAddress,
  peerAs: 65001,
  routerId: peerAddress,
  ibgp: false,
  rrClient: false,
  local: false,
  ...o,
});
const route = (a: Partial<PathAttributes>, source: RouteSource, prefix = '240.0.0.0/24'): Route => ({
  prefix,
  pathId: 0,
  stale: false,
  source,
  attrs: interner.intern({ origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: '192.0.2.9', ...a }),
});
const better = (a: Route, b: Route) => expect(compareRoutes(a, b)).toBeLessThan(0);

describe('best path (bgp-anchors §1.4)', () => {
  const s1 = src('192.0.2.1');
  const s2 = src('192.0.2.2');
  it('orders by LOCAL_PREF, AS_PATH, ORIGIN, MED, eBGP, router ID, CLUSTER_LIST, address', () => {
    better(route({ localPref: 200, asPath: [{ type: 2, asns: [1, 2, 3] }] }, s2), route({}, s1));
    better(route({}, s2), route({ asPath: [{ type: 2, asns: [65001, 2] }] }, s1));
    better(route({ origin: 0 }, s2), route({ origin: 2 }, s1));
    better(route({ med: 5 }, s2), route({ med: 10 }, s1));
    // MED is not compared across neighbour ASes: the router ID decides instead.
    better(route({ med: 10, asPath: [{ type: 2, asns: [65009] }] }, s1), route({ med: 5 }, s2));
    better(route({}, s2), route({}, src('192.0.2.0', { ibgp: true })));
    better(route({}, s1), route({}, s2));
    better(route({ originatorId: '10.0.0.1' }, s2), route({}, s1));
    better(
      route({ clusterList: ['1.1.1.1'] }, src('192.0.2.5', { routerId: '9.9.9.9' })),
      route({ clusterList: ['1.1.1.1', '2.2.2.2'] }, src('192.0.2.4', { routerId: '9.9.9.9' })),
    );
    better(
      route({}, src('192.0.2.9', { routerId: '9.9.9.9' })),
      route({}, src('192.0.2.10', { routerId: '9.9.9.9' })),
    );
  });
  it('with everyPath, reports a change to a path that is not the best as pathsOnly', () => {
    const rib = new LocRib({ everyPath: true });
    const a = route({}, s1);
    rib.add(a);
    const worse = rib.add(route({ origin: 2 }, s2));
    expect(worse).toMatchObject({ best: a, previous: a, pathsOnly: true });
    const plain = new LocRib();
    plain.add(a);
    expect(plain.add(route({ origin: 2 }, s2))).toBeUndefined();
  });
  it('keeps one interned attribute set for equal attributes, and distinct ones for any difference', () => {
    expect(route({}, s1).attrs).toBe(route({}, s2).attrs);
    const variants: Partial<PathAttributes>[] = [
      {},
      { communities: [] },
      { communities: [1] },
      { communities: [1, 2] },
      { communities: [12] },
      { largeCommunities: ['1:2:3'] },
      { clusterList: [] },
      { clusterList: ['10.0.0.1'] },
      { asPath: [] },
      { asPath: [{ type: 2, asns: [65001, 2] }] },
      {
        asPath: [
          { type: 2, asns: [65001] },
          { type: 2, asns: [2] },
        ],
      },
      { asPath: [{ type: 1, asns: [65001] }] },
      { med: 0 },
      { localPref: 0 },
      { aggregator: { asNumber: 1, address: '10.0.0.1' } },
      { originatorId: '10.0.0.1' },
      { atomicAggregate: true },
      { unknown: [{ flags: 0xc0, code: 99, value: Uint8Array.of(1) }] },
    ];
    const sets = variants.map((v) => route(v, s1).attrs);
    expect(new Set(sets).size).toBe(variants.length);
  });
  it('breaks ties on router ID and peer address by numeric value, not text', () => {
    better(route({}, src('9.0.0.1')), route({}, src('10.0.0.1')));
    better(
      route({}, src('192.0.2.10', { routerId: '10.0.0.9' })),
      route({}, src('192.0.2.9', { routerId: '10.0.0.10' })),
    );
    better(
      route({}, src('192.0.2.9', { routerId: '10.0.0.1' })),
      route({}, src('192.0.2.10', { routerId: '10.0.0.1' })),
    );
  });
  it('reports best-path changes and ECMP sets', () => {
    const rib = new LocRib({ multipath: true });
    const a = route({}, s1);
    const b = route({ nextHop: '192.0.2.8' }, s2);
    expect(rib.add(a)?.best).toBe(a);
    const c = rib.add(b);
    expect(c?.best).toBe(a);
    expect(c?.multipath).toEqual([a, b]);
    expect(rib.remove(a.prefix, s1)?.best).toBe(b);
    expect(rib.remove(a.prefix, s2)?.best).toBeUndefined();
    expect(rib.size).toBe(0);
  });
  it('keeps the same decisions when a prefix goes from one path to two and back', () => {
    for (const multipath of [false, true]) {
      const rib = new LocRib({ multipath, everyPath: true });
      const a = route({}, s1);
      const b = route({ nextHop: '192.0.2.8' }, s2);
      const first = rib.add(a);
      expect(first).toMatchObject({ best: a, previous: undefined, multipath: multipath ? [a] : [] });
      expect(rib.get(a.prefix)).toEqual({ paths: [a], best: a, multipath: multipath ? [a] : [] });
      // One path: a recompute changes nothing, reported as pathsOnly with everyPath.
      expect(rib.recompute(a.prefix)).toMatchObject({ best: a, previous: a, pathsOnly: true });
      const second = rib.add(b);
      expect(second?.best).toBe(a);
      expect(second?.multipath).toEqual(multipath ? [a, b] : []);
      expect(second?.pathsOnly).toBe(multipath ? undefined : true);
      expect(rib.get(a.prefix)?.paths).toEqual([a, b]);
      // The best goes: the other path is best alone, and the prefix is one path again.
      const after = rib.remove(a.prefix, s1);
      expect(after).toMatchObject({ best: b, previous: a, multipath: multipath ? [b] : [] });
      expect(rib.get(a.prefix)).toEqual({ paths: [b], best: b, multipath: multipath ? [b] : [] });
      // Replacing the single path (same source and path id) is a change of best.
      const b2 = route({ nextHop: '192.0.2.7' }, s2);
      expect(rib.add(b2)).toMatchObject({ best: b2, previous: b });
      expect(rib.get(a.prefix)?.paths).toEqual([b2]);
      expect(rib.remove(a.prefix, s1)).toBeUndefined();
      expect(rib.remove(a.prefix, s2)).toMatchObject({ best: undefined, previous: b2, multipath: [] });
      expect(rib.size).toBe(0);
      expect([...rib.entries()]).toEqual([]);
    }
  });
});

describe('policy', () => {
  it('matches the route source, interface globs and LOCAL_PREF; prepends an AS sequence', () => {
    const p = new CompiledPolicy({
      rules: [
        { match: { interfaces: ['eth*'] }, action: 'reject' },
        { match: { source: 'peer', localPref: 200 }, set: { prependAsPath: [65000, 65001] } },
        { match: { source: 'local' }, set: { localPref: 300 } },
      ],
      defaultAction: 'reject',
    });
    const a = { origin: 0 as const, asPath: [{ type: 2 as const, asns: [65009] }], nextHop: '192.0.2.1' };
    expect(p.apply('10.0.0.0/24', a, 1, { source: 'local', interface: 'eth0' })).toBeUndefined();
    expect(p.apply('10.0.0.0/24', a, 1, { source: 'local', interface: 'ens3' })).toMatchObject({
      localPref: 300,
    });
    expect(p.apply('10.0.0.0/24', { ...a, localPref: 200 }, 1, { source: 'peer' })?.asPath).toEqual([
      { type: 2, asns: [65000, 65001, 65009] },
    ]);
    expect(p.apply('10.0.0.0/24', { ...a, localPref: 100 }, 1, { source: 'peer' })).toBeUndefined();
    // No context: source and interface matches do not hold.
    expect(p.apply('10.0.0.0/24', a, 1)).toBeUndefined();
  });

  it('matches prefix lists with ge/le, communities, AS path and next hop', () => {
    const p = new CompiledPolicy({
      rules: [
        {
          match: { prefixes: [{ prefix: '10.0.0.0/8', ge: 24, le: 26 }] },
          set: { localPref: 300, addCommunities: ['65000:1'] },
        },
        { match: { communities: ['65000:666'] }, action: 'reject' },
        { match: { asPathRegex: '_65099$' }, action: 'reject' },
        { match: { nextHop: ['198.18.0.0/15'] }, set: { prependAs: { count: 2 } } },
      ],
      defaultAction: 'reject',
    });
    const a = { origin: 0 as const, asPath: [{ type: 2 as const, asns: [65001] }], nextHop: '192.0.2.1' };
    expect(p.apply('10.1.0.0/26', a, 64512)).toMatchObject({
      localPref: 300,
      communities: [65000 * 65536 + 1],
    });
    expect(p.apply('10.1.0.0/27', a, 64512)).toBeUndefined();
    expect(p.apply('10.1.0.0/23', a, 64512)).toBeUndefined();
    expect(p.apply('240.0.0.0/24', { ...a, communities: [65000 * 65536 + 666] }, 64512)).toBeUndefined();
    expect(p.apply('240.0.0.0/24', { ...a, asPath: [{ type: 2, asns: [1, 65099] }] }, 64512)).toBeUndefined();
    expect(p.apply('240.0.0.0/24', { ...a, nextHop: '198.18.1.1' }, 64512)?.asPath).toEqual([
      { type: 2, asns: [64512, 64512, 65001] },
    ]);
  });
  it('names the field of an invalid rule', () => {
    expect(
      () => new CompiledPolicy({ rules: [{ match: { prefixes: [{ prefix: '10.0.0.0/8', ge: 4 }] } }] }),
    ).toThrow(/prefixes\[0\]/);
  });
});

describe('route rules', () => {
  const me = { asNumber: 64512, routerId: '192.0.2.100', clusterId: '192.0.2.100' };
  const target = {
    peerAddress: '192.0.2.50',
    peerAs: 65050,
    ibgp: false,
    rrClient: false,
    selfNextHop: '192.0.2.100',
  };
  it('rejects AS loops and reflected loops', () => {
    expect(importViolation({ asPath: [{ type: 2, asns: [1, 64512] }] }, src('192.0.2.1'), me)).toMatch(
      /loop/,
    );
    expect(importViolation({ originatorId: '192.0.2.100' }, src('192.0.2.1', { ibgp: true }), me)).toMatch(
      /ORIGINATOR/,
    );
  });
  it('allow local as: our AS may appear up to N times in an eBGP path', () => {
    const twice = { asPath: [{ type: 2 as const, asns: [65001, 64512, 64512] }] };
    expect(importViolation(twice, src('192.0.2.1'), me, 1)).toMatch(/loop/);
    expect(importViolation(twice, src('192.0.2.1'), me, 2)).toBeUndefined();
  });
  it('prepends our AS, sets next hop self and strips iBGP attributes towards eBGP', () => {
    const out = exportAttributes(
      route({ localPref: 200, med: 7 }, src('192.0.2.1', { ibgp: true })),
      target,
      me,
    )!;
    expect(out.asPath).toEqual([{ type: 2, asns: [64512, 65001] }]);
    expect(out.nextHop).toBe('192.0.2.100');
    // LOCAL_PREF is still there for export policy to match, and gone once policy has run.
    expect(out.localPref).toBe(200);
    expect(afterExportPolicy(out, target).localPref).toBeUndefined();
    expect(afterExportPolicy(out, { ibgp: true }).localPref).toBe(200);
    expect(out.med).toBeUndefined();
  });
  it('next hop keep: a learned route keeps its next hop towards eBGP, our own routes carry ours', () => {
    const keep = { ...target, nextHopKeep: true };
    expect(exportAttributes(route({}, src('192.0.2.1', { ibgp: true })), keep, me)!.nextHop).toBe(
      '192.0.2.9',
    );
    expect(exportAttributes(route({ asPath: [] }, LOCAL_SOURCE), keep, me)!.nextHop).toBe('192.0.2.100');
  });
  it('strips confederation segments towards eBGP peers', () => {
    const r = route(
      {
        asPath: [
          { type: 3, asns: [65010] },
          { type: 2, asns: [65001] },
        ],
      },
      src('192.0.2.1'),
    );
    expect(exportAttributes(r, target, me)!.asPath).toEqual([{ type: 2, asns: [64512, 65001] }]);
  });

  it('does not pass iBGP routes to iBGP peers unless reflecting, then adds RR attributes', () => {
    const ib = { ...target, peerAs: 64512, ibgp: true };
    const r = route({}, src('192.0.2.1', { ibgp: true, peerAs: 64512 }));
    expect(exportAttributes(r, ib, me)).toBeUndefined();
    const out = exportAttributes(r, { ...ib, rrClient: true }, me)!;
    expect(out.originatorId).toBe('192.0.2.1');
    expect(out.clusterList).toEqual(['192.0.2.100']);
    expect(out.nextHop).toBe('192.0.2.9');
    const local = exportAttributes(route({ asPath: [] }, LOCAL_SOURCE), ib, me)!;
    expect(local).toMatchObject({ localPref: 100, nextHop: '192.0.2.100', asPath: [] });
  });

  it('RFC 4456 §6: client routes go to clients and non-clients, non-client routes to clients only', () => {
    const nonClient = { ...target, peerAs: 64512, ibgp: true, rrClient: false };
    const client = { ...nonClient, rrClient: true };
    const fromClient = route({}, src('192.0.2.1', { ibgp: true, peerAs: 64512, rrClient: true }));
    const fromNonClient = route({}, src('192.0.2.1', { ibgp: true, peerAs: 64512 }));
    expect(exportAttributes(fromClient, client, me)).toBeDefined();
    expect(exportAttributes(fromClient, nonClient, me)).toBeDefined();
    expect(exportAttributes(fromNonClient, client, me)).toBeDefined();
    expect(exportAttributes(fromNonClient, nonClient, me)).toBeUndefined();
    // eBGP-learned routes go to every iBGP peer without reflection attributes.
    const fromEbgp = exportAttributes(route({}, src('192.0.2.1')), nonClient, me)!;
    expect(fromEbgp.originatorId).toBeUndefined();
    expect(fromEbgp.clusterList).toBeUndefined();
  });

  it('RFC 4456 §8: keeps an ORIGINATOR_ID already set and prepends our cluster ID', () => {
    const client = { ...target, peerAs: 64512, ibgp: true, rrClient: true };
    const reflected = route(
      { originatorId: '10.0.0.7', clusterList: ['10.9.9.9'] },
      src('192.0.2.1', { ibgp: true, peerAs: 64512, rrClient: true }),
    );
    const out = exportAttributes(reflected, client, { ...me, clusterId: '10.1.1.1' })!;
    expect(out.originatorId).toBe('10.0.0.7');
    expect(out.clusterList).toEqual(['10.1.1.1', '10.9.9.9']);
  });

  it('RFC 4456 §8: drops a route carrying our cluster ID, or our router ID as ORIGINATOR_ID', () => {
    const rr = { ...me, clusterId: '10.1.1.1' };
    const from = src('192.0.2.1', { ibgp: true, peerAs: 64512 });
    expect(importViolation({ clusterList: ['10.9.9.9', '10.1.1.1'] }, from, rr)).toMatch(/CLUSTER_LIST/);
    expect(importViolation({ originatorId: rr.routerId }, from, rr)).toMatch(/ORIGINATOR_ID/);
    expect(
      importViolation({ originatorId: '10.0.0.7', clusterList: ['10.9.9.9'] }, from, rr),
    ).toBeUndefined();
  });
});

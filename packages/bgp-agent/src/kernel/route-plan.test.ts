import {
  AttrInterner,
  type BestPathChange,
  LOCAL_SOURCE,
  type Route,
  type RouteSource,
} from '@calico-ts/bgp';
import { describe, expect, it } from 'vitest';
import { openKernelExport } from '../daemon/kernel-export.ts';
import { bestPathRoutePlan, learnedNextHops } from './route-plan.ts';

const interner = new AttrInterner();
const peer = (address: string): RouteSource => ({
  peerAddress: address,
  peerAs: 65001,
  routerId: address,
  ibgp: false,
  rrClient: false,
  local: false,
});
const route = (prefix: string, nextHop: string, source = peer(nextHop)): Route => ({
  prefix,
  pathId: 0,
  attrs: interner.intern({ origin: 0, asPath: [], nextHop }),
  source,
  stale: false,
});
const change = (prefix: string, best: Route | undefined, multipath: Route[] = []): BestPathChange => ({
  prefix,
  best,
  previous: undefined,
  multipath,
});

describe('learned best paths for the kernel', () => {
  it('takes the best path’s next hop, or every equal-cost one (sorted, once each)', () => {
    const a = route('10.1.0.0/24', '192.0.2.12');
    const b = route('10.1.0.0/24', '192.0.2.11');
    expect(learnedNextHops(change('10.1.0.0/24', a))).toEqual(['192.0.2.12']);
    expect(learnedNextHops(change('10.1.0.0/24', a, [a, b, route('10.1.0.0/24', '192.0.2.12')]))).toEqual([
      '192.0.2.11',
      '192.0.2.12',
    ]);
  });

  it('has nothing for a prefix without a best path or for our own', () => {
    expect(learnedNextHops(change('10.1.0.0/24', undefined))).toBeUndefined();
    expect(
      learnedNextHops(change('10.1.0.0/24', route('10.1.0.0/24', '0.0.0.0', LOCAL_SOURCE))),
    ).toBeUndefined();
  });

  it('calico-bgpd’s export plan: a route per learned prefix, a removal when it is gone; the last change wins', () => {
    const a = route('10.1.0.0/24', '192.0.2.12');
    const plan = bestPathRoutePlan([
      change('10.1.0.0/24', undefined),
      change('10.1.0.0/24', a),
      change('10.2.0.0/24', a),
      change('10.2.0.0/24', undefined),
      change('10.3.0.0/24', route('10.3.0.0/24', '0.0.0.0', LOCAL_SOURCE)),
    ]);
    expect(plan).toEqual({
      replace: [{ dst: '10.1.0.0/24', type: 'unicast', nexthops: [{ gateway: '192.0.2.12' }] }],
      remove: [{ dst: '10.2.0.0/24' }, { dst: '10.3.0.0/24' }],
    });
  });

  it('opens no kernel export unless kernel.export is on', async () => {
    expect(await openKernelExport({ export: false, table: 254, protocol: 80 })).toBeUndefined();
  });
});

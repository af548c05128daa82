import { describe, expect, it } from 'vitest';
import { DatastoreReachability, HealthAggregator, loopLiveness } from './health.ts';

describe('DatastoreReachability', () => {
  it('makes calico-node not ready while the datastore does not answer, and ready again once it does', async () => {
    let up = true;
    const reach = new DatastoreReachability(async () => {
      if (!up) throw new Error('connect ECONNREFUSED 198.51.100.1:2379');
    });
    const health = new HealthAggregator();
    health.register('datastore', () => reach.report());
    await reach.checkNow();
    expect(health.summary()).toMatchObject({ live: true, ready: true });
    up = false;
    await reach.checkNow();
    expect(health.summary().ready).toBe(false);
    expect(health.summary().live).toBe(true);
    expect(health.summary().components['datastore']?.detail).toContain('ECONNREFUSED');
    up = true;
    await reach.checkNow();
    expect(health.summary().ready).toBe(true);
  });

  it('counts a check that hangs past its timeout as unreachable', async () => {
    const reach = new DatastoreReachability(() => new Promise(() => undefined), { timeoutMs: 20 });
    await reach.checkNow();
    expect(reach.report()).toMatchObject({
      ready: false,
      detail: 'datastore unreachable: no answer within 20 ms',
    });
  });
});

describe('loopLiveness (the watchdog over a loop)', () => {
  it('is live while idle or within the timeout, and not live past it, saying which loop', () => {
    expect(loopLiveness('BGP agent apply loop', undefined, 1000)).toEqual({ live: true });
    expect(loopLiveness('BGP agent apply loop', 1000, 1000)).toEqual({ live: true });
    const stalled = loopLiveness('BGP agent apply loop', 1500.4, 1000);
    expect(stalled.live).toBe(false);
    expect(stalled.detail).toBe(
      'BGP agent apply loop stalled: one pass running for 1500 ms (timeout 1000 ms)',
    );
  });
});

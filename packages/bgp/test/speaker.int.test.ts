/**
 * Two BgpSpeakers on loopback, both active: collision resolution (RFC 4271 §6.8) leaves one
 * session; route exchange, export policy changes at runtime, and removePeer withdrawing routes.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../../../test-support/requirements.ts';
import { type BestPathChange, BgpSpeaker } from '../src/index.ts';
import { freePort, waitFor } from './lab.ts';

const A = '127.0.6.1';
const B = '127.0.6.2';

describeWith([], 'speaker to speaker', () => {
  let a: BgpSpeaker;
  let b: BgpSpeaker;
  const changes: BestPathChange[] = [];

  beforeAll(async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    a = new BgpSpeaker({ routerId: '192.0.2.61', asNumber: 64512, listen: { address: A, port: pa } });
    b = new BgpSpeaker({ routerId: '192.0.2.62', asNumber: 64513, listen: { address: B, port: pb } });
    a.addPeer({ address: B, asNumber: 64513, port: pb, localAddress: A, connectRetryTime: 1 });
    b.addPeer({ address: A, asNumber: 64512, port: pa, localAddress: B, connectRetryTime: 1 });
    b.on('best-path', (c) => changes.push(...c));
    a.originate('198.18.6.0/24', { communities: ['64512:6'] });
    a.originate('198.18.7.0/24');
    await Promise.all([a.start(), b.start()]);
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  const up = () =>
    a.status().peers[0]!.state === 'Established' && b.status().peers[0]!.state === 'Established';

  it('resolves the connection collision and exchanges routes', async () => {
    await waitFor('Established', up);
    await waitFor('routes at b', () => b.routes().length === 2);
    expect(b.routes({ prefix: '198.18.6.0/24' })[0]).toMatchObject({
      asPath: '64512',
      nextHop: A,
      communities: ['64512:6'],
    });
    expect(changes.map((c) => c.prefix).sort()).toEqual(['198.18.6.0/24', '198.18.7.0/24']);
  });

  it('applies an export policy change without resetting the session', async () => {
    const since = a.status().peers[0]!.uptimeSeconds;
    a.updatePeer({
      ...a.peers()[0]!,
      exportPolicy: { rules: [{ match: { prefixes: [{ prefix: '198.18.7.0/24' }] }, action: 'reject' }] },
    });
    await waitFor('198.18.7.0/24 withdrawn at b', () => b.routes().length === 1);
    a.updatePeer({ ...a.peers()[0]!, exportPolicy: { rules: [{ set: { prependAs: { count: 2 } } }] } });
    await waitFor(
      'prepended at b',
      () => b.routes().every((r) => r.asPath === '64512 64512 64512') && b.routes().length === 2,
    );
    expect(up()).toBe(true);
    expect(a.status().peers[0]!.uptimeSeconds).toBeGreaterThanOrEqual(since);
  });

  it('withdraws originated routes and a removed peer', async () => {
    a.withdraw('198.18.6.0/24');
    await waitFor('withdrawn', () => b.routes().length === 1);
    b.removePeer(A);
    await waitFor('b has no peer routes', () => b.routes().length === 0);
    await waitFor('a sees the session drop', () => a.status().peers[0]!.state !== 'Established');
  });
});

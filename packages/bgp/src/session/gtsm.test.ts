import { pino } from 'pino';
import { expect, it } from 'vitest';
import { ManualClock } from '../fsm/clock.ts';
import { Session, type SessionConfig } from './session.ts';
import type { ConnectOptions, SocketOptions } from './socket-options.ts';

/** The options a session dials with, recorded by a SocketOptions that refuses every connection. */
async function dialOptions(config: Pick<SessionConfig, 'gtsm' | 'gtsmHops'>): Promise<ConnectOptions> {
  let seen: ConnectOptions | undefined;
  const socketOptions: SocketOptions = {
    connect: async (opts) => {
      seen = opts;
      throw new Error('refused');
    },
    setListenerMd5: () => {},
    setTtl: () => {},
    setMinTtl: () => {},
  };
  const noop = () => {};
  const session = new Session({
    config: {
      peerAddress: '192.0.2.2',
      peerAs: 65002,
      port: 179,
      localAs: 64512,
      routerId: '192.0.2.1',
      passive: false,
      timers: {},
      capabilities: () => [],
      ...config,
    },
    clock: new ManualClock(),
    handlers: { established: noop, down: noop, update: noop, routeRefresh: noop, stateChanged: noop },
    logger: pino({ level: 'silent' }),
    socketOptions,
  });
  session.start();
  await new Promise((r) => setImmediate(r));
  session.stop();
  if (!seen) throw new Error('the session did not dial');
  return seen;
}

it('GTSM dials with TTL 255 and a minimum TTL of 256 − hops (RFC 5082 §3), 254 when hops are unset', async () => {
  expect(await dialOptions({ gtsm: true, gtsmHops: 1 })).toMatchObject({ ttl: 255, minTtl: 255 });
  expect(await dialOptions({ gtsm: true, gtsmHops: 3 })).toMatchObject({ ttl: 255, minTtl: 253 });
  expect(await dialOptions({ gtsm: true })).toMatchObject({ ttl: 255, minTtl: 254 });
});

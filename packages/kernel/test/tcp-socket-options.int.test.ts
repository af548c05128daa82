import type { Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  connectTcp,
  createNamespace,
  deleteNamespace,
  isKernelError,
  listenTcp,
  Netlink,
  type NetNamespace,
  setIpTtl,
  setTcpMd5Key,
  tcpMd5Counters,
} from '../src/index.ts';

const prefix = runPrefix('kt');
const nsName = `${prefix}-tcp`;

function roundTrip(sock: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    sock.once('data', (d) => {
      resolve(d.toString());
      sock.destroy();
    });
    sock.once('error', reject);
    sock.write('OPEN');
  });
}

describeWith([root(), command('ip')], 'TCP socket options', () => {
  let ns: NetNamespace;

  beforeAll(async () => {
    ns = await createNamespace(nsName);
    const nl = Netlink.open(ns);
    await nl.setLink('lo', { up: true });
    await nl.addAddress('lo', '192.0.2.1/32');
    await nl.addAddress('lo', '2001:db8::1/128', { nodad: true });
    nl.close();
  });

  afterAll(async () => {
    ns?.close();
    await deleteNamespace(nsName, { ifExists: true });
  });

  it('MD5: the right key connects, a missing or wrong key does not', async () => {
    const server = await listenTcp({
      host: '127.0.0.1',
      port: 1179,
      namespace: ns,
      md5Keys: [{ peer: '192.0.2.1', key: 'calico' }],
    });
    server.on('connection', (s) => s.on('data', (d) => s.write(`echo ${d}`)));
    try {
      const before = tcpMd5Counters(ns);
      const good = await connectTcp({
        host: '127.0.0.1',
        port: 1179,
        localAddress: '192.0.2.1',
        md5Key: 'calico',
        namespace: ns,
      });
      expect(good.remoteAddress).toBe('127.0.0.1');
      expect(good.localAddress).toBe('192.0.2.1');
      expect(await roundTrip(good)).toBe('echo OPEN');

      const missing = await connectTcp({
        host: '127.0.0.1',
        port: 1179,
        localAddress: '192.0.2.1',
        namespace: ns,
        timeoutMs: 800,
      }).catch((e: unknown) => e);
      expect(isKernelError(missing, 'Socket', 'ETIMEDOUT')).toBe(true);
      const wrong = await connectTcp({
        host: '127.0.0.1',
        port: 1179,
        localAddress: '192.0.2.1',
        md5Key: 'nope',
        namespace: ns,
        timeoutMs: 800,
      }).catch((e: unknown) => e);
      expect(isKernelError(wrong, 'Socket', 'ETIMEDOUT')).toBe(true);
      const after = tcpMd5Counters(ns);
      // Kernels since 6.7 count an unsigned segment for a keyed peer as NotFound, older ones as Unexpected.
      expect(after.unexpected + after.notFound).toBeGreaterThan(before.unexpected + before.notFound);
      expect(after.failure).toBeGreaterThan(before.failure);
      // The same port in our own namespace: nothing listens there.
      const here = await connectTcp({ host: '127.0.0.1', port: 1179, timeoutMs: 800 }).catch(
        (e: unknown) => e,
      );
      expect(isKernelError(here, 'Socket')).toBe(true);
    } finally {
      server.close();
    }
  });

  it('MD5 on an IPv6 dual-stack listener uses v4-mapped peer keys; keys can be removed', async () => {
    const server = await listenTcp({ host: '::', port: 1180, namespace: ns });
    server.on('connection', (s) => s.on('data', () => s.end('ok')));
    try {
      setTcpMd5Key(server, '192.0.2.1', 'k1');
      setTcpMd5Key(server, '2001:db8::1', 'k6');
      const v4 = await connectTcp({
        host: '127.0.0.1',
        port: 1180,
        localAddress: '192.0.2.1',
        md5Key: 'k1',
        namespace: ns,
      });
      expect(await roundTrip(v4)).toBe('ok');
      const v6 = await connectTcp({
        host: '::1',
        port: 1180,
        localAddress: '2001:db8::1',
        md5Key: 'k6',
        namespace: ns,
      });
      expect(await roundTrip(v6)).toBe('ok');
      setTcpMd5Key(server, '192.0.2.1', undefined);
      const plain = await connectTcp({
        host: '127.0.0.1',
        port: 1180,
        localAddress: '192.0.2.1',
        namespace: ns,
      });
      expect(await roundTrip(plain)).toBe('ok');
    } finally {
      server.close();
    }
  });

  it('GTSM: a listener with min TTL 255 accepts TTL 255 and drops TTL 64', async () => {
    const server = await listenTcp({ host: '127.0.0.1', port: 1181, namespace: ns, minTtl: 255, ttl: 255 });
    server.on('connection', (s) => s.on('data', () => s.end('ok')));
    try {
      const ok = await connectTcp({ host: '127.0.0.1', port: 1181, namespace: ns, ttl: 255, minTtl: 255 });
      expect(await roundTrip(ok)).toBe('ok');
      const low = await connectTcp({
        host: '127.0.0.1',
        port: 1181,
        namespace: ns,
        ttl: 64,
        timeoutMs: 800,
      }).catch((e: unknown) => e);
      expect(isKernelError(low, 'Socket', 'ETIMEDOUT')).toBe(true);
      expect(() => setIpTtl(server, 0)).toThrow(/EINVAL setting TTL 0/);
    } finally {
      server.close();
    }
  });
});

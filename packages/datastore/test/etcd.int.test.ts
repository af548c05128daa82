import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, startEtcd } from '@calico-ts/lab';
import { expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { EtcdDatastore } from '../src/index.ts';
import { datastoreContract, ipPool } from './contract.ts';
import { startTcpProxy } from './tcp-proxy.ts';
import { WatchReader } from './watch-reader.ts';

describeWith([command('etcd')], 'etcd backend', () => {
  datastoreContract(
    'etcd',
    async () => {
      const etcd = await startEtcd();
      const clients: EtcdDatastore[] = [];
      const client = (endpoint = etcd.endpoint): EtcdDatastore => {
        const c = new EtcdDatastore({ endpoints: endpoint, dialTimeoutMs: 2_000, requestTimeoutMs: 5_000 });
        clients.push(c);
        return c;
      };
      const admin = client();
      return {
        client: () => client(),
        compact: (revision) => admin.compact(revision),
        partitionedClient: async () => {
          const proxy = await startTcpProxy(etcd.endpoint);
          const store = client(proxy.endpoint);
          return {
            store,
            cut: () => proxy.cut(),
            heal: () => proxy.heal(),
            close: async () => {
              await store.close();
              await proxy.close();
            },
          };
        },
        kill: () => etcd.kill(),
        restart: () => etcd.start(),
        unreachableClient: async () => {
          const endpoint = `http://127.0.0.1:${await freePort()}`;
          return { store: client(endpoint), endpoint };
        },
        close: async () => {
          for (const c of clients) await c.close();
          await etcd.stop();
        },
      };
    },
    { partition: true, restart: true, unreachable: true },
  );

  it('bookmarks changes under the watched range that are not of the watched kinds', async () => {
    const etcd = await startEtcd();
    const ds = new EtcdDatastore({ endpoints: etcd.endpoint });
    try {
      const { revision } = await ds.list('IPPool');
      // IPPool and Node share only the projectcalico.org prefix, so a BGPPeer write reaches this watch.
      const w = new WatchReader(ds.watch({ kinds: ['IPPool', 'Node'], revision }));
      const peer = await ds.create('BGPPeer', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'BGPPeer',
        metadata: { name: 'rack-1' },
        spec: { peerIP: '192.0.2.1', asNumber: 64512 },
      } as never);
      const first = await w.until(() => true, 15_000, 'bookmark');
      expect(first).toEqual([{ type: 'bookmark', revision: peer.metadata.resourceVersion }]);
      const pool = await ds.create('IPPool', ipPool('after-peer'));
      const read = await w.untilChange('added', 'after-peer');
      expect(read).toEqual([
        { type: 'added', kind: 'IPPool', revision: pool.metadata.resourceVersion, new: pool },
      ]);
      await w.close();
    } finally {
      await ds.close();
      await etcd.stop();
    }
  });

  it('authenticates with a username and password, and says so when they are wrong', async () => {
    const etcd = await startEtcd();
    const etcdctl = (...args: string[]) =>
      execFileSync('etcdctl', ['--endpoints', etcd.endpoint, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
    const good = new EtcdDatastore({ endpoints: etcd.endpoint, username: 'root', password: 'calico-pw' });
    const bad = new EtcdDatastore({ endpoints: etcd.endpoint, username: 'root', password: 'wrong' });
    const anonymous = new EtcdDatastore({ endpoints: etcd.endpoint });
    try {
      etcdctl('user', 'add', 'root:calico-pw');
      etcdctl('auth', 'enable');
      const pool = await good.create('IPPool', ipPool('auth-pool'));
      expect((await good.get('IPPool', 'auth-pool')).metadata.uid).toBe(pool.metadata.uid);
      const err = await bad.get('IPPool', 'auth-pool').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'Unavailable' });
      expect((err as Error).message).toMatch(/authentication failed.*username\/password/);
      const anon = await anonymous.get('IPPool', 'auth-pool').catch((e: unknown) => e);
      expect(anon).toMatchObject({ code: 'Unavailable' });
      expect((anon as Error).message).toMatch(/requires authentication.*set etcdUsername\/etcdPassword/);
    } finally {
      await Promise.all([good.close(), bad.close(), anonymous.close()]);
      await etcd.stop();
    }
  });

  it('reports connection failures in one line, and a server that is not etcd as answering wrongly', async () => {
    const refused = new EtcdDatastore({
      endpoints: `http://127.0.0.1:${await freePort()}`,
      dialTimeoutMs: 1_000,
    });
    const web = createServer((_req, res) => res.end('not etcd'));
    await new Promise<void>((done) => web.listen(0, '127.0.0.1', done));
    const port = (web.address() as AddressInfo).port;
    const wrong = new EtcdDatastore({ endpoints: `http://127.0.0.1:${port}`, dialTimeoutMs: 1_000 });
    try {
      const down = (await refused.list('IPPool').catch((e: unknown) => e)) as Error;
      expect(down.message).toMatch(
        /^cannot reach etcd at http:\/\/127\.0\.0\.1:\d+ \(list IPPool\): .*ECONNREFUSED[^\n]*$/,
      );
      expect(down.message).not.toMatch(/Resolution note/);
      const odd = (await wrong.list('IPPool').catch((e: unknown) => e)) as Error;
      expect(odd).toMatchObject({ code: 'Unavailable' });
      expect(odd.message).toBe(
        `http://127.0.0.1:${port} (list IPPool) answered, but not as an etcd server does: 14 UNAVAILABLE: No connection established. Last error: Protocol error; check that the URL is etcd's client port`,
      );
    } finally {
      await Promise.all([refused.close(), wrong.close()]);
      web.close();
    }
  });

  it('gives up on a hung etcd after the dial timeout instead of hanging', async () => {
    const etcd = await startEtcd();
    const ds = new EtcdDatastore({ endpoints: etcd.endpoint, dialTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
    // SIGSTOP: the kernel still accepts the TCP connection, but nothing ever answers.
    process.kill(etcd.pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const err = await ds.get('IPPool', 'any').catch((e: unknown) => e);
      const took = Date.now() - started;
      expect(err).toMatchObject({ code: 'Unavailable' });
      expect((err as Error).message).toContain(etcd.endpoint);
      expect((err as Error).message).toMatch(/no answer within the deadline/);
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(4_000);
    } finally {
      process.kill(etcd.pid, 'SIGCONT');
      await ds.close();
      await etcd.stop();
    }
  });

  it('rejects endpoints that are not URLs before connecting', () => {
    expect(() => new EtcdDatastore({ endpoints: ' , ' })).toThrow(/no etcd endpoints/);
    expect(() => new EtcdDatastore({ endpoints: 'http://a:1/path' })).toThrow(/not http\(s\):\/\/host:port/);
    const ds = new EtcdDatastore({ endpoints: '127.0.0.1:1, http://127.0.0.2:2' });
    expect(ds.endpoints).toEqual(['http://127.0.0.1:1', 'http://127.0.0.2:2']);
    void ds.close();
  });
});

import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  createNamespace,
  deleteNamespace,
  execInNamespace,
  hostNamespace,
  isKernelError,
  listNamespaces,
  type NamespaceProcess,
  Netlink,
  NetNamespace,
  readSysctl,
  runInNamespace,
  setInterfaceSysctls,
  setIpForwarding,
  spawnInNamespace,
  waitFor,
  writeSysctl,
} from '../src/index.ts';

const prefix = runPrefix('kt');
const nsA = `${prefix}-a`;
const nsB = `${prefix}-b`;

describeWith([root(), command('ip'), command('nsenter')], 'namespaces', () => {
  let a: NetNamespace;
  let b: NetNamespace;
  const procs: NamespaceProcess[] = [];

  beforeAll(async () => {
    a = await createNamespace(nsA);
    b = await createNamespace(nsB);
  });

  afterAll(async () => {
    for (const p of procs) await p.stop();
    a?.close();
    b?.close();
    await deleteNamespace(nsA, { ifExists: true });
    await deleteNamespace(nsB, { ifExists: true });
  });

  it('creates named namespaces under /run/netns and lists them by prefix', () => {
    expect(listNamespaces(prefix)).toEqual([nsA, nsB]);
  });

  it('rejects a duplicate namespace with EEXIST', async () => {
    const err = await createNamespace(nsA).catch((e: unknown) => e);
    expect(isKernelError(err, 'Namespace', 'EEXIST')).toBe(true);
  });

  it('a netlink socket opened through setns acts in the target namespace', async () => {
    const nl = Netlink.open(a);
    try {
      await nl.createBridge({ name: `${prefix}d0` });
      // iproute2 sees it inside A …
      expect(execFileSync('ip', ['-n', nsA, '-o', 'link', 'show', `${prefix}d0`]).toString()).toContain(
        `${prefix}d0`,
      );
      // … and neither in B nor in our own namespace.
      expect(() =>
        execFileSync('ip', ['-n', nsB, 'link', 'show', `${prefix}d0`], { stdio: 'ignore' }),
      ).toThrow();
      const own = Netlink.open();
      try {
        expect(await own.findLink(`${prefix}d0`)).toBeUndefined();
      } finally {
        own.close();
      }
      // and we are back home: the process's own namespace is unchanged.
      expect(runInNamespace(hostNamespace(), () => 1)).toBe(1);
    } finally {
      nl.close();
    }
  });

  it('runInNamespace creates a listening TCP socket inside the namespace', async () => {
    const loA = Netlink.open(a);
    await loA.setLink('lo', { up: true });
    loA.close();
    const server: Server = runInNamespace(a, () => createServer((s) => s.end('hi')).listen(0));
    try {
      await waitFor(() => server.listening, { what: 'listening' });
      const port = (server.address() as { port: number }).port;
      const r = await execInNamespace(a, 'bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}; cat <&3`]);
      expect(r.stdout).toBe('hi');
      // Our own namespace has no listener on that port.
      const here = await execInNamespace(undefined, 'bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
      expect(here.exitCode).not.toBe(0);
    } finally {
      server.close();
    }
  });

  it('runInNamespace refuses async work and still returns home', () => {
    expect(() => runInNamespace(a, async () => 1)).toThrow(/only synchronous/);
    const nl = Netlink.open();
    nl.close();
  });

  it('opens a namespace by /proc/<pid>/ns/net and spawns tracked processes inside', async () => {
    const p = await spawnInNamespace(a, 'sleep', ['60']);
    procs.push(p);
    const viaPid = NetNamespace.ofPid(p.pid);
    try {
      const nl = Netlink.open(viaPid);
      try {
        expect((await nl.listLinks()).map((l) => l.name)).toContain(`${prefix}d0`);
      } finally {
        nl.close();
      }
      // A process spawned through the /proc handle (nsenter) lands in the same namespace.
      const r = await execInNamespace(viaPid, 'ip', ['-o', 'link', 'show', `${prefix}d0`]);
      expect(r.exitCode).toBe(0);
    } finally {
      viaPid.close();
    }
    const exit = await p.stop();
    expect(exit.signal).toBe('SIGTERM');
    expect(p.running).toBe(false);
  });

  it('reads and writes sysctls in the target namespace only', () => {
    const hostForward = readSysctl('net.ipv4.ip_forward');
    // A new namespace starts with the host's IPv4 settings (net.core.devconf_inherit_init_net=0),
    // so b is set to 0 first: what is shown is that writing a leaves it so.
    writeSysctl('net.ipv4.ip_forward', 0, b);
    setIpForwarding({ ipv4: true }, a);
    expect(readSysctl('net.ipv4.ip_forward', a)).toBe('1');
    expect(readSysctl('net.ipv4.ip_forward', b)).toBe('0');
    expect(readSysctl('net.ipv4.ip_forward')).toBe(hostForward);
    expect(
      execFileSync('ip', ['netns', 'exec', nsA, 'cat', '/proc/sys/net/ipv4/ip_forward']).toString().trim(),
    ).toBe('1');

    setInterfaceSysctls(
      `${prefix}d0`,
      {
        proxyArp: true,
        rpFilter: 0,
        forwarding: true,
        routeLocalnet: true,
        acceptRa: 0,
        proxyNdp: true,
        ipv6Forwarding: true,
      },
      a,
    );
    expect(readSysctl(`net/ipv4/conf/${prefix}d0/proxy_arp`, a)).toBe('1');
    expect(readSysctl(`net/ipv6/conf/${prefix}d0/proxy_ndp`, a)).toBe('1');
    writeSysctl(`net/ipv6/conf/${prefix}d0/disable_ipv6`, 1, a);
    expect(readSysctl(`net/ipv6/conf/${prefix}d0/disable_ipv6`, a)).toBe('1');
    // The interface does not exist in B: ENOENT, with the namespace in the message.
    let err: unknown;
    try {
      readSysctl(`net/ipv4/conf/${prefix}d0/proxy_arp`, b);
    } catch (e) {
      err = e;
    }
    expect(isKernelError(err, 'Sysctl', 'ENOENT')).toBe(true);
    expect((err as Error).message).toContain(`in netns ${nsB}`);
  });
});

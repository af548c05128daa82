/**
 * Sockets inside a pod's network namespace, made from this process (setns around socket(2), as
 * relayTcp does), so a lab pod needs no process of its own to serve or to probe: `servePorts`
 * answers TCP connects and echoes UDP datagrams, like the agnhost servers of the upstream
 * network-policy e2e pods; `probe` makes one TCP connect or one UDP request/answer.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { connectTcp, listenTcp, NetNamespace, runInNamespace } from '@calico-ts/kernel';
import { LabError } from './errors.ts';

export type PortProtocol = 'tcp' | 'udp';

export interface PodPort {
  protocol: PortProtocol;
  port: number;
}

/** `tcp:80,udp:53` → ports; refused with the offending entry. */
export function parsePodPorts(spec: string): PodPort[] {
  return spec
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((entry) => {
      const m = /^(tcp|udp)[:/](\d{1,5})$/i.exec(entry.trim());
      const port = Number(m?.[2]);
      if (!m || port < 1 || port > 65535)
        throw new LabError(
          'Invalid',
          `port ${JSON.stringify(entry)}: expected tcp:PORT or udp:PORT with PORT 1–65535`,
        );
      return { protocol: m[1]!.toLowerCase() as PortProtocol, port };
    });
}

/** The named port a served port gets on the pod's WorkloadEndpoint: `serve-80-tcp`. */
export const servedPortName = (p: PodPort): string => `serve-${p.port}-${p.protocol}`;

/**
 * A UDP socket created inside `ns`: dgram makes its kernel socket in bind(), which with an
 * address that needs no lookup happens synchronously, inside runInNamespace.
 */
function udpSocketIn(ns: NetNamespace, port: number, ipv6 = false): Promise<UdpSocket> {
  const sock = createSocket({
    type: ipv6 ? 'udp6' : 'udp4',
    lookup: (address: string, _family: unknown, cb: (err: null, address: string, family: number) => void) =>
      cb(null, address, ipv6 ? 6 : 4),
  } as Parameters<typeof createSocket>[0]);
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.once('listening', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    runInNamespace(
      ns,
      () => sock.bind({ address: ipv6 ? '::' : '0.0.0.0', port, exclusive: true }),
      `UDP port ${port}`,
    );
  });
}

export interface PodServers {
  readonly ports: readonly PodPort[];
  close(): Promise<void>;
}

/**
 * Listeners in a pod: TCP accepts and closes after a line `<pod>\n`, UDP answers each datagram
 * with it. With `ipv6` they listen on `::`, which takes IPv4 too (the namespace's default
 * bindv6only 0), else on 0.0.0.0.
 */
export async function servePorts(
  ns: NetNamespace,
  ports: readonly PodPort[],
  answer: string,
  options: { ipv6?: boolean } = {},
): Promise<PodServers> {
  const any = options.ipv6 ? '::' : '0.0.0.0';
  const tcp: Server[] = [];
  const udp: UdpSocket[] = [];
  const close = async (): Promise<void> => {
    for (const u of udp.splice(0)) u.close();
    await Promise.all(tcp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  };
  try {
    for (const p of ports) {
      if (p.protocol === 'tcp') {
        const server = await listenTcp({ host: any, port: p.port, namespace: ns });
        server.on('connection', (s) => {
          s.on('error', () => s.destroy());
          s.end(`${answer}\n`);
        });
        tcp.push(server);
      } else {
        const sock = await udpSocketIn(ns, p.port, options.ipv6);
        sock.on('message', (_msg, from) => sock.send(`${answer}\n`, from.port, from.address));
        sock.on('error', () => undefined);
        udp.push(sock);
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { ports, close };
}

/** One TCP connect or one UDP request/answer from inside `from` to `ip`; true when answered in time. */
export async function probe(
  from: NetNamespace,
  ip: string,
  port: PodPort,
  timeoutMs = 1000,
): Promise<boolean> {
  if (port.protocol === 'tcp') {
    try {
      const s = await connectTcp({ host: ip, port: port.port, namespace: from, timeoutMs });
      s.destroy();
      return true;
    } catch {
      return false;
    }
  }
  const sock = await udpSocketIn(from, 0, ip.includes(':'));
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      sock.once('message', () => {
        clearTimeout(timer);
        resolve(true);
      });
      sock.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      sock.send('probe\n', port.port, ip);
    });
  } finally {
    sock.close();
  }
}

/** probe() from the named network namespace (`/run/netns/<name>`). */
export async function probeFrom(
  netns: string,
  ip: string,
  port: PodPort,
  timeoutMs = 1000,
): Promise<boolean> {
  const ns = NetNamespace.open(netns);
  try {
    return await probe(ns, ip, port, timeoutMs);
  } finally {
    ns.close();
  }
}

import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import {
  cidrContains,
  familyBits,
  parseCidr,
  parseIp,
  VXLAN_DEVICE,
  WORKLOAD_INTERFACE_PREFIX,
} from '@calico-ts/datastore';

/**
 * Underlay address autodetection, as calico/node's IP_AUTODETECTION_METHOD: `first-found`,
 * `can-reach=<dest>`, `interface=<regex,…>`, `skip-interface=<regex,…>`, `cidr=<cidr,…>`. Runs in
 * the node's own network namespace, so the process's view of interfaces is the node's.
 */
export interface HostAddress {
  iface: string;
  /** CIDR form, address plus its subnet prefix (as Calico stores Node.spec.bgp.ipv4Address). */
  cidr: string;
  address: string;
  family: 4 | 6;
}

/** Names starting with `prefix`, taken literally. */
function startingWith(prefix: string): RegExp {
  return new RegExp(`^${prefix.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*`);
}

/** Interfaces calico/node never picks with first-found (its default exclude list). */
export const DEFAULT_EXCLUDES = [
  /^docker.*/,
  /^cbr.*/,
  /^dummy.*/,
  /^podman.*/,
  /^virbr.*/,
  /^lxcbr.*/,
  /^veth.*/,
  /^lo$/,
  /^br-.*/,
  startingWith(WORKLOAD_INTERFACE_PREFIX),
  /^tunl.*/,
  /^flannel.*/,
  /^kube-ipvs.*/,
  /^cni.*/,
  startingWith(VXLAN_DEVICE),
  /^vxlan-v6\.calico.*/,
  /^wireguard\.cali.*/,
  /^wg-v6\.cali.*/,
  /^nodelocaldns.*/,
];

export class AutodetectError extends Error {
  override readonly name = 'AutodetectError';
}

export function hostAddresses(): HostAddress[] {
  const out: HostAddress[] = [];
  for (const [iface, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      const family = a.family === 'IPv4' ? 4 : 6;
      // Link-local IPv6 is never a node address.
      if (family === 6 && a.address.toLowerCase().startsWith('fe80:')) continue;
      out.push({
        iface,
        cidr: a.cidr ?? `${a.address}/${family === 4 ? 32 : 128}`,
        address: a.address,
        family,
      });
    }
  }
  return out;
}

function regexList(spec: string, what: string): RegExp[] {
  return spec.split(',').map((s) => {
    try {
      return new RegExp(`^(?:${s.trim()})$`);
    } catch (err) {
      throw new AutodetectError(
        `${what}: ${JSON.stringify(s)} is not a valid regular expression: ${(err as Error).message}`,
      );
    }
  });
}

/** Picks this node's address of one family by the given method. */
export async function autodetectAddress(
  method: string,
  family: 4 | 6,
  candidates: HostAddress[] = hostAddresses(),
): Promise<HostAddress> {
  const mine = candidates.filter((c) => c.family === family);
  const m = method.trim() || 'first-found';
  const fail = (why: string): never => {
    throw new AutodetectError(`IPv${family} autodetection (${m}) found no address: ${why}`);
  };
  if (m === 'first-found') {
    const pick = mine.find((c) => !DEFAULT_EXCLUDES.some((r) => r.test(c.iface)));
    return (
      pick ?? fail(`no address on interfaces other than ${DEFAULT_EXCLUDES.map((r) => r.source).join(' ')}`)
    );
  }
  const [kind, arg = ''] = splitMethod(m);
  switch (kind) {
    case 'interface': {
      const res = regexList(arg, 'interface=');
      return mine.find((c) => res.some((r) => r.test(c.iface))) ?? fail(`no interface matches ${arg}`);
    }
    case 'skip-interface': {
      const res = regexList(arg, 'skip-interface=');
      return (
        mine.find(
          (c) => !res.some((r) => r.test(c.iface)) && !DEFAULT_EXCLUDES.some((r) => r.test(c.iface)),
        ) ?? fail(`every interface matches ${arg} or the default exclude list`)
      );
    }
    case 'cidr': {
      const nets = arg.split(',').map((s) => s.trim());
      return mine.find((c) => nets.some((n) => inCidr(c.address, n))) ?? fail(`no address inside ${arg}`);
    }
    case 'can-reach': {
      const src = await sourceAddressFor(arg, family);
      return (
        mine.find((c) => c.address === src) ??
        fail(`route to ${arg} uses ${src}, which is on no local interface`)
      );
    }
    default:
      throw new AutodetectError(
        `unknown autodetection method ${JSON.stringify(m)}: expected first-found, can-reach=DEST, interface=REGEX, skip-interface=REGEX or cidr=CIDR`,
      );
  }
}

function splitMethod(m: string): [string, string] {
  const eq = m.indexOf('=');
  return eq < 0 ? [m, ''] : [m.slice(0, eq), m.slice(eq + 1)];
}

/** The source address the kernel would use towards `dest`: a connected UDP socket sends nothing. */
export function sourceAddressFor(dest: string, family: 4 | 6): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(family === 4 ? 'udp4' : 'udp6');
    sock.once('error', (err) => {
      sock.close();
      reject(new AutodetectError(`can-reach=${dest}: ${err.message}`));
    });
    sock.connect(80, dest, () => {
      const { address } = sock.address();
      sock.close();
      resolve(address);
    });
  });
}

export function inCidr(ip: string, cidr: string): boolean {
  const a = parseIp(ip);
  const net = parseCidr(cidr);
  return (
    a !== undefined &&
    net !== undefined &&
    cidrContains(net, { family: a.family, address: a.value, prefixLength: familyBits(a.family) })
  );
}

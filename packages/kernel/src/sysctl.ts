/**
 * /proc/sys/net inside a namespace. Which namespace /proc/sys/net shows is decided by the
 * opening thread's network namespace (fs/proc/proc_sysctl.c looks tables up through
 * current->nsproxy->net_ns), not by the mount, so the open/read/write happens with the main
 * thread setns'd into the target.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { KernelError } from './errors.ts';
import { type NetNamespace, runInNamespace } from './namespace.ts';

/** 'net.ipv4.ip_forward' or 'net/ipv4/ip_forward'. Keys naming an interface with dots must use '/'. */
function sysctlPath(key: string): string {
  const rel = key.includes('/') ? key : key.replaceAll('.', '/');
  if (rel.includes('..') || rel.startsWith('/')) {
    throw new KernelError('Invalid', { operation: `using sysctl key "${key}"` });
  }
  return `/proc/sys/${rel}`;
}

function inNs<T>(ns: NetNamespace | undefined, fn: () => T, why: string): T {
  return ns ? runInNamespace(ns, fn, why) : fn();
}

function fail(err: unknown, operation: string, ns: NetNamespace | undefined): KernelError {
  if (err instanceof KernelError) return err;
  return new KernelError('Sysctl', {
    errno: (err as NodeJS.ErrnoException).code,
    operation,
    namespace: ns?.name,
    cause: err,
  });
}

export function readSysctl(key: string, ns?: NetNamespace): string {
  const path = sysctlPath(key);
  try {
    return inNs(ns, () => readFileSync(path, 'utf8'), `reading ${path}`).trim();
  } catch (err) {
    throw fail(err, `reading sysctl ${path}`, ns);
  }
}

export function writeSysctl(key: string, value: string | number, ns?: NetNamespace): void {
  const path = sysctlPath(key);
  try {
    inNs(
      ns,
      () => {
        const fd = openSync(path, 'w');
        try {
          writeSync(fd, `${value}\n`);
        } finally {
          closeSync(fd);
        }
      },
      `writing ${path}`,
    );
  } catch (err) {
    throw fail(err, `writing sysctl ${path}=${value}`, ns);
  }
}

/** Per-interface settings Felix applies to workload interfaces (endpoint_mgr.go configureInterface). */
export interface InterfaceSysctls {
  /** ipv4/conf/<if>/proxy_arp: answer ARP for the pod's link-local gateway on the host side of its veth. */
  proxyArp?: boolean;
  /** ipv4/conf/<if>/forwarding */
  forwarding?: boolean;
  /** ipv4/conf/<if>/rp_filter: 0 off, 1 strict, 2 loose (RFC 3704). */
  rpFilter?: 0 | 1 | 2;
  /** ipv4/conf/<if>/route_localnet */
  routeLocalnet?: boolean;
  /** ipv4/neigh/<if>/proxy_delay: 0 makes proxy ARP answer at once. */
  proxyDelay?: number;
  /** ipv6/conf/<if>/forwarding */
  ipv6Forwarding?: boolean;
  /** ipv6/conf/<if>/proxy_ndp */
  proxyNdp?: boolean;
  /** ipv6/conf/<if>/accept_ra: 0, 1, or 2 (accept even when forwarding). */
  acceptRa?: 0 | 1 | 2;
  /** ipv6/conf/<if>/disable_ipv6 */
  disableIpv6?: boolean;
}

const bit = (b: boolean): number => (b ? 1 : 0);

/** The (key, value) writes that make `iface` have `settings`, in the order they must be written. */
function interfaceSysctlWrites(iface: string, settings: InterfaceSysctls): [string, number][] {
  const writes: [string, number][] = [];
  const v4 = `net/ipv4/conf/${iface}`;
  const v6 = `net/ipv6/conf/${iface}`;
  // disable_ipv6 first: while IPv6 is off the other ipv6 keys of the interface still exist, but
  // turning it on later resets nothing we wrote.
  if (settings.disableIpv6 !== undefined) writes.push([`${v6}/disable_ipv6`, bit(settings.disableIpv6)]);
  if (settings.proxyArp !== undefined) writes.push([`${v4}/proxy_arp`, bit(settings.proxyArp)]);
  if (settings.forwarding !== undefined) writes.push([`${v4}/forwarding`, bit(settings.forwarding)]);
  if (settings.rpFilter !== undefined) writes.push([`${v4}/rp_filter`, settings.rpFilter]);
  if (settings.routeLocalnet !== undefined)
    writes.push([`${v4}/route_localnet`, bit(settings.routeLocalnet)]);
  if (settings.proxyDelay !== undefined)
    writes.push([`net/ipv4/neigh/${iface}/proxy_delay`, settings.proxyDelay]);
  if (settings.ipv6Forwarding !== undefined) writes.push([`${v6}/forwarding`, bit(settings.ipv6Forwarding)]);
  if (settings.proxyNdp !== undefined) writes.push([`${v6}/proxy_ndp`, bit(settings.proxyNdp)]);
  if (settings.acceptRa !== undefined) writes.push([`${v6}/accept_ra`, settings.acceptRa]);
  return writes;
}

/**
 * Which of the given interfaces have a sysctl that differs from `settings` (read in one setns;
 * an interface that vanished is not reported). Cheap enough for a one-second check: a few
 * small procfs reads per interface.
 */
export function interfaceSysctlsDrifted(
  wanted: ReadonlyMap<string, InterfaceSysctls>,
  ns?: NetNamespace,
): string[] {
  const drifted: string[] = [];
  const check = () => {
    for (const [iface, settings] of wanted) {
      for (const [key, value] of interfaceSysctlWrites(iface, settings)) {
        let have: string;
        try {
          have = readFileSync(sysctlPath(key), 'utf8').trim();
        } catch {
          break;
        }
        if (have !== String(value)) {
          drifted.push(iface);
          break;
        }
      }
    }
  };
  inNs(ns, check, 'checking interface sysctls');
  return drifted;
}

/** Whether net.ipv4.ip_forward (and, when asked, IPv6 forwarding) read as on. */
export function ipForwardingOn(settings: { ipv4?: boolean; ipv6?: boolean }, ns?: NetNamespace): boolean {
  return inNs(
    ns,
    () =>
      (settings.ipv4 !== true || readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1') &&
      (settings.ipv6 !== true ||
        readFileSync('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').trim() === '1'),
    'reading ip forwarding',
  );
}

/** Write the given per-interface sysctls, all in one setns. */
export function setInterfaceSysctls(iface: string, settings: InterfaceSysctls, ns?: NetNamespace): void {
  const writes = interfaceSysctlWrites(iface, settings);
  const apply = () => {
    for (const [k, v] of writes) writeSysctl(k, v);
  };
  try {
    inNs(ns, apply, `sysctls of ${iface}`);
  } catch (err) {
    if (err instanceof KernelError && ns && !err.namespace) {
      throw new KernelError(err.code, {
        errno: err.errno,
        operation: err.operation,
        namespace: ns.name,
        cause: err,
      });
    }
    throw err;
  }
}

/** net.ipv4.ip_forward and net.ipv6.conf.all.forwarding. */
export function setIpForwarding(settings: { ipv4?: boolean; ipv6?: boolean }, ns?: NetNamespace): void {
  inNs(
    ns,
    () => {
      if (settings.ipv4 !== undefined) writeSysctl('net/ipv4/ip_forward', bit(settings.ipv4));
      if (settings.ipv6 !== undefined) writeSysctl('net/ipv6/conf/all/forwarding', bit(settings.ipv6));
    },
    'ip forwarding',
  );
}

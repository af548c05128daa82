/**
 * Where best paths go to be installed as kernel routes (`kernel.export`). The netlink
 * implementation belongs to @calico-ts/kernel and is not wired into this build yet.
 */
import type { BestPathChange } from '../rib/loc-rib.ts';

export interface KernelRouteSink {
  /** Install, replace or delete routes for the given best-path changes (one batch). */
  apply(changes: readonly BestPathChange[]): Promise<void>;
  close(): Promise<void>;
}

export interface KernelExportConfig {
  export: boolean;
  /** Routing table id (254 = main). */
  table: number;
  /** rtnetlink protocol number marking our routes. */
  protocol: number;
}

export class KernelExportUnavailable extends Error {
  readonly code = 'BGPD_KERNEL_EXPORT_UNAVAILABLE';
}

/**
 * The netlink sink: each best-path change becomes one route in `table` with `protocol`, via the
 * best path's next hop (all equal-cost next hops when multipath is on); a prefix with no best path
 * left is deleted. Our own originated prefixes are never installed. Changes are applied strictly in
 * order. On close the routes stay (like BIRD's `persist`), so a restart does not flap the FIB.
 * @calico-ts/kernel is loaded lazily, so a daemon that does not export never needs netlink.
 */
export async function createKernelSink(cfg: KernelExportConfig): Promise<KernelRouteSink | undefined> {
  if (!cfg.export) return undefined;
  let k: typeof import('@calico-ts/kernel');
  try {
    k = await import('@calico-ts/kernel');
  } catch (err) {
    throw new KernelExportUnavailable(
      `kernel.export: true needs @calico-ts/kernel: ${(err as Error).message}`,
    );
  }
  const nl = k.Netlink.open();
  let chain: Promise<void> = Promise.resolve();
  const one = async (c: BestPathChange): Promise<void> => {
    const best = c.best;
    if (!best || best.source.local) {
      await nl.deleteRoute({ dst: c.prefix, table: cfg.table, protocol: cfg.protocol }, { ifExists: true });
      return;
    }
    const hops = [...new Set([best, ...c.multipath].map((r) => r.attrs.nextHop).filter((h) => h !== ''))];
    if (hops.length === 0) return;
    await nl.replaceRoute(
      hops.length === 1
        ? { dst: c.prefix, gateway: hops[0], table: cfg.table, protocol: cfg.protocol }
        : {
            dst: c.prefix,
            nexthops: hops.map((gateway) => ({ gateway })),
            table: cfg.table,
            protocol: cfg.protocol,
          },
    );
  };
  return {
    apply(changes) {
      const run = chain.then(async () => {
        const failures: string[] = [];
        for (const c of changes) {
          try {
            await one(c);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
        if (failures.length > 0)
          throw new Error(`${failures.length} route(s) not exported: ${failures.slice(0, 3).join('; ')}`);
      });
      chain = run.catch(() => undefined);
      return run;
    },
    async close() {
      await chain;
      nl.close();
    },
  };
}

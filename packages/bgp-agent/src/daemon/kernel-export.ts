/**
 * calico-bgpd's `kernel: {export, table, protocol}`: every best path learned from a peer becomes
 * a route in that table of the daemon's network namespace, marked with that protocol, via the
 * best path's next hop (all equal-cost next hops when multipath is on); a prefix with no learned
 * best path left is deleted. Our own originated prefixes are never installed. On close the routes
 * stay (like BIRD's `persist`), so a restart does not flap the FIB. The kernel modules are loaded
 * only when export is on, so a daemon that does not export never opens netlink.
 */
import type { BestPathChange, BgpdConfig } from '@calico-ts/bgp';
import { bestPathRoutePlan } from '../kernel/route-plan.ts';

export class KernelExportUnavailable extends Error {
  readonly code = 'BGPD_KERNEL_EXPORT_UNAVAILABLE';
}

export interface KernelExport {
  /** Install, replace or delete the routes of one batch of best-path changes. */
  apply(changes: readonly BestPathChange[]): Promise<void>;
  close(): Promise<void>;
}

export async function openKernelExport(cfg: BgpdConfig['kernel']): Promise<KernelExport | undefined> {
  if (!cfg.export) return undefined;
  let writerModule: typeof import('../kernel/route-writer.ts');
  try {
    writerModule = await import('../kernel/route-writer.ts');
  } catch (err) {
    throw new KernelExportUnavailable(`kernel.export: true needs netlink: ${(err as Error).message}`);
  }
  const writer = new writerModule.KernelRouteWriter({ table: cfg.table, protocol: cfg.protocol });
  return {
    async apply(changes) {
      const { failures } = await writer.apply(bestPathRoutePlan(changes));
      if (failures.length > 0) {
        const sample = failures.slice(0, 3).map((f) => `${f.action} ${f.dst}: ${f.error}`);
        throw new Error(`${failures.length} route(s) not exported: ${sample.join('; ')}`);
      }
    },
    close: () => writer.close(),
  };
}

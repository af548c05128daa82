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

export function createKernelSink(cfg: KernelExportConfig): KernelRouteSink | undefined {
  if (!cfg.export) return undefined;
  throw new KernelExportUnavailable(
    'kernel.export: true is not available in this build (the netlink route sink arrives with @calico-ts/kernel); ' +
      'set kernel.export: false',
  );
}

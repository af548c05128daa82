/**
 * IPPool and IPReservation (api/pkg/apis/projectcalico/v3/ippool.go, ipreservation.go; defaults
 * from libcalico-go/lib/clientv3/ippool.go, checks from validateIPPoolSpec).
 */
import { z } from 'zod';
import type { ValidationIssue } from '../resource.ts';
import { cidrProblem, cidrString } from './field-types.ts';
import { cidrsOverlap, type IpFamily, type ParsedCidr, parseCidr } from './ip.ts';
import type { Report } from './issues.ts';
import { kindSchema } from './resource-schema.ts';
import { selectorString } from './selector-field.ts';

export const ENCAPSULATION_MODES = ['Never', 'Always', 'CrossSubnet'] as const;
export type EncapsulationMode = (typeof ENCAPSULATION_MODES)[number];
export const IP_POOL_USES = ['Workload', 'Tunnel', 'LoadBalancer'] as const;

/** Calico's default block size per address family. */
export const DEFAULT_BLOCK_SIZE: Readonly<Record<IpFamily, number>> = { 4: 26, 6: 122 };
const BLOCK_SIZE_RANGE: Readonly<Record<IpFamily, readonly [number, number]>> = {
  4: [20, 32],
  6: [116, 128],
};

const LINK_LOCAL: Readonly<Record<IpFamily, { cidr: ParsedCidr; text: string }>> = {
  4: { cidr: parseCidr('169.254.0.0/16')!, text: '169.254.0.0/16' },
  6: { cidr: parseCidr('fe80::/10')!, text: 'fe80::/10' },
};

export const ipPoolSpecSchema = z
  .strictObject({
    cidr: cidrString({ masked: true }),
    /** Prefix length of the blocks carved from this pool; defaults by family (26 / 122). */
    blockSize: z.number().int().optional(),
    ipipMode: z.enum(ENCAPSULATION_MODES).default('Never'),
    vxlanMode: z.enum(ENCAPSULATION_MODES).default('Never'),
    natOutgoing: z.boolean().default(false),
    disabled: z.boolean().default(false),
    disableBGPExport: z.boolean().default(false),
    nodeSelector: selectorString().default('all()'),
    namespaceSelector: selectorString().optional(),
    allowedUses: z.array(z.enum(IP_POOL_USES)).default(['Workload', 'Tunnel']),
    assignmentMode: z.enum(['Automatic', 'Manual']).default('Automatic'),
  })
  .superRefine((spec, ctx) => {
    checkIPPoolSpec(spec, (path, input, message) =>
      ctx.addIssue({ code: 'custom', path: [...path], input, message }),
    );
  });

export type IPPoolSpec = Omit<z.output<typeof ipPoolSpecSchema>, 'blockSize'> & { blockSize: number };
export type IPPoolSpecInput = z.input<typeof ipPoolSpecSchema>;

function checkIPPoolSpec(spec: z.output<typeof ipPoolSpecSchema>, report: Report): void {
  const cidr = cidrProblem(spec.cidr, { masked: true }) ? undefined : parseCidr(spec.cidr);
  if (cidr) {
    const [min, max] = BLOCK_SIZE_RANGE[cidr.family];
    const blockSize = spec.blockSize ?? DEFAULT_BLOCK_SIZE[cidr.family];
    if (blockSize < min || blockSize > max) {
      report(['blockSize'], blockSize, `IPv${cidr.family} block size must be ${min}–${max}`);
    } else if (cidr.prefixLength > blockSize) {
      report(
        ['cidr'],
        spec.cidr,
        `pool prefix length /${cidr.prefixLength} is longer than the block size /${blockSize}`,
      );
    }
    const linkLocal = LINK_LOCAL[cidr.family];
    if (cidrsOverlap(cidr, linkLocal.cidr)) {
      report(['cidr'], spec.cidr, `IP pool range overlaps with the link-local range ${linkLocal.text}`);
    }
    if (cidr.family === 6 && spec.ipipMode !== 'Never') {
      report(['ipipMode'], spec.ipipMode, 'IPIP is not supported on IPv6 pools');
    }
  }
  if (spec.ipipMode !== 'Never' && spec.vxlanMode !== 'Never') {
    report(['vxlanMode'], spec.vxlanMode, `ipipMode (${spec.ipipMode}) and vxlanMode cannot both be enabled`);
  }
  const uses = spec.allowedUses;
  if (new Set(uses).size !== uses.length) report(['allowedUses'], uses, 'each use may appear once');
  if (uses.includes('LoadBalancer')) {
    if (uses.length > 1 && uses.some((u) => u !== 'LoadBalancer')) {
      report(['allowedUses'], uses, 'LoadBalancer cannot be combined with Workload or Tunnel');
    }
    if (spec.ipipMode !== 'Never' || spec.vxlanMode !== 'Never') {
      report(['allowedUses'], uses, 'LoadBalancer pools cannot use IPIP or VXLAN');
    }
    if (spec.nodeSelector.trim() !== 'all()') {
      report(['nodeSelector'], spec.nodeSelector, 'LoadBalancer pools must have nodeSelector all()');
    }
  }
}

/** Fills the family-dependent block size the schema cannot default by itself. */
export function deriveIPPoolSpec(spec: z.output<typeof ipPoolSpecSchema>): IPPoolSpec {
  const cidr = parseCidr(spec.cidr);
  return { ...spec, blockSize: spec.blockSize ?? DEFAULT_BLOCK_SIZE[cidr?.family ?? 4] };
}

export const ipPoolSchema = kindSchema('IPPool', ipPoolSpecSchema);

export const ipReservationSpecSchema = z
  .strictObject({
    // Calico's `cidr` validator: any CIDR, host bits allowed, or a single address.
    reservedCIDRs: z.array(cidrString({ allowBareIp: true })).optional(),
  })
  .prefault({});
export type IPReservationSpec = z.output<typeof ipReservationSpecSchema>;
export const ipReservationSchema = kindSchema('IPReservation', ipReservationSpecSchema);

/** The tunnel a pool's traffic takes between nodes. */
export type EncapsulationType = 'none' | 'ipip' | 'vxlan';

export interface IPPoolEncapsulation {
  type: EncapsulationType;
  /** When the tunnel is used: `Always`, or `CrossSubnet` (only between nodes on different subnets); `Never` with type `none`. */
  mode: EncapsulationMode;
}

/**
 * Which encapsulation a pool uses, the one reading of `vxlanMode` / `ipipMode`: VXLAN when
 * vxlanMode is on, otherwise IPIP when ipipMode is on, otherwise none (validation refuses a pool
 * with both on; VXLAN wins should one be stored anyway, as in Felix's route resolver).
 */
export function poolEncapsulation(spec: {
  readonly ipipMode: EncapsulationMode;
  readonly vxlanMode: EncapsulationMode;
}): IPPoolEncapsulation {
  if (spec.vxlanMode !== 'Never') return { type: 'vxlan', mode: spec.vxlanMode };
  if (spec.ipipMode !== 'Never') return { type: 'ipip', mode: spec.ipipMode };
  return { type: 'none', mode: 'Never' };
}

/**
 * Whether traffic of a pool with this encapsulation is tunnelled between two nodes: always in
 * `Always` mode, only across subnets in `CrossSubnet` mode (same-subnet peers are routed directly).
 */
export function encapsulatedBetween(encapsulation: IPPoolEncapsulation, sameSubnet: boolean): boolean {
  return (
    encapsulation.type !== 'none' &&
    (encapsulation.mode === 'Always' || (encapsulation.mode === 'CrossSubnet' && !sameSubnet))
  );
}

/** An IP pool as the stored-object rules see it: its name and the spec fields they compare. */
export interface StoredIPPool {
  readonly metadata: { readonly name: string };
  readonly spec: { readonly cidr: string; readonly blockSize: number };
}

/**
 * The IPPool rules that need other stored objects (libcalico-go's clientv3 IPPool Create/Update):
 * `cidr` and `blockSize` are fixed once the pool exists, since blocks already carved from it
 * would otherwise fall outside it or change shape; and no two pools may share an address.
 * `stored` is this pool as stored (absent on create); `others` every other stored pool.
 */
export function ipPoolStoredIssues(
  pool: StoredIPPool,
  stored: StoredIPPool | undefined,
  others: readonly StoredIPPool[],
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (stored && stored.spec.cidr !== pool.spec.cidr) {
    issues.push({
      path: 'spec.cidr',
      value: pool.spec.cidr,
      message: `cannot be changed after creation: expected the stored ${stored.spec.cidr} (create a new pool and migrate to it instead)`,
    });
  }
  if (stored && stored.spec.blockSize !== pool.spec.blockSize) {
    issues.push({
      path: 'spec.blockSize',
      value: pool.spec.blockSize,
      message: `cannot be changed after creation: expected the stored ${stored.spec.blockSize} (create a new pool and migrate to it instead)`,
    });
  }
  const cidr = parseCidr(pool.spec.cidr);
  if (cidr) {
    for (const other of others) {
      if (other.metadata.name === pool.metadata.name) continue;
      const theirs = parseCidr(other.spec.cidr);
      if (theirs && cidrsOverlap(cidr, theirs)) {
        issues.push({
          path: 'spec.cidr',
          value: pool.spec.cidr,
          message: `overlaps with IPPool ${other.metadata.name} (${other.spec.cidr}); pools must not share addresses`,
        });
      }
    }
  }
  return issues;
}

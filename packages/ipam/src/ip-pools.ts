/**
 * Which IP pools may serve a request: pure selection over the pools and the node's labels.
 * Calico's rules (libcalico-go ipam `getPoolsForHost`/`determinePools`): a pool serves a node when
 * it is enabled, of the right family, allows the intended use and its nodeSelector matches the
 * node; pools with assignmentMode Manual serve only requests that name them.
 */

import {
  cidrContainsIp,
  formatMaskedCidr,
  type ParsedCidr,
  type ParsedIp,
  parseCidr,
  parseSelector,
  type ResourceOf,
  type Selector,
} from '@calico-ts/datastore';
import { cidrFromText } from './cidr.ts';
import { IpamError } from './errors.ts';

export type IntendedUse = ResourceOf<'IPPool'>['spec']['allowedUses'][number];

export interface IpPool {
  name: string;
  /** The pool's network, host bits clear. */
  cidr: ParsedCidr;
  cidrText: string;
  blockSize: number;
  disabled: boolean;
  nodeSelector: string;
  allowedUses: IntendedUse[];
  assignmentMode: ResourceOf<'IPPool'>['spec']['assignmentMode'];
}

/**
 * What IPAM needs of an IPPool. The stored spec already carries Calico's defaults (block size /26
 * or /122, allowedUses Workload and Tunnel, assignmentMode Automatic, nodeSelector all()); an
 * empty allowedUses list means those two uses, as in Calico.
 */
export function poolFromResource(r: ResourceOf<'IPPool'>): IpPool {
  const { spec } = r;
  const cidr = cidrFromText(spec.cidr);
  return {
    name: r.metadata.name,
    cidr,
    cidrText: formatMaskedCidr(cidr),
    blockSize: spec.blockSize,
    disabled: spec.disabled,
    nodeSelector: spec.nodeSelector,
    allowedUses: spec.allowedUses.length > 0 ? [...spec.allowedUses] : ['Workload', 'Tunnel'],
    assignmentMode: spec.assignmentMode,
  };
}

/** True for selectors that match every node without evaluation. */
export function selectsAllNodes(selector: string): boolean {
  const s = selector.trim();
  return s === '' || s === 'all()';
}

export type SelectorMatcher = (selector: string, labels: Readonly<Record<string, string>>) => boolean;

/** Evaluates nodeSelectors with the datastore package's selector engine (parsed once per text). */
export function defaultSelectorMatcher(): SelectorMatcher {
  const cache = new Map<string, Selector>();
  return (selector, labels) => {
    if (selectsAllNodes(selector)) return true;
    let sel = cache.get(selector);
    if (!sel) {
      try {
        sel = parseSelector(selector);
      } catch (err) {
        throw new IpamError(
          'SelectorUnsupported',
          `pool nodeSelector ${JSON.stringify(selector)} cannot be parsed: ${(err as Error).message}; fix the IPPool's spec.nodeSelector`,
          { cause: err },
        );
      }
      cache.set(selector, sel);
    }
    return sel.evaluate(labels);
  };
}

export interface PoolRequest {
  family: 4 | 6;
  intendedUse: IntendedUse;
  /** Pools named by the caller (names or CIDRs); when set only these are used, in this order. */
  requested?: readonly string[] | undefined;
}

/**
 * The pools that may serve a request, in the order to try them. `labels` is called only when a
 * candidate pool has a real nodeSelector, so the common case needs no Node read.
 */
export async function eligiblePools(
  pools: readonly IpPool[],
  request: PoolRequest,
  node: string,
  labels: () => Promise<Readonly<Record<string, string>>>,
  matches: SelectorMatcher,
): Promise<IpPool[]> {
  const ofFamily = pools.filter((p) => p.cidr.family === request.family);
  let candidates: IpPool[];
  if (request.requested && request.requested.length > 0) {
    candidates = [];
    for (const want of request.requested) {
      const pool = ofFamily.find((p) => p.name === want || p.cidrText === canonicalCidrText(want));
      if (pool) {
        candidates.push(pool);
        continue;
      }
      if (pools.some((p) => p.name === want || p.cidrText === canonicalCidrText(want))) continue; // other family
      throw new IpamError(
        'NoUsablePool',
        `requested IP pool ${JSON.stringify(want)} does not exist; create it or name an existing pool (by name or CIDR)`,
      );
    }
    for (const p of candidates) {
      if (p.disabled) {
        throw new IpamError(
          'NoUsablePool',
          `requested IP pool ${p.name} (${p.cidrText}) is disabled; set spec.disabled: false to use it`,
        );
      }
    }
  } else {
    candidates = ofFamily.filter((p) => !p.disabled && p.assignmentMode === 'Automatic');
    candidates.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  candidates = candidates.filter((p) => p.allowedUses.includes(request.intendedUse));
  const out: IpPool[] = [];
  let nodeLabels: Readonly<Record<string, string>> | undefined;
  for (const p of candidates) {
    if (!selectsAllNodes(p.nodeSelector)) nodeLabels ??= await labels();
    if (matches(p.nodeSelector, nodeLabels ?? {})) out.push(p);
  }
  if (out.length === 0) {
    const why = request.requested?.length
      ? `requested pools ${request.requested.join(', ')}`
      : `${ofFamily.length} IPv${request.family} pool(s)`;
    throw new IpamError(
      'NoUsablePool',
      `no enabled IPv${request.family} pool serves node ${node} for ${request.intendedUse} addresses (checked ${why}: disabled, assignmentMode Manual, allowedUses or nodeSelector exclude it); create or adjust an IPPool`,
    );
  }
  return out;
}

function canonicalCidrText(text: string): string | undefined {
  const cidr = parseCidr(text);
  return cidr && formatMaskedCidr(cidr);
}

/** The pool holding an address, if any. */
export function poolOf(pools: readonly IpPool[], ip: ParsedIp): IpPool | undefined {
  return pools.find((p) => cidrContainsIp(p.cidr, ip));
}

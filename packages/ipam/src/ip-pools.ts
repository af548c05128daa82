/**
 * Which IP pools may serve a request: pure selection over the pools and the node's labels.
 * Calico's rules (libcalico-go ipam `getPoolsForHost`/`determinePools`): a pool serves a node when
 * it is enabled, of the right family, allows the intended use and its nodeSelector matches the
 * node; pools with assignmentMode Manual serve only requests that name them.
 */

import { type AnyResource, parseSelector, type Selector } from '@calico-ts/datastore';
import { type Cidr, cidrContains, formatCidr, parseCidr } from './cidr.ts';
import { IpamError } from './errors.ts';

export type IntendedUse = 'Workload' | 'Tunnel' | 'LoadBalancer';

export interface IpPool {
  name: string;
  cidr: Cidr;
  cidrText: string;
  blockSize: number;
  disabled: boolean;
  nodeSelector: string;
  allowedUses: IntendedUse[];
  assignmentMode: 'Automatic' | 'Manual';
}

/**
 * Reads an IPPool resource with Calico's defaults (block size /26 or /122, allowedUses Workload
 * and Tunnel, assignmentMode Automatic, nodeSelector all()). Reads the spec loosely because the
 * typed IPPool model may still accept any spec.
 */
export function poolFromResource(r: AnyResource): IpPool {
  const spec = (r.spec ?? {}) as Record<string, unknown>;
  const name = r.metadata.name;
  if (typeof spec['cidr'] !== 'string') {
    throw new IpamError(
      'InvalidArgument',
      `IPPool ${name}: spec.cidr is missing; expected a CIDR such as 10.244.0.0/16`,
    );
  }
  const cidr = parseCidr(spec['cidr']);
  const defaultBlock = cidr.family === 4 ? 26 : 122;
  const blockSize = typeof spec['blockSize'] === 'number' ? spec['blockSize'] : defaultBlock;
  if (blockSize < cidr.prefix || blockSize > (cidr.family === 4 ? 32 : 128)) {
    throw new IpamError(
      'InvalidArgument',
      `IPPool ${name}: spec.blockSize ${blockSize} does not fit in ${spec['cidr']}; expected ${cidr.prefix}–${cidr.family === 4 ? 32 : 128}`,
    );
  }
  const uses =
    Array.isArray(spec['allowedUses']) && spec['allowedUses'].length > 0 ? spec['allowedUses'] : undefined;
  return {
    name,
    cidr,
    cidrText: formatCidr(cidr),
    blockSize,
    disabled: spec['disabled'] === true,
    nodeSelector: typeof spec['nodeSelector'] === 'string' ? spec['nodeSelector'] : '',
    allowedUses: (uses as IntendedUse[] | undefined) ?? ['Workload', 'Tunnel'],
    assignmentMode: spec['assignmentMode'] === 'Manual' ? 'Manual' : 'Automatic',
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
  try {
    return formatCidr(parseCidr(text));
  } catch {
    return undefined;
  }
}

/** The pool holding an address, if any. */
export function poolOf(pools: readonly IpPool[], family: 4 | 6, value: bigint): IpPool | undefined {
  return pools.find((p) => cidrContains(p.cidr, family, value));
}

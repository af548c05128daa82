/**
 * What `calico ipam show` and `calico ipam check` print, as pure functions of the IPAM library's
 * answers, in calicoctl's shapes: the utilisation grid with `GROUPING | CIDR | IPS TOTAL | IPS IN
 * USE | IPS FREE`, numbers as Go's `%.5g` writes them, percentages rounded to whole numbers.
 */
import type {
  AllocationRecord,
  AssignmentAttributes,
  BlockUtilization,
  BorrowedReport,
  CheckReport,
  HandleRecord,
  IpamConfig,
  OwnershipAudit,
  PoolUtilization,
} from '@calico-ts/ipam';
import { borderedTable } from '@calico-ts/text-table';

/** A number as Go's `%.5g` prints it: five significant digits, exponent form from 1e5 up. */
export function goShortFloat(n: number): string {
  if (n === 0) return '0';
  const [mantissa, exp] = n.toExponential(4).split('e') as [string, string];
  const exponent = Number(exp);
  const trim = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exponent < -4 || exponent >= 5) {
    const sign = exponent < 0 ? '-' : '+';
    return `${trim(mantissa)}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return trim(n.toPrecision(5));
}

/** `%.f` of a percentage: whole numbers, halves to even as Go rounds them. */
function percent(part: number, whole: number): string {
  const p = whole === 0 ? 0 : (100 * part) / whole;
  const floor = Math.floor(p);
  const rounded = p - floor === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(p);
  return `${rounded}%`;
}

function usageRow(grouping: string, cidr: string, inUse: number, capacity: number): string[] {
  const free = capacity - inUse;
  return [
    grouping,
    cidr,
    goShortFloat(capacity),
    `${goShortFloat(inUse)} (${percent(inUse, capacity)})`,
    `${goShortFloat(free)} (${percent(free, capacity)})`,
  ];
}

/**
 * `ipam show [--show-blocks]`: one row per pool, followed by its blocks when asked; blocks in no
 * pool (`outside`) come last, without a pool row, as calicoctl lists them.
 */
export function renderUtilization(
  pools: readonly PoolUtilization[],
  showBlocks: boolean,
  outside: readonly BlockUtilization[] = [],
): string {
  const rows: string[][] = [];
  for (const pool of pools) {
    rows.push(usageRow('IP Pool', pool.cidr, pool.inUse, pool.capacity));
    if (showBlocks) {
      for (const b of pool.blocks) rows.push(usageRow('Block', b.cidr, b.inUse, b.capacity));
    }
  }
  if (showBlocks) for (const b of outside) rows.push(usageRow('Block', b.cidr, b.inUse, b.capacity));
  return borderedTable(['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'], rows);
}

/** `ipam show --ip`: who holds the address, or that nobody does. */
export function renderAssignment(ip: string, held: AssignmentAttributes | undefined): string {
  if (!held) return `IP ${ip} is not currently assigned\n`;
  let out = `IP ${held.address} is in use\n`;
  out += `Handle: ${held.handleId ?? '<none>'}\n`;
  out += `Block: ${held.block}${held.blockAffinity ? ` (affinity ${held.blockAffinity})` : ' (no affinity)'}\n`;
  const keys = Object.keys(held.attrs).sort();
  if (keys.length === 0) return `${out}No attributes defined\n`;
  out += 'Attributes:\n';
  for (const k of keys) out += `  ${k}: ${held.attrs[k]}\n`;
  return out;
}

/** `ipam show --show-borrowed`. */
export function renderBorrowed(report: BorrowedReport): string {
  let out = borderedTable(
    ['IP', 'BORROWING-NODE', 'BLOCK', 'BLOCK OWNER', 'TYPE', 'ALLOCATED-TO'],
    report.borrowed.map((b) => [b.address, b.borrowingNode, b.block, b.blockOwner, b.type, b.allocatedTo]),
  );
  if (report.unclassified > 0) {
    out += `\nNote: found ${report.unclassified} IP allocations without an explicit node association. Unable to determine if they are borrowed.\n`;
  }
  return out;
}

/** `ipam show --show-configuration`: the IPAMConfiguration's settings by their Go field names. */
export function renderConfiguration(config: IpamConfig): string {
  return borderedTable(
    ['PROPERTY', 'VALUE'],
    [
      ['StrictAffinity', String(config.strictAffinity)],
      ['AutoAllocateBlocks', String(config.autoAllocateBlocks)],
      ['MaxBlocksPerHost', String(config.maxBlocksPerHost)],
    ],
  );
}

/** calicoctl's one-line description of an allocation's attributes. */
function describeAllocation(a: AllocationRecord): string {
  const extra = [
    ['namespace', a.namespace],
    ['node', a.node],
    ['pod', a.pod],
    ['timestamp', a.creationTimestamp],
    ['type', a.type],
  ]
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  return `Main:${a.handle ?? '<none>'} Extra:${extra.join(',')}`;
}

export interface CheckOutputOptions {
  showAllIps: boolean;
  showProblemIps: boolean;
}

/** How many inconsistencies the structural check (blocks, affinities, handles) found. */
export function structuralProblems(report: CheckReport): number {
  return (
    report.orphanedHandles.length +
    report.blocksWithoutAffinity.length +
    report.affinitiesWithoutBlock.length +
    report.unsettledAffinities.length +
    report.invalidBlocks.length +
    report.affinitiesWithoutNode.length
  );
}

function structuralLines(report: CheckReport): string[] {
  return [
    ...report.invalidBlocks.map((b) => `  block ${b.cidr} is inconsistent: ${b.problem}`),
    ...report.orphanedHandles.map(
      (h) =>
        `  handle ${h.handleId} records ${h.recorded} addresses in block ${h.block}, which holds ${h.actual}`,
    ),
    ...report.blocksWithoutAffinity.map(
      (b) => `  block ${b.cidr} is affine to ${b.affinity}, which holds no BlockAffinity for it`,
    ),
    ...report.affinitiesWithoutBlock.map(
      (a) =>
        `  ${a.node}'s affinity to ${a.cidr} is confirmed, but that block is missing or affine elsewhere`,
    ),
    ...report.unsettledAffinities.map(
      (a) => `  ${a.node}'s affinity to ${a.cidr} is stuck in state ${a.state}`,
    ),
    ...report.affinitiesWithoutNode.map(
      (a) => `  ${a.node}'s affinity to ${a.cidr} belongs to a node that does not exist`,
    ),
  ];
}

/**
 * The report `ipam check` prints while it works, ending with the number of problems: ownership
 * (who uses each address) and, when given, the structural check of blocks, affinities and handles.
 */
export function renderCheck(
  audit: OwnershipAudit,
  options: CheckOutputOptions,
  structure?: CheckReport,
): string {
  const showProblems = options.showProblemIps || options.showAllIps;
  const lines: string[] = ['Checking IPAM for inconsistencies...', ''];
  const c = audit.counts;
  const all = Object.values(audit.allocations).flat();
  lines.push('Loading all IPAM blocks...', `Found ${c.blocks} IPAM blocks.`);
  if (options.showAllIps) {
    for (const a of all) lines.push(`  ${a.ip} allocated; attrs ${describeAllocation(a)}`);
  }
  lines.push(`IPAM blocks record ${c.allocations} allocations.`, '');
  lines.push('Loading all IPAM pools...', `Found ${c.activePools} active IP pools.`, '');
  lines.push('Loading all nodes.', `Found ${c.nodeTunnelAddresses} node tunnel IPs.`, '');
  lines.push('Loading all workload endpoints.', `Found ${c.workloadAddresses} workload IPs.`);
  const used = new Set([
    ...all.filter((a) => a.inUse).map((a) => a.ip),
    ...audit.inUseWithoutAllocation.map((u) => u.ip),
    ...audit.inUseOutsidePools.map((u) => u.ip),
  ]);
  if (options.showAllIps) {
    for (const a of all) for (const o of a.owners) lines.push(`  ${a.ip} belongs to ${o}`);
  }
  lines.push(`Workloads and nodes are using ${used.size} IPs.`, '');

  lines.push('Scanning for IPs that are allocated but not actually in use...');
  if (showProblems) {
    for (const a of audit.leakedAddresses) lines.push(`  ${a.ip} leaked; attrs ${describeAllocation(a)}`);
  }
  lines.push(`Found ${audit.leakedAddresses.length} IPs that are allocated in IPAM but not actually in use.`);
  lines.push('Scanning for IPs that are in use by a workload or node but not allocated in IPAM...');
  if (showProblems) {
    for (const u of audit.multipleOwners) lines.push(`  ${u.ip} has multiple owners.`);
    for (const u of audit.inUseOutsidePools) {
      for (const o of u.owners) lines.push(`  ${u.ip} in use by ${o} is not in any active IP pool.`);
    }
    for (const u of audit.inUseWithoutAllocation) {
      for (const o of u.owners) {
        lines.push(`  ${u.ip} in use by ${o} and in active IPAM pool but has no IPAM allocation.`);
      }
    }
  }
  lines.push(`Found ${audit.inUseOutsidePools.length} in-use IPs that are not in active IP pools.`);
  lines.push(
    `Found ${audit.inUseWithoutAllocation.length} in-use IPs that are in active IP pools but have no corresponding IPAM allocation.`,
    '',
  );

  lines.push('Scanning for IPAM handles with no matching IPs...');
  if (options.showAllIps) {
    for (const h of audit.leakedHandles) lines.push(`  ${h.ID} doesn't have any active IPs.`);
  }
  lines.push(
    `Found ${audit.leakedHandles.length} handles with no matching IPs (and ${c.handles - audit.leakedHandles.length} handles with matches).`,
  );
  lines.push('Scanning for IPs with missing handle...');
  if (showProblems) {
    for (const id of audit.missingHandles) lines.push(`  ${id} is in use in a block but doesn't exist.`);
  }
  lines.push(
    `Found ${audit.missingHandles.length} handles mentioned in blocks with no matching handle resource.`,
  );
  lines.push('Scanning for blocks affine to nodes that no longer exist...');
  if (showProblems) {
    for (const b of audit.blocksWithoutNode)
      lines.push(`  ${b.cidr} is affine to ${b.affinity}, which has no Node.`);
  }
  lines.push(`Found ${audit.blocksWithoutNode.length} blocks affine to missing nodes.`);
  let problems = audit.problems;
  if (structure) {
    lines.push('Checking that blocks, affinities and handles agree...');
    if (showProblems) lines.push(...structuralLines(structure));
    const n = structuralProblems(structure);
    lines.push(`Found ${n} inconsistencies between blocks, affinities and handles.`);
    problems += n;
  }
  lines.push(`Check complete; found ${problems} problems.`);
  return `${lines.join('\n')}\n`;
}

/** The machine-readable report `ipam check -o FILE` writes (calicoctl's field names). */
export interface CheckReportFile {
  version: string;
  clusterGUID: string;
  datastoreLocked: boolean;
  clusterInformationRevision: string;
  clusterType: string;
  allocations: Record<string, AllocationRecord[]>;
  leakedHandles?: HandleRecord[];
}

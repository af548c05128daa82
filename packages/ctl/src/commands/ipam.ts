/**
 * `calico ipam`: calicoctl's IPAM troubleshooting commands over @calico-ts/ipam — show (usage,
 * one address, borrowed addresses, configuration), check (leaks, with a JSON report), release
 * (one address, or what a report found leaked) and configure.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Datastore, isDatastoreError, parseIp, type ResourceOf } from '@calico-ts/datastore';
import { type HandleRecord, Ipam, type LeakReleaseRequest } from '@calico-ts/ipam';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import { clientVersion } from '../client-version.ts';
import type { CommandContext } from '../command-context.ts';
import {
  type CheckReportFile,
  renderAssignment,
  renderBorrowed,
  renderCheck,
  renderConfiguration,
  renderUtilization,
  structuralProblems,
} from './ipam-output.ts';

/** A CLI run waits this long for an unreachable datastore before reporting it (IPAM retries). */
const UNAVAILABLE_TIMEOUT_MS = 3_000;

function ipamOf(ds: Datastore): Ipam {
  return new Ipam(ds, { unavailableTimeoutMs: UNAVAILABLE_TIMEOUT_MS });
}

function address(value: string): string {
  if (!parseIp(value))
    throw new InvalidArgumentError(`expected an IPv4 or IPv6 address, got ${JSON.stringify(value)}`);
  return value;
}

function bool(value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new InvalidArgumentError(`expected true or false, got ${JSON.stringify(value)}`);
}

function count(value: string): number {
  if (!/^\d+$/.test(value))
    throw new InvalidArgumentError(`expected an integer ≥ 0, got ${JSON.stringify(value)}`);
  return Number(value);
}

async function clusterInformation(ds: Datastore): Promise<ResourceOf<'ClusterInformation'> | undefined> {
  try {
    return await ds.get('ClusterInformation', 'default');
  } catch (err) {
    if (isDatastoreError(err, 'NotFound')) return undefined;
    throw err;
  }
}

function subcommand(ctx: CommandContext, name: string): Command {
  return new Command(name)
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) });
}

function showCommand(ctx: CommandContext): Command {
  return subcommand(ctx, 'show')
    .summary(
      'Show IP usage per pool and block, who holds an address, borrowed addresses or the IPAM configuration',
    )
    .addOption(
      new Option('--ip <IP>', 'report whether this address is in use, and by whom').argParser(address),
    )
    .option('--show-blocks', 'show every block as well as the pools')
    .option('--show-borrowed', 'show addresses borrowed from blocks affine to other nodes')
    .option('--show-configuration', 'show the IPAM configuration')
    .action(
      async (opts: {
        ip?: string;
        showBlocks?: boolean;
        showBorrowed?: boolean;
        showConfiguration?: boolean;
      }) => {
        const chosen = [
          opts.ip !== undefined,
          opts.showBlocks,
          opts.showBorrowed,
          opts.showConfiguration,
        ].filter(Boolean);
        if (chosen.length > 1) {
          throw new CliError(
            'give at most one of --ip, --show-blocks, --show-borrowed, --show-configuration',
          );
        }
        const ipam = ipamOf(await ctx.datastore());
        if (opts.ip !== undefined) {
          ctx.io.stdout(renderAssignment(opts.ip, await ipam.getAssignmentAttributes(opts.ip)));
        } else if (opts.showBorrowed) {
          ctx.io.stdout(renderBorrowed(await ipam.getBorrowedAddresses()));
        } else if (opts.showConfiguration) {
          ctx.io.stdout(renderConfiguration(await ipam.getConfig()));
        } else {
          const showBlocks = opts.showBlocks === true;
          const outside = showBlocks ? await ipam.getBlocksOutsidePools() : [];
          ctx.io.stdout(renderUtilization(await ipam.getUtilization(), showBlocks, outside));
        }
      },
    );
}

function checkCommand(ctx: CommandContext): Command {
  return subcommand(ctx, 'check')
    .summary('Check IPAM against the workloads and nodes that use its addresses; exit 1 on problems')
    .option('--show-all-ips', 'print every address checked')
    .option('--show-problem-ips', 'print every address that leaked or is not allocated properly')
    .option('-o, --output <FILE>', 'write a machine-readable report (for `ipam release --from-report`)')
    .action(async (opts: { showAllIps?: boolean; showProblemIps?: boolean; output?: string }) => {
      const ds = await ctx.datastore();
      const info = await clusterInformation(ds);
      const ipam = ipamOf(ds);
      const audit = await ipam.auditOwnership();
      const structure = await ipam.check();
      ctx.io.stdout(
        renderCheck(
          audit,
          { showAllIps: opts.showAllIps === true, showProblemIps: opts.showProblemIps === true },
          structure,
        ),
      );
      if (opts.output !== undefined) {
        const report: CheckReportFile = {
          version: `v${clientVersion()}`,
          clusterGUID: info?.spec.clusterGUID ?? '',
          datastoreLocked: info?.spec.datastoreReady === false,
          clusterInformationRevision: info?.metadata.resourceVersion ?? '',
          clusterType: info?.spec.clusterType ?? '',
          allocations: audit.allocations,
          ...(audit.leakedHandles.length > 0 ? { leakedHandles: audit.leakedHandles } : {}),
        };
        const path = resolve(ctx.io.cwd, opts.output);
        await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
        ctx.io.stdout(`Report written to ${opts.output}\n`);
      }
      const problems = audit.problems + structuralProblems(structure);
      if (problems > 0) throw new CliError(`ipam check found ${problems} problem(s)`);
    });
}

/** What release needs of one allocation in a report. */
interface ReportedAllocation {
  ip: string;
  inUse: boolean;
  handle?: string;
  sequenceNumber?: number;
}

interface ReleaseReport {
  version: string;
  clusterGUID: string;
  allocations: Map<string, ReportedAllocation[]>;
  leakedHandles: HandleRecord[];
}

function entriesOf(v: unknown): Map<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? new Map(Object.entries(v)) : undefined;
}

/** Reads a report written by `ipam check -o`, naming the file and field when it is not one. */
async function readReport(ctx: CommandContext, file: string): Promise<ReleaseReport> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(resolve(ctx.io.cwd, file), 'utf8'));
  } catch (err) {
    throw new CliError(`cannot read report ${file}: ${(err as Error).message}`);
  }
  const fields = entriesOf(parsed);
  const allocations = entriesOf(fields?.get('allocations'));
  if (!fields || !allocations) {
    throw new CliError(`${file} is not an ipam check report: expected an object with an "allocations" map`);
  }
  const text = (m: Map<string, unknown>, key: string): string | undefined => {
    const v = m.get(key);
    return typeof v === 'string' ? v : undefined;
  };
  const report: ReleaseReport = {
    version: text(fields, 'version') ?? '',
    clusterGUID: text(fields, 'clusterGUID') ?? '',
    allocations: new Map(),
    leakedHandles: [],
  };
  for (const [ip, list] of allocations) {
    const records: ReportedAllocation[] = [];
    for (const item of Array.isArray(list) ? list : []) {
      const a = entriesOf(item);
      const inUse = a?.get('inUse');
      if (!a || typeof inUse !== 'boolean') {
        throw new CliError(`${file}: allocations["${ip}"]: expected objects with "ip" and "inUse"`);
      }
      const handle = text(a, 'handle');
      const seq = a.get('sequenceNumber');
      records.push({
        ip,
        inUse,
        ...(handle === undefined ? {} : { handle }),
        ...(typeof seq === 'number' ? { sequenceNumber: seq } : {}),
      });
    }
    report.allocations.set(ip, records);
  }
  const handles = fields.get('leakedHandles');
  for (const item of Array.isArray(handles) ? handles : []) {
    const h = entriesOf(item);
    const id = h && text(h, 'ID');
    const revision = h && text(h, 'Revision');
    if (id === undefined || revision === undefined) {
      throw new CliError(`${file}: leakedHandles: expected objects with "ID" and "Revision"`);
    }
    report.leakedHandles.push({ ID: id, Revision: revision });
  }
  return report;
}

/** Leaked allocations and handles found in every report (calicoctl releases only their intersection). */
function leakedInAll(reports: readonly ReleaseReport[]): {
  ips: LeakReleaseRequest[];
  handles: HandleRecord[];
} {
  let ips: Map<string, LeakReleaseRequest> | undefined;
  let handles: Map<string, HandleRecord> | undefined;
  for (const r of reports) {
    const nextIps = new Map<string, LeakReleaseRequest>();
    for (const [ip, list] of r.allocations) {
      for (const a of list) {
        if (a.inUse || (ips && !ips.has(ip))) continue;
        nextIps.set(ip, {
          ip,
          ...(a.handle === undefined ? {} : { handle: a.handle }),
          ...(a.sequenceNumber === undefined ? {} : { sequenceNumber: a.sequenceNumber }),
        });
      }
    }
    ips = nextIps;
    const nextHandles = new Map<string, HandleRecord>();
    for (const h of r.leakedHandles) {
      if (!handles || handles.get(h.ID)?.Revision === h.Revision) nextHandles.set(h.ID, h);
    }
    handles = nextHandles;
  }
  return { ips: [...(ips?.values() ?? [])], handles: [...(handles?.values() ?? [])] };
}

function releaseCommand(ctx: CommandContext): Command {
  return subcommand(ctx, 'release')
    .summary('Release one address, or every address and handle a check report found leaked')
    .addOption(new Option('--ip <IP>', 'the address to release').argParser(address))
    .option(
      '--from-report <FILE...>',
      'release what `ipam check -o FILE` found leaked; with several reports, only what all of them found',
    )
    .option('--force', 'release an address a workload or node still uses; accept reports of another version')
    .action(async (opts: { ip?: string; fromReport?: string[]; force?: boolean }) => {
      if ((opts.ip === undefined) === (opts.fromReport === undefined)) {
        throw new CliError('give exactly one of --ip or --from-report');
      }
      const ds = await ctx.datastore();
      const ipam = ipamOf(ds);
      if (opts.ip !== undefined) {
        const owners = (await ipam.auditOwnership()).allocations[opts.ip]?.flatMap((a) => a.owners) ?? [];
        if (owners.length > 0 && !opts.force) {
          throw new CliError(
            `IP address ${opts.ip} is in use by ${owners.join(', ')}: not released (remove the user first, or pass --force)`,
          );
        }
        const result = await ipam.releaseIPs([opts.ip]);
        if (result.released.length === 0) throw new CliError(`IP address ${opts.ip} is not assigned`);
        ctx.io.stdout(`Successfully released IP address ${opts.ip}\n`);
        return;
      }
      const reports: ReleaseReport[] = [];
      const info = await clusterInformation(ds);
      for (const file of opts.fromReport ?? []) {
        const report = await readReport(ctx, file);
        const guid = info?.spec.clusterGUID ?? '';
        if (report.clusterGUID !== guid) {
          throw new CliError(
            `${file} was made for cluster "${report.clusterGUID}", this cluster is "${guid}": refusing to release`,
          );
        }
        if (report.version !== `v${clientVersion()}` && !opts.force) {
          throw new CliError(
            `${file} was made by calico ${report.version || '(unknown)'}, this is v${clientVersion()}: refusing to release (--force to accept it)`,
          );
        }
        reports.push(report);
      }
      const leaked = leakedInAll(reports);
      let refused = 0;
      if (leaked.ips.length === 0) ctx.io.stdout("Report didn't contain any leaked IPs to clean up.\n");
      else {
        ctx.io.stdout(`Releasing ${leaked.ips.length} old IPs...\n`);
        const r = await ipam.releaseLeaked(leaked.ips);
        ctx.io.stdout(`Released ${r.released.length} IPs successfully\n`);
        for (const u of r.stillInUse) {
          ctx.io.stdout(`Not released: ${u.ip} is in use by ${u.owners.join(', ')}\n`);
        }
        for (const ip of r.changed)
          ctx.io.stdout(`Not released: ${ip} was allocated again since the report\n`);
        if (r.notAllocated.length > 0) {
          ctx.io.stdout(
            `${r.notAllocated.length} addresses marked as leaked in the report had already been cleaned up.\n`,
          );
        }
        refused = r.stillInUse.length;
      }
      if (leaked.handles.length === 0) ctx.io.stdout("Report didn't contain any handles to clean up.\n");
      else {
        const h = await ipam.deleteLeakedHandles(leaked.handles);
        for (const s of h.skipped) ctx.io.stdout(`Skipped handle ${s.id}: ${s.reason}\n`);
        ctx.io.stdout(`Released ${h.deleted.length} handles; ${h.skipped.length} skipped; 0 errors.\n`);
      }
      if (refused > 0)
        throw new CliError(`${refused} address(es) in the report are in use now and were not released`);
    });
}

function configureCommand(ctx: CommandContext): Command {
  return subcommand(ctx, 'configure')
    .summary('Change the IPAM configuration (strict affinity, blocks per host)')
    .addOption(
      new Option(
        '--strictaffinity <true|false>',
        'when true, nodes never borrow addresses from other nodes’ blocks',
      ).argParser(bool),
    )
    .addOption(
      new Option(
        '--max-blocks-per-host <N>',
        'blocks one node may claim per address family (0 = no limit)',
      ).argParser(count),
    )
    .action(async (opts: { strictaffinity?: boolean; maxBlocksPerHost?: number }) => {
      if (opts.strictaffinity === undefined && opts.maxBlocksPerHost === undefined) {
        throw new CliError('give --strictaffinity and/or --max-blocks-per-host');
      }
      const ipam = ipamOf(await ctx.datastore());
      const config = await ipam.setConfig({
        ...(opts.strictaffinity === undefined ? {} : { strictAffinity: opts.strictaffinity }),
        ...(opts.maxBlocksPerHost === undefined ? {} : { maxBlocksPerHost: opts.maxBlocksPerHost }),
      });
      if (opts.strictaffinity !== undefined) {
        ctx.io.stdout(`Successfully set StrictAffinity to: ${config.strictAffinity}\n`);
      }
      if (opts.maxBlocksPerHost !== undefined) {
        ctx.io.stdout(`Successfully set MaxBlocksPerHost to: ${config.maxBlocksPerHost}\n`);
      }
    });
}

/** `calico ipam`. */
export function ipamCommand(ctx: CommandContext): Command {
  const ipam = new Command('ipam').summary('IP address management: usage, leaks, release, configuration');
  for (const cmd of [showCommand(ctx), checkCommand(ctx), releaseCommand(ctx), configureCommand(ctx)]) {
    ipam.addCommand(cmd);
  }
  return ipam;
}

/**
 * What a lab node runs — calico-node and the two CNI plugins — as programs (argv), the way a host
 * runs installed software. The lab does not import @calico-ts/node or @calico-ts/cni: their
 * integration tests use the lab, so depending on them would make a cycle. The caller, which
 * depends on them, says where they are (`calicoPrograms({ node: import.meta.resolve(…), … })`).
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type CniPluginName = 'calico' | 'calico-ipam';
export const CNI_PLUGIN_NAMES: readonly CniPluginName[] = ['calico', 'calico-ipam'];

/**
 * @calico-ts/cni's `installCni`, as far as the lab uses it: puts the built plugin binaries into
 * binDir, or throws an error whose `code` is `BUNDLE_MISSING` when they are not built.
 */
export type InstallCni = (options: { binDir: string; confDir: string }) => unknown;

export interface CalicoPrograms {
  /** argv that starts calico-node; the lab sets its environment. */
  readonly calicoNode: readonly string[];
  /** argv of each CNI plugin, for the `#!/bin/sh` launchers the lab puts on CNI_PATH. */
  readonly cniPlugins: Readonly<Record<CniPluginName, readonly string[]>>;
  /** When given and the plugins are built, the built binaries go on CNI_PATH instead of launchers. */
  readonly installCni?: InstallCni | undefined;
  /** argv that starts calico-reflector (@calico-ts/reflector), for dedicated route reflectors. */
  readonly calicoReflector?: readonly string[] | undefined;
}

const toPath = (entry: string): string => (entry.startsWith('file:') ? fileURLToPath(entry) : entry);

/**
 * argv that runs a script (path or file: URL) on this Node: TypeScript source with the workspace's
 * source condition (so it finds the other packages' source), built JavaScript as it is.
 */
export function nodeProgram(entry: string): string[] {
  const file = toPath(entry);
  return file.endsWith('.ts')
    ? [process.execPath, '--conditions=@calico-ts/source', file]
    : [process.execPath, file];
}

/**
 * Node options calico-node runs with, here and in the node image (images/node/entrypoint.sh): a
 * young generation of at most 2 MB per semi-space. calico-node's live heap is ~35 MB; with V8's
 * default (semi-spaces growing to 16 MB and more under a burst of CNI ADDs) the young generation
 * alone held ~37 MB of garbage after 110 ADDs and the committed heap reached 177 MB
 * (docs/benchmarks.md, calico-node, 2026-12-04 footprint).
 */
export const CALICO_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/**
 * The programs of @calico-ts/node and @calico-ts/cni from their package entries as the caller
 * resolves them — `src/index.ts` from source, `dist/index.js` built: calico-node is `main` beside
 * the entry, the plugins `bin/<name>.ts` (source) or `<name>.cjs` (built). Pass cni's `installCni`
 * to use the built plugin binaries when there are.
 */
export function calicoPrograms(entries: {
  node: string;
  cni: string;
  installCni?: InstallCni;
  /** @calico-ts/reflector's entry: calico-reflector is `main` beside it. */
  reflector?: string;
  /** Node options for calico-node (default CALICO_NODE_FLAGS; `[]` runs it with Node's defaults). */
  nodeFlags?: readonly string[];
  /**
   * Given a source entry, run calico-node built (`dist/bin.js`, what the images run) when that
   * build is fresh (see freshBuild); from source otherwise.
   */
  preferBuilt?: boolean;
}): CalicoPrograms {
  const given = toPath(entries.node);
  const nodeEntry = (entries.preferBuilt && given.endsWith('.ts') && freshBuild(given)) || given;
  const cniEntry = toPath(entries.cni);
  const plugin = (name: CniPluginName): string[] =>
    nodeProgram(
      cniEntry.endsWith('.ts')
        ? join(dirname(cniEntry), 'bin', `${name}.ts`)
        : join(dirname(cniEntry), `${name}.cjs`),
    );
  return {
    calicoNode: withFlags(besideMain(nodeEntry), entries.nodeFlags ?? CALICO_NODE_FLAGS),
    cniPlugins: { calico: plugin('calico'), 'calico-ipam': plugin('calico-ipam') },
    installCni: entries.installCni,
    calicoReflector: entries.reflector === undefined ? undefined : besideMain(toPath(entries.reflector)),
  };
}

/**
 * The program beside a package entry: `main.ts` from source; built, the package's `bin.js` when it
 * has one (a bundle moves main's body into a shared chunk, where `import.meta.main` is never
 * true, so a built `main.js` may only export), else `main.js`.
 */
const besideMain = (entry: string): string[] => {
  if (entry.endsWith('.ts')) return nodeProgram(join(dirname(entry), 'main.ts'));
  const bin = join(dirname(entry), 'bin.js');
  return nodeProgram(existsSync(bin) ? bin : join(dirname(entry), 'main.js'));
};

/**
 * The built entry (`dist/index.js`) of the workspace package whose source entry (`src/index.ts`)
 * is given, when it is fresh: that package and every workspace package it depends on (through
 * `dependencies`, transitively) has a dist/ whose oldest file is newer than its newest source file.
 * Undefined when anything is missing or older, so that nobody runs a build of code since edited.
 */
export function freshBuild(sourceEntry: string): string | undefined {
  const seen = new Set<string>();
  const fresh = (pkgDir: string): boolean => {
    if (seen.has(pkgDir)) return true;
    seen.add(pkgDir);
    const dist = join(pkgDir, 'dist');
    if (!existsSync(dist)) return false;
    const built = readdirSync(dist).filter((f) => f.endsWith('.js'));
    if (built.length === 0) return false;
    const oldestBuilt = Math.min(...built.map((f) => statSync(join(dist, f)).mtimeMs));
    if (newestSource(join(pkgDir, 'src')) > oldestBuilt) return false;
    const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    return Object.entries(manifest.dependencies ?? {})
      .filter(([, version]) => version.startsWith('workspace:'))
      .every(([name]) => {
        const dep = join(pkgDir, 'node_modules', name);
        return existsSync(dep) && fresh(realpathSync(dep));
      });
  };
  const pkgDir = dirname(dirname(sourceEntry));
  return fresh(pkgDir) ? join(pkgDir, 'dist', 'index.js') : undefined;
}

/** Newest modification time of the non-test TypeScript files under dir (0 when there are none). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts') || e.name.endsWith('.test.ts')) continue;
    newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

/** argv with Node options put right after the node executable. */
const withFlags = (argv: string[], flags: readonly string[]): string[] => [
  argv[0] as string,
  ...flags,
  ...argv.slice(1),
];

const shellQuote = (arg: string): string =>
  /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;

/** Writes an executable `#!/bin/sh` launcher per plugin into binDir that execs its argv. */
export function writeLaunchers(binDir: string, programs: Readonly<Record<string, readonly string[]>>): void {
  mkdirSync(binDir, { recursive: true });
  for (const [name, argv] of Object.entries(programs)) {
    const file = join(binDir, name);
    writeFileSync(file, `#!/bin/sh\nexec ${argv.map(shellQuote).join(' ')}\n`);
    chmodSync(file, 0o755);
  }
}

/**
 * Puts the CNI plugins on CNI_PATH (binDir), as a node's install step would: the built binaries
 * through `installCni` when there are (they start in a quarter of the time), else launchers that
 * run the plugins from `cniPlugins`. Returns which it did.
 */
export function installPlugins(
  programs: CalicoPrograms,
  dirs: { binDir: string; confDir: string },
): 'built' | 'launchers' {
  if (programs.installCni) {
    try {
      programs.installCni(dirs);
      return 'built';
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'BUNDLE_MISSING') throw err;
    }
  }
  writeLaunchers(dirs.binDir, programs.cniPlugins);
  return 'launchers';
}

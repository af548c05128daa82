/**
 * The release pipeline's checks, before anything is published:
 *
 *   node scripts/release-check.ts [--skip-build] [--skip-tests] [--keep] [--only <pkg>,...]
 *
 * 1. builds every package (`nx run-many -t build`) and runs the test suite (`nx run-many -t test`);
 * 2. packs every publishable package with `pnpm pack` (which turns `workspace:` and `catalog:`
 *    specifiers into versions, and `publishConfig.exports` into `exports`);
 * 3. checks each tarball: only package.json, README/LICENSE and dist/ inside; no `workspace:` or
 *    `catalog:` specifier left; no `@calico-ts/source` export condition (it names src/, which the
 *    workspace's own tests and type checks use and the tarball does not hold); every `exports`,
 *    `main`, `types` and `bin` target present; then `publint` (strict) and Are the Types Wrong
 *    (`@arethetypeswrong/core`, filtered as the CLI's `--profile esm-only`: the packages are ESM
 *    for Node >= 24 and make no claim to `require` or node10 resolution) on the tarball;
 * 4. installs all tarballs into an empty directory outside the workspace with npm (third-party
 *    dependencies from the registry), imports every package from plain ESM there, and runs every
 *    `bin`: `calico --version` prints the version; the daemons reject an unknown option with a
 *    message naming it (so the program loaded and parsed its arguments).
 * Exits non-zero naming each failure. Pack output and the scratch project go to a temp dir, removed
 * at the end unless --keep. e2e/test/consumer.int.test.ts runs steps 2 and 3 in CI and uses the
 * libraries as a consumer would (examples/npm).
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { checkPackage, createPackageFromTarballData } from '@arethetypeswrong/core';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_CONDITION = '@calico-ts/source';
const DEPENDENCY_FIELDS = ['dependencies', 'peerDependencies', 'optionalDependencies'] as const;

export interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
  main?: string;
  types?: string;
  bin?: string | Record<string, string>;
  exports?: unknown;
  publishConfig?: { exports?: unknown };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

export interface Packed {
  dir: string;
  pkg: PackageJson;
  tarball: string;
}

const failures: string[] = [];
const fail = (message: string) => {
  failures.push(message);
  process.stderr.write(`  FAIL ${message}\n`);
};
const log = (message: string) => process.stderr.write(`[release] ${message}\n`);

function run(cmd: string, args: string[], cwd = ROOT, inherit = false) {
  const result = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: inherit ? 'inherit' : 'pipe',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, NX_DAEMON: 'false', NX_TUI: 'false', NX_NO_CLOUD: 'true' },
  });
  return { status: result.status ?? 1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

const execFileP = promisify(execFile);

/** `run` without blocking the event loop, so packing and linting can overlap other work. */
async function runAsync(cmd: string, args: string[], cwd = ROOT) {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024 });
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return {
      status: typeof e.code === 'number' ? e.code : 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    };
  }
}

async function mustAsync(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const r = await runAsync(cmd, args, cwd);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function must(cmd: string, args: string[], cwd = ROOT, inherit = false): string {
  const r = run(cmd, args, cwd, inherit);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export function publishablePackages(): { dir: string; pkg: PackageJson }[] {
  return readdirSync(join(ROOT, 'packages'))
    .map((name) => join(ROOT, 'packages', name))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson }))
    .filter(({ pkg }) => !pkg.private)
    .sort((a, b) => a.pkg.name.localeCompare(b.pkg.name));
}

/** Every file an `exports` map can resolve to, through any condition. */
export function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (Array.isArray(exports)) return exports.flatMap(exportTargets);
  if (exports && typeof exports === 'object') return Object.values(exports).flatMap(exportTargets);
  return [];
}

/** Whether an `exports` map names the workspace-only condition anywhere. */
function hasSourceCondition(exports: unknown): boolean {
  if (Array.isArray(exports)) return exports.some(hasSourceCondition);
  if (exports && typeof exports === 'object')
    return Object.entries(exports).some(
      ([key, value]) => key === SOURCE_CONDITION || hasSourceCondition(value),
    );
  return false;
}

function bins(pkg: PackageJson): Record<string, string> {
  if (typeof pkg.bin === 'string') return { [pkg.name.split('/').pop() ?? pkg.name]: pkg.bin };
  return pkg.bin ?? {};
}

/** What is wrong with one packed tarball's contents and manifest. */
export function checkTarball(files: string[], pkg: PackageJson): string[] {
  const problems: string[] = [];
  const inside = new Set(files.map((f) => f.replace(/^package\//, '')));
  for (const f of inside) {
    if (!/^(package\.json|README(\.md)?|LICENSE(\.md|\.txt)?|dist\/.+)$/i.test(f))
      problems.push(`unexpected file ${f}`);
  }
  if (![...inside].some((f) => f.startsWith('dist/'))) problems.push('no dist/ (was it built?)');
  for (const field of DEPENDENCY_FIELDS) {
    for (const [dep, spec] of Object.entries(pkg[field] ?? {})) {
      if (/^(workspace|catalog):/.test(spec))
        problems.push(`${field}.${dep} is still ${JSON.stringify(spec)}`);
    }
  }
  if (hasSourceCondition(pkg.exports))
    problems.push(
      `exports names the workspace-only condition ${SOURCE_CONDITION} (publishConfig.exports should drop it)`,
    );
  const targets = [
    ...exportTargets(pkg.exports).map((t) => ['exports', t] as const),
    ...(pkg.main ? [['main', pkg.main] as const] : []),
    ...(pkg.types ? [['types', pkg.types] as const] : []),
    ...Object.entries(bins(pkg)).map(([name, t]) => [`bin.${name}`, t] as const),
  ];
  for (const [field, target] of targets) {
    const path = target.replace(/^\.\//, '');
    if (!inside.has(path)) problems.push(`${field} → ${target} is not in the tarball`);
  }
  return problems;
}

/** `pnpm pack` of one package into its own directory under `dest`; the tarball's path. */
export async function pack(dir: string, dest: string): Promise<string> {
  const into = join(dest, relative(join(ROOT, 'packages'), dir).replaceAll('/', '-'));
  mkdirSync(into, { recursive: true });
  await mustAsync('pnpm', ['pack', '--pack-destination', into], dir);
  const made = readdirSync(into).filter((f) => f.endsWith('.tgz'));
  if (made.length !== 1) throw new Error(`pnpm pack in ${relative(ROOT, dir)} made ${made.length} tarballs`);
  return join(into, made[0] ?? '');
}

export async function tarballManifest(tarball: string): Promise<{ files: string[]; pkg: PackageJson }> {
  const files = (await mustAsync('tar', ['-tzf', tarball])).split('\n').filter((f) => f && !f.endsWith('/'));
  const pkg = JSON.parse(await mustAsync('tar', ['-xzOf', tarball, 'package/package.json'])) as PackageJson;
  return { files, pkg };
}

/** Packs and checks every package, `parallel` at a time: the tarballs and each one's problems. */
export async function packAndCheck(
  packages: { dir: string; pkg: PackageJson }[],
  dest: string,
  parallel = 2,
): Promise<{ packed: Packed[]; problems: string[] }> {
  const packed: Packed[] = [];
  const problems: string[] = [];
  const queue = [...packages];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const tarball = await pack(next.dir, dest);
      const contents = await tarballManifest(tarball);
      const found = [...checkTarball(contents.files, contents.pkg), ...(await lintTarball(tarball))];
      log(`${next.pkg.name}: ${contents.files.length} files${found.length ? '' : ', ok'}`);
      problems.push(...found.map((p) => `${next.pkg.name}: ${p}`));
      packed.push({ dir: next.dir, pkg: contents.pkg, tarball });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  packed.sort((a, b) => a.pkg.name.localeCompare(b.pkg.name));
  return { packed, problems };
}

/** The resolution modes an ESM-only package (Node >= 24, `import` only) is not meant for. */
const CJS_ONLY_RESOLUTIONS = new Set(['node10', 'node16-cjs']);

/**
 * publint (strict: warnings count) and Are the Types Wrong (ESM-only profile) on one packed
 * tarball, as the registry would serve it.
 */
export async function lintTarball(tarball: string): Promise<string[]> {
  const problems: string[] = [];
  const bytes = readFileSync(tarball);
  const { messages, pkg } = await publint({
    pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) },
    strict: true,
    level: 'warning',
  });
  for (const m of messages)
    problems.push(`publint ${m.type}: ${formatMessage(m, pkg, { color: false }) ?? m.code}`);
  // The CLI's `--profile esm-only` is this filter over the same analysis, done in-process so the
  // TypeScript compiler loads once for every tarball instead of once per package.
  const analysis = await checkPackage(createPackageFromTarballData(new Uint8Array(bytes)));
  if (analysis.types === false) problems.push('attw: the package ships no types');
  else {
    for (const p of analysis.problems) {
      const resolution = 'resolutionKind' in p ? p.resolutionKind : undefined;
      if (resolution && CJS_ONLY_RESOLUTIONS.has(resolution)) continue;
      const where = 'entrypoint' in p ? ` at ${p.entrypoint}` : '';
      problems.push(`attw ${p.kind}${where}${resolution ? ` (${resolution})` : ''}`);
    }
  }
  return problems;
}

/** Installs every tarball into an empty project with npm; imports each package and runs each bin. */
function consumerCheck(packed: Packed[], scratch: string): void {
  const project = join(scratch, 'consumer');
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'calico-ts-release-consumer', private: true, type: 'module' }, null, 2)}\n`,
  );
  log(`npm install of ${packed.length} tarballs into ${project}`);
  const install = run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      ...packed.map((p) => p.tarball),
    ],
    project,
  );
  if (install.status !== 0) {
    fail(`npm install of the tarballs failed:\n${install.stderr}`);
    return;
  }
  for (const { pkg } of packed) {
    const probe = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(pkg.name)}); console.log(Object.keys(m).length);`,
      ],
      project,
    );
    const count = Number(probe.stdout.trim());
    if (probe.status !== 0 || !(count > 0)) {
      fail(
        `${pkg.name}: import from an npm install failed: ${probe.stderr.trim().split('\n').slice(0, 5).join(' | ')}`,
      );
    }
    for (const name of Object.keys(bins(pkg))) {
      const bin = join(project, 'node_modules/.bin', name);
      if (!existsSync(bin)) {
        fail(`${pkg.name}: npm did not link bin ${name}`);
        continue;
      }
      if (name === 'calico') {
        const r = run(bin, ['--version'], project);
        if (r.status !== 0 || !r.stdout.includes(pkg.version))
          fail(`calico --version: exit ${r.status}, ${r.stdout}${r.stderr}`);
      } else {
        const r = run(bin, ['--calico-ts-release-probe'], project);
        const said = `${r.stdout}${r.stderr}`;
        if (
          r.status === 0 ||
          !said.includes('calico-ts-release-probe') ||
          /ERR_MODULE_NOT_FOUND|Cannot find/.test(said)
        ) {
          fail(
            `${name} (${pkg.name}) did not reject an unknown option cleanly: exit ${r.status}, ${said.trim().slice(0, 300)}`,
          );
        }
      }
    }
  }
}

async function releaseCheck(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'skip-build': { type: 'boolean' },
      'skip-tests': { type: 'boolean' },
      keep: { type: 'boolean' },
      only: { type: 'string' },
    },
  });
  if (!values['skip-build']) {
    log('nx run-many -t build');
    must('pnpm', ['exec', 'nx', 'run-many', '-t', 'build', '--outputStyle=stream'], ROOT, true);
  }
  if (!values['skip-tests']) {
    log('nx run-many -t test');
    must(
      'pnpm',
      ['exec', 'nx', 'run-many', '-t', 'test', '--parallel=2', '--outputStyle=stream'],
      ROOT,
      true,
    );
  }
  const only = values.only?.split(',');
  const scratch = mkdtempSync(join(tmpdir(), 'calico-ts-release-'));
  try {
    const selected = publishablePackages().filter(({ pkg }) => !only || only.includes(pkg.name));
    const { packed, problems } = await packAndCheck(selected, scratch);
    for (const p of problems) fail(p);
    consumerCheck(packed, scratch);
  } finally {
    if (values.keep) log(`kept ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
  if (failures.length > 0) {
    process.stderr.write(`release check: ${failures.length} problem(s)\n`);
    return 1;
  }
  log('release check passed');
  return 0;
}

if (import.meta.main) {
  process.exitCode = await releaseCheck().catch((err: Error) => {
    process.stderr.write(`release check: ${err.message}\n`);
    return 1;
  });
}

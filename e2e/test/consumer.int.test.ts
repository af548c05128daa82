/**
 * The packages as npm users get them. Every publishable package is packed once (`pnpm pack`),
 * each tarball is checked (contents, no workspace specifiers or source condition, publint strict,
 * Are the Types Wrong), then a scratch project in a temp dir outside the workspace installs the
 * library tarballs with npm (third-party dependencies from the registry) and runs examples/npm:
 * the BGP speaker peering with a real BIRD and IPAM on a real etcd from plain ESM JavaScript, the
 * selector engine and the model's validation from TypeScript (run with Node's type stripping),
 * and `tsc` type-checks all four against the installed declarations.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EtcdDatastore } from '@calico-ts/datastore';
import { type EtcdProcess, freePort, startEtcd } from '@calico-ts/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Packed, packAndCheck, publishablePackages } from '../../scripts/release-check.ts';
import { command, describeWith } from '../../test-support/requirements.ts';
import { runPrefix } from '../../test-support/run-id.ts';
import { waitFor } from '../src/container-cluster.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const EXAMPLES = join(ROOT, 'examples/npm');
const LIBRARIES = ['@calico-ts/datastore', '@calico-ts/bgp', '@calico-ts/ipam', '@calico-ts/text-table'];
const execFileP = promisify(execFile);

const workspaceVersion = (name: string): string =>
  JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;

async function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describeWith(
  [command('npm'), command('etcd'), command('bird'), command('birdc')],
  'npm consumer of the packed packages',
  () => {
    const prefix = runPrefix('hh');
    const scratch = mkdtempSync(join(tmpdir(), `calico-ts-${prefix}-consumer-`));
    const project = join(scratch, 'project');
    const packed: Packed[] = [];
    const tarballProblems: string[] = [];
    let etcd: EtcdProcess | undefined;
    let bird: ChildProcess | undefined;
    const birdCtl = join(scratch, 'bird.ctl');
    const BIRD_ADDRESS = '127.0.1.41';
    const OUR_ADDRESS = '127.0.1.42';
    let birdPort = 0;
    const birdc = (...args: string[]) => run('birdc', ['-s', birdCtl, ...args], scratch);

    beforeAll(async () => {
      const tarballs = join(scratch, 'tarballs');
      mkdirSync(tarballs);
      mkdirSync(project);
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({ name: 'calico-ts-consumer', private: true, type: 'module' }),
      );
      for (const f of readdirSync(EXAMPLES)) copyFileSync(join(EXAMPLES, f), join(project, f));
      // The libraries first, so that npm installs them while the other packages are packed and linted.
      const all = publishablePackages();
      const libraries = await packAndCheck(
        all.filter((p) => LIBRARIES.includes(p.pkg.name)),
        tarballs,
      );
      expect(libraries.packed).toHaveLength(LIBRARIES.length);
      const [others, install] = await Promise.all([
        packAndCheck(
          all.filter((p) => !LIBRARIES.includes(p.pkg.name)),
          tarballs,
          1,
        ),
        run(
          'npm',
          [
            'install',
            '--no-audit',
            '--no-fund',
            '--prefer-offline',
            '--loglevel=error',
            ...libraries.packed.map((p) => p.tarball),
            `typescript@${workspaceVersion('typescript')}`,
            `@types/node@${workspaceVersion('@types/node')}`,
          ],
          project,
        ),
      ]);
      if (install.code !== 0) throw new Error(`npm install failed: ${install.stderr}`);
      packed.push(...libraries.packed, ...others.packed);
      tarballProblems.push(...libraries.problems, ...others.problems);

      etcd = await startEtcd({ dir: join(scratch, 'etcd') });
      birdPort = await freePort();
      writeFileSync(
        join(scratch, 'bird.conf'),
        `router id 192.0.2.41;
protocol device {}
protocol static s4 { ipv4; route 240.1.0.0/24 blackhole; }
protocol bgp consumer {
  local ${BIRD_ADDRESS} port ${birdPort} as 65001;
  neighbor ${OUR_ADDRESS} as 64512;
  multihop; passive on; hold time 9;
  ipv4 { import all; export all; next hop self; };
}
`,
      );
      bird = spawn('bird', ['-f', '-c', join(scratch, 'bird.conf'), '-s', birdCtl], { stdio: 'ignore' });
      await waitFor('BIRD control socket', 20_000, async () =>
        (await birdc('show', 'status')).stdout.includes('Daemon is up') ? true : undefined,
      );
    }, 240_000);

    afterAll(async () => {
      if (bird?.pid && bird.exitCode === null) {
        const exited = new Promise((resolve) => bird?.once('exit', resolve));
        process.kill(bird.pid, 'SIGTERM');
        await exited;
      }
      await etcd?.stop();
      rmSync(scratch, { recursive: true, force: true });
    });

    it('every publishable package packs clean and passes publint (strict) and attw (ESM-only)', () => {
      expect(packed.map((p) => p.pkg.name).sort()).toEqual(
        publishablePackages()
          .map((p) => p.pkg.name)
          .sort(),
      );
      expect(packed.length).toBeGreaterThanOrEqual(10);
      expect(tarballProblems).toEqual([]);
    });

    it('tsc type-checks the examples against the installed declarations (types resolved, not any)', async () => {
      writeFileSync(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            target: 'es2024',
            strict: true,
            noEmit: true,
            allowJs: true,
            checkJs: true,
            allowImportingTsExtensions: true,
            // The installed declarations are read and resolved; only their own bodies go unchecked.
            skipLibCheck: true,
            types: ['node'],
          },
          include: ['*.ts', '*.mjs'],
        }),
      );
      // Each line below is an error only when the packages' types resolved: with `any` in their
      // place, tsc reports the directive as unused (TS2578) instead.
      writeFileSync(
        join(project, 'types-resolved.ts'),
        `import { BgpSpeaker } from '@calico-ts/bgp';
import { parseSelector, validateResource } from '@calico-ts/datastore';
import { Ipam } from '@calico-ts/ipam';
// @ts-expect-error routerId is a string
new BgpSpeaker({ routerId: 1, asNumber: 64512 });
// @ts-expect-error evaluate takes a label map
parseSelector('all()').evaluate(42);
// @ts-expect-error no such kind
validateResource('IPPoool', {});
// @ts-expect-error Ipam needs a datastore
new Ipam();
const r = validateResource('IPPool', { metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16' } });
if (r.ok) {
  const size: number = r.value.spec.blockSize;
  // @ts-expect-error cidr is a string
  const wrong: number = r.value.spec.cidr;
  console.log(size, wrong);
}
`,
      );
      const tsc = await run(
        process.execPath,
        [join(project, 'node_modules/typescript/bin/tsc'), '-p', '.'],
        project,
      );
      expect(`${tsc.stdout}${tsc.stderr}`).toBe('');
      expect(tsc.code).toBe(0);
    });

    it('the selector engine from TypeScript', async () => {
      const r = await run(process.execPath, ['selector.ts', "role == 'db' && has(tier)"], project);
      expect(r.stderr).toBe('');
      // Calico's canonical form (double quotes), the same string Calico hashes for ipset names.
      expect(jsonLines(r.stdout)).toEqual([{ selector: '(role == "db" && has(tier))', matching: ['db-0'] }]);
      const bad = await run(process.execPath, ['selector.ts', "role == 'db"], project);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/db/);
    });

    it("the model's validation from TypeScript: defaults filled in, problems named by field", async () => {
      writeFileSync(
        join(project, 'good.yaml'),
        'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-a}\nspec: {cidr: 10.10.0.0/16}\n',
      );
      const ok = await run(process.execPath, ['validate.ts', 'good.yaml'], project);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toBe('ok IPPool pool-a\n   cidr 10.10.0.0/16, blocks of /26\n');
      writeFileSync(
        join(project, 'bad.yaml'),
        'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-a}\nspec: {cidr: 10.10.0.0/16}\n---\n' +
          'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-b}\nspec: {cidr: 10.20.0.0/16, blockSize: 99}\n',
      );
      const bad = await run(process.execPath, ['validate.ts', 'bad.yaml'], project);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain('ok IPPool pool-a');
      expect(bad.stdout).toMatch(/^bad\.yaml:6: spec\.blockSize: .+ \(got 99\)$/m);
    });

    it('the text tables from plain ESM JavaScript', async () => {
      const r = await run(process.execPath, ['text-table.mjs'], project);
      expect(r.stderr).toBe('');
      const lines = r.stdout.split('\n');
      expect(lines.slice(0, 3)).toEqual([
        'NAME                  CIDR             SELECTOR',
        'default-ipv4-ippool   192.168.0.0/16   all()',
        // Two wide characters take four columns: the CIDR column still lines up.
        `東京-pool${' '.repeat(13)}10.10.0.0/16     zone == 'tokyo'`,
      ]);
      expect(lines).toContain('| 198.51.100.2 | node-to-node mesh | up    | 04:01:07 | Established |');
    });

    it('IPAM on a real etcd from plain ESM JavaScript', async () => {
      const r = await run(process.execPath, ['ipam-etcd.mjs'], project, {
        ETCD_ENDPOINTS: etcd?.localEndpoint ?? '',
        POOL_CIDR: '10.244.0.0/16',
        NODE_NAME: `${prefix}-node`,
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const [assigned, held, released] = jsonLines(r.stdout);
      expect(String(assigned?.assigned)).toMatch(/^10\.244\.\d+\.\d+$/);
      expect(String(assigned?.block)).toMatch(/^10\.244\.\d+\.\d+\/26$/);
      expect(held).toEqual({ held: 1 });
      expect(released).toEqual({ held: 0 });
      // What the consumer wrote is in etcd, in Calico's layout: the pool and the node's block.
      const ds = new EtcdDatastore({ endpoints: etcd?.localEndpoint ?? '' });
      try {
        expect((await ds.get('IPPool', 'example-pool')).spec.cidr).toBe('10.244.0.0/16');
        const affinities = (await ds.list('BlockAffinity')).items.map((a) => a.spec);
        expect(affinities).toContainEqual(
          expect.objectContaining({ node: `${prefix}-node`, cidr: assigned?.block, state: 'confirmed' }),
        );
      } finally {
        await ds.close();
      }
    });

    it('the BGP speaker from plain ESM JavaScript peers with BIRD and exchanges routes', async () => {
      const speaker = spawn(process.execPath, ['bgp-peer.mjs'], {
        cwd: project,
        env: {
          ...process.env,
          PEER_ADDRESS: BIRD_ADDRESS,
          PEER_PORT: String(birdPort),
          PEER_AS: '65001',
          LOCAL_ADDRESS: OUR_ADDRESS,
          ANNOUNCE: '198.18.7.0/24',
        },
      });
      let out = '';
      let err = '';
      speaker.stdout.on('data', (d) => {
        out += d;
      });
      speaker.stderr.on('data', (d) => {
        err += d;
      });
      const exited = new Promise<number | null>((resolve) => speaker.once('exit', (code) => resolve(code)));
      try {
        await waitFor('BIRD route at the speaker', 30_000, async () =>
          jsonLines(out).some((l) => l.prefix === '240.1.0.0/24') ? true : undefined,
        );
        expect(jsonLines(out)).toContainEqual({ peer: BIRD_ADDRESS, state: 'Established' });
        expect(jsonLines(out)).toContainEqual({
          prefix: '240.1.0.0/24',
          nextHop: BIRD_ADDRESS,
          withdrawn: false,
        });
        const atBird = await waitFor('our route at BIRD', 20_000, async () => {
          const r = await birdc('show', 'route', 'all', '198.18.7.0/24');
          return r.stdout.includes('consumer') ? r.stdout : undefined;
        });
        expect(atBird).toMatch(/BGP\.as_path: 64512/);
      } finally {
        if (speaker.exitCode === null && speaker.pid) process.kill(speaker.pid, 'SIGTERM');
      }
      expect(await exited).toBe(0);
      expect(err).toBe('');
      expect(jsonLines(out).at(-1)).toEqual({ stopped: true });
      // The speaker closed its session (a Cease): BIRD's side of it is no longer up.
      await waitFor('the session down at BIRD', 20_000, async () => {
        const r = await birdc('show', 'protocols', 'consumer');
        return r.code === 0 && /consumer\s+BGP/.test(r.stdout) && !r.stdout.includes('Established')
          ? true
          : undefined;
      });
    });
  },
);

/** The code of each `<!-- example: examples/npm/X -->` block in a README, by file. */
function readmeExamples(readme: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of readme.matchAll(/<!-- example: examples\/npm\/([\w.-]+) -->\n```\w+\n([\s\S]*?)\n```/g))
    found.set(m[1] ?? '', `${m[2]}\n`);
  return found;
}

describe('published READMEs and examples/npm', () => {
  const IGNORE_CONSOLE = /^\/\/ biome-ignore-all lint\/suspicious\/noConsole: .*\n/;
  const readmes = publishablePackages().map(({ dir, pkg }) => ({
    name: pkg.name,
    readme: readFileSync(join(dir, 'README.md'), 'utf8'),
  }));
  const embedded = new Map(readmes.flatMap(({ readme }) => [...readmeExamples(readme)]));

  it('each published README starts with Install (npm install of the package itself)', () => {
    for (const { name, readme } of readmes) {
      const firstSection = /^## (.+)$/m.exec(readme);
      expect(firstSection?.[1], name).toBe('Install');
      const install = /^## Install\n\n```sh\n(.+)\n/m.exec(readme)?.[1] ?? '';
      expect(install, name).toMatch(new RegExp(`^npm install (-g )?${name}( |$)`));
    }
  });

  it('the examples in the READMEs are the files this test runs, verbatim', () => {
    const files = readdirSync(EXAMPLES).sort();
    expect(files).toEqual(['bgp-peer.mjs', 'ipam-etcd.mjs', 'selector.ts', 'text-table.mjs', 'validate.ts']);
    expect([...embedded.keys()].sort()).toEqual(files);
    for (const file of files) {
      const code = readFileSync(join(EXAMPLES, file), 'utf8').replace(IGNORE_CONSOLE, '');
      expect(embedded.get(file), file).toBe(code);
    }
  });
});

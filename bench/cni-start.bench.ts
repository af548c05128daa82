// Start-up of the part a container runtime execs for each CNI call, every candidate form side by
// side in one run: each does one ADD round trip to a stub calico-node socket hosted here (a
// canned answer, so only exec + start + relay is timed), interleaved call by call.
// Forms: the shipped shim (`#!node` + CommonJS bundle, as installCni writes it); the same bundle
// as a Node single executable application (SEA, with code cache; needs postject); a Bun-compiled
// executable of the shim's TypeScript (needs bun); the C byte relay (cc); `node -e 0` and
// Debian's Go `ptp` (VERSION) for reference.
// `cd bench && node --conditions=@calico-ts/source cni-start.bench.ts`; BENCH_POSTJECT and
// BENCH_BUN name the tools (left out when absent: postject and bun are npm packages, not project
// dependencies), BENCH_CNI_START_RUNS the calls per form (40).
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'tsup';
import { buildRelay } from '../packages/cni/build-relay.ts';
import { pluginExecutable, relayExecutable } from '../packages/cni/src/install.ts';
import { pluginBinaries } from '../packages/cni/tsup.config.ts';

const RUNS = Number(process.env['BENCH_CNI_START_RUNS'] ?? 40);
const dir = mkdtempSync(join(tmpdir(), 'calico-ts-cni-start-'));
const socketPath = join(dir, 'cni.sock');
const CNI_SRC = new URL('../packages/cni/', import.meta.url).pathname;

const RESULT = `${JSON.stringify({ cniVersion: '1.0.0', interfaces: [], ips: [{ address: '10.0.0.1/32' }] })}\n`;
const RELAY_MAGIC = 'CALICO-CNI-RELAY 1\n';

/** A stub calico-node: answers both wire forms (JSON line, relay frame) with a canned ADD result. */
function stubServer() {
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      if (!all.subarray(0, RELAY_MAGIC.length).equals(Buffer.from(RELAY_MAGIC)) && all.includes(10)) {
        sock.end(`${JSON.stringify({ exitCode: 0, stdout: RESULT })}\n`);
      }
    });
    sock.on('end', () => {
      const all = Buffer.concat(chunks);
      if (all.subarray(0, RELAY_MAGIC.length).equals(Buffer.from(RELAY_MAGIC))) sock.end(`0\n${RESULT}`);
    });
    sock.on('error', () => sock.destroy());
  });
  return new Promise<typeof server>((resolve) => server.listen(socketPath, () => resolve(server)));
}

function run(file: string, args: string[], env: Record<string, string>, stdin: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { PATH: '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stdin.on('error', () => {});
    child.stdin.end(stdin);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${file} exited ${code}: ${out}`));
      else resolve(performance.now() - t0);
    });
  });
}

interface Form {
  name: string;
  file: string;
  args?: string[];
  command?: 'VERSION';
  size?: number;
}

async function forms(): Promise<Form[]> {
  const bundleDir = join(dir, 'bundle');
  await build({ ...pluginBinaries, outDir: bundleDir, config: false, silent: true });
  const bundle = readFileSync(join(bundleDir, 'calico.cjs'), 'utf8');
  const shim = join(dir, 'calico');
  writeFileSync(
    shim,
    pluginExecutable(bundle, `#!${process.execPath}`, 'file:///nonexistent/standalone.js'),
    {
      mode: 0o755,
    },
  );
  const out: Form[] = [
    { name: '`/bin/true` (exec floor)', file: '/bin/true' },
    { name: "Debian's Go `ptp`, VERSION", file: '/usr/lib/cni/ptp', command: 'VERSION' },
    { name: '`node -e 0`', file: process.execPath, args: ['-e', '0'] },
    { name: 'shipped shim: `#!node` + 12 KB CommonJS bundle', file: shim, size: statSync(shim).size },
  ];

  const postject = process.env['BENCH_POSTJECT'];
  if (postject && existsSync(postject)) {
    for (const mode of ['plain', 'cache', 'snapshot'] as const) {
      const main = join(dir, `sea-main-${mode}.cjs`);
      // In a SEA, require() only reaches built-ins; the shim needs nothing else. With a V8 start-up
      // snapshot the bundle's top level runs when the snapshot is built, and the call into main()
      // is what runs at start.
      const body = bundle.replace(/^#!.*\n/, '');
      const call = 'main("calico");';
      if (mode === 'snapshot' && !body.includes(call)) throw new Error(`bundle has no ${call}`);
      const deferred = `require("node:v8").startupSnapshot.setDeserializeMainFunction(() => main("calico"));`;
      writeFileSync(main, mode === 'snapshot' ? body.replace(call, deferred) : body);
      const blob = join(dir, `sea-${mode}.blob`);
      const config = join(dir, `sea-${mode}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          main,
          output: blob,
          disableExperimentalSEAWarning: true,
          useCodeCache: mode === 'cache',
          useSnapshot: mode === 'snapshot',
        }),
      );
      execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' });
      const exe = join(dir, `calico-sea-${mode}`);
      copyFileSync(process.execPath, exe);
      execFileSync(
        process.execPath,
        [
          postject,
          exe,
          'NODE_SEA_BLOB',
          blob,
          '--sentinel-fuse',
          'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
        ],
        { stdio: 'pipe' },
      );
      out.push({
        name: `Node SEA of the bundle${{ plain: '', cache: ', code cache', snapshot: ', V8 start-up snapshot' }[mode]}`,
        file: exe,
        size: statSync(exe).size,
      });
    }
  }
  const bun = process.env['BENCH_BUN'];
  if (bun && existsSync(bun)) {
    const exe = join(dir, 'calico-bun');
    execFileSync(
      bun,
      ['build', '--compile', '--minify', join(CNI_SRC, 'src/bin/calico.ts'), '--outfile', exe],
      {
        stdio: 'pipe',
      },
    );
    out.push({ name: 'Bun-compiled executable of the shim', file: exe, size: statSync(exe).size });
  }
  // The relay as installCni ships it: built by the package's build, its settings filled in.
  const exe = join(dir, 'calico-relay');
  writeFileSync(exe, relayExecutable(readFileSync(buildRelay(bundleDir)), 'calico', socketPath), {
    mode: 0o755,
  });
  out.push({ name: 'C byte relay (`relay/cni-relay.c`, static)', file: exe, size: statSync(exe).size });
  return out;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};

async function main(): Promise<void> {
  const server = await stubServer();
  try {
    const list = await forms();
    const times = new Map<Form, number[]>(list.map((f) => [f, []]));
    const stdin = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'bench',
      type: 'calico',
      agent_socket: socketPath,
      ipam: { type: 'calico-ipam' },
    });
    const env = {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'bench0',
      CNI_NETNS: '/proc/self/ns/net',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    };
    for (let i = 0; i < RUNS; i++) {
      // Rotate who goes first so no form always runs right after another's exit.
      const order = list.map((_, k) => list[(k + i) % list.length]!);
      for (const f of order) {
        const e = f.command ? { ...env, CNI_COMMAND: f.command } : env;
        times.get(f)!.push(await run(f.file, f.args ?? [], e, stdin));
      }
    }
    const shim = pct(times.get(list[3]!)!, 50);
    const ptp = pct(times.get(list[1]!)!, 50);
    const lines = [
      `| form | size | p50 | p99 | ÷ shipped shim p50 | ÷ Go \`ptp\` VERSION p50 |`,
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...list.map((f) => {
        const xs = times.get(f)!;
        const size = f.size === undefined ? '' : `${(f.size / 1024).toFixed(f.size > 1 << 20 ? 0 : 1)} KiB`;
        return `| ${f.name} | ${size} | ${pct(xs, 50).toFixed(1)} ms | ${pct(xs, 99).toFixed(1)} ms | ${(pct(xs, 50) / shim).toFixed(2)} | ${(pct(xs, 50) / ptp).toFixed(2)} |`;
      }),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stderr.write(`load average at the end: ${readFileSync('/proc/loadavg', 'utf8')}`);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

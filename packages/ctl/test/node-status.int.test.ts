/**
 * `calico node status` as users run it (the real program, node + type stripping) against a unix
 * control socket speaking the BGP agent's protocol; and with nothing listening.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

function calico(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@calico-ts/source', CLI, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('calico node status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'calico-ts-node-status-'));
  const socket = join(dir, 'bgp.ctl');
  const requests: string[] = [];
  let server: net.Server;

  beforeAll(async () => {
    server = net.createServer((c) => {
      c.setEncoding('utf8');
      c.on('data', (d: string) => {
        requests.push(d);
        const since = new Date().toISOString();
        c.end(
          `${JSON.stringify({
            ok: true,
            status: {
              peers: [
                {
                  address: '192.0.2.12',
                  type: 'node-to-node mesh',
                  family: 'ipv4',
                  state: 'up',
                  since,
                  info: 'Established',
                },
                {
                  address: '2001:db8::1',
                  type: 'global',
                  family: 'ipv6',
                  state: 'start',
                  since,
                  info: 'Active',
                },
              ],
            },
          })}\n`,
        );
      });
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks the agent over its control socket and prints both families', async () => {
    const r = await calico(['node', 'status', '--control', socket]);
    expect(r.code).toBe(0);
    expect(requests).toEqual(['{"command":"status"}\n']);
    expect(r.out).toMatch(/^Calico process is running\.\n\nIPv4 BGP status\n\+-/);
    expect(r.out).toMatch(
      /\| 192\.0\.2\.12 {3}\| node-to-node mesh \| up {4}\| \d\d:\d\d:\d\d \| Established \|/,
    );
    expect(r.out).toMatch(
      /IPv6 BGP status\n\+-.*\n\| PEER ADDRESS \| PEER TYPE \| STATE \| {2}SINCE {3}\| {2}INFO {2}\|\n/,
    );
    expect(r.out).toContain('| 2001:db8::1  | global    | start | ');
  });

  it('says the process is not running (exit 1) when nothing answers', async () => {
    const r = await calico(['node', 'status', '--control', join(dir, 'absent.ctl')]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('Calico process is not running.\n');
    expect(r.err).toContain('no BGP agent answers on');
  });
});

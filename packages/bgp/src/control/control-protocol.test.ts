import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ControlError,
  type ControlHandlers,
  type ControlMethods,
  callControl,
  serveControl,
} from './control-protocol.ts';

interface EchoMethods extends ControlMethods {
  echo: { params: { text: string }; result: { text: string; calls: number } };
  fail: { params: Record<string, never>; result: never };
}

const dir = mkdtempSync(join(tmpdir(), 'calico-ts-control-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<ControlError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ControlError);
  return err as ControlError;
}

describe('control protocol over a unix socket', () => {
  it('answers typed calls, refuses unknown methods and handler errors, and removes its socket on close', async () => {
    const path = join(dir, 'echo.sock');
    let calls = 0;
    const server = await serveControl<EchoMethods>(path, {
      echo: (params) => ({ text: String(params.text), calls: ++calls }),
      fail: () => {
        throw new Error('nothing to do');
      },
    });
    expect(await callControl<EchoMethods, 'echo'>(path, 'echo', { text: 'hi' })).toEqual({
      text: 'hi',
      calls: 1,
    });
    const unknown = await failure(callControl(path, 'nope'));
    expect(unknown.failure).toBe('refused');
    expect(unknown.message).toBe('unknown method "nope" (expected echo, fail)');
    const refused = await failure(callControl<EchoMethods, 'fail'>(path, 'fail', {}));
    expect([refused.failure, refused.detail]).toEqual(['refused', 'nothing to do']);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  it('closes while a client holds a connection open without asking anything', async () => {
    const path = join(dir, 'held.sock');
    const server = await serveControl<EchoMethods>(path, {
      echo: (p) => ({ text: String(p.text), calls: 0 }),
      fail: () => {
        throw new Error('nothing to do');
      },
    });
    const held = net.connect(path);
    await new Promise<void>((r) => held.once('connect', () => r()));
    const closedByServer = new Promise<void>((r) => held.once('close', () => r()));
    await server.close();
    await closedByServer;
    expect(existsSync(path)).toBe(false);
  });

  it('says nothing answers when no process listens, naming the server', async () => {
    const err = await failure(callControl(join(dir, 'absent.sock'), 'status', {}, { server: 'calico-bgpd' }));
    expect(err.failure).toBe('unreachable');
    expect(err.message).toMatch(/^cannot reach calico-bgpd at .*absent\.sock: /);
  });

  it('times out on a server that never answers, and reports a reply that is not JSON', async () => {
    const silent = join(dir, 'silent.sock');
    const garbled = join(dir, 'garbled.sock');
    const connections: net.Socket[] = [];
    const servers = [
      net.createServer((c) => connections.push(c)),
      net.createServer((c) => c.on('data', () => c.write('not json\n'))),
    ];
    await new Promise<void>((r) => servers[0]!.listen(silent, r));
    await new Promise<void>((r) => servers[1]!.listen(garbled, r));
    try {
      expect((await failure(callControl(silent, 'status', {}, { timeoutMs: 200 }))).failure).toBe('timeout');
      expect((await failure(callControl(garbled, 'status'))).failure).toBe('malformed');
    } finally {
      for (const c of connections) c.destroy();
      for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
    }
  });

  it('replaces a socket file left by a dead process but not one a live server answers on', async () => {
    const path = join(dir, 'stale.sock');
    writeFileSync(path, '');
    const handlers: ControlHandlers<EchoMethods> = {
      echo: (p) => ({ text: String(p.text), calls: 0 }),
      fail: () => {
        throw new Error('nothing to do');
      },
    };
    const first = await serveControl(path, handlers, { name: 'calico-bgpd' });
    const inUse = await failure(serveControl(path, handlers, { name: 'calico-bgpd' }));
    expect(inUse.failure).toBe('in-use');
    expect(inUse.message).toBe(`control socket ${path} is in use by a running calico-bgpd`);
    expect(await callControl<EchoMethods, 'echo'>(path, 'echo', { text: 'still' })).toEqual({
      text: 'still',
      calls: 0,
    });
    await first.close();
  });
});

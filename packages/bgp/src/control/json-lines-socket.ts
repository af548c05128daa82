/**
 * The framing under the control protocol: a unix stream socket carrying one JSON value per line
 * each way. A socket file left by a process that died is replaced; one a live process answers
 * on is not.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';

/** Requests longer than this without a newline are dropped (nothing legitimate is that big). */
const MAX_REQUEST = 64 * 1024;

/** Why a request got no usable answer. */
export type JsonLinesFailure = 'unreachable' | 'broken' | 'timeout' | 'malformed';

export interface JsonLinesServerOptions {
  /** Turns one parsed request into the answer line's value. */
  answer(request: unknown): Promise<unknown> | unknown;
  /** The answer line's value when parsing the request or `answer` threw. */
  answerError(err: Error): unknown;
  /** The error to throw when a live process already answers on the path. */
  inUseError(path: string): Error;
}

function answersOn(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface JsonLinesServer {
  /** Stop listening and drop open connections (a client that never hangs up cannot hold us). */
  close(): Promise<void>;
}

export async function listenJsonLines(path: string, o: JsonLinesServerOptions): Promise<JsonLinesServer> {
  mkdirSync(dirname(path), { recursive: true });
  if (existsSync(path)) {
    if (await answersOn(path)) throw o.inUseError(path);
    // Unix socket files are not removed when their process is killed.
    rmSync(path, { force: true });
  }
  const open = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    open.add(conn);
    conn.once('close', () => open.delete(conn));
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => conn.destroy());
    conn.on('data', async (chunk: string) => {
      buf += chunk;
      if (buf.indexOf('\n') < 0 && buf.length > MAX_REQUEST) {
        conn.destroy();
        return;
      }
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let reply: unknown;
        try {
          reply = await o.answer(JSON.parse(line));
        } catch (err) {
          reply = o.answerError(err as Error);
        }
        if (!conn.destroyed) conn.write(`${JSON.stringify(reply)}\n`);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const conn of open) conn.destroy();
      }),
  };
}

/** Sends one request line, resolves with the first answer line parsed, and closes the connection. */
export function requestJsonLine(
  path: string,
  request: unknown,
  options: { timeoutMs: number; error: (failure: JsonLinesFailure, detail: string) => Error },
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    let connected = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(options.error('timeout', `no answer within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      connected = true;
      sock.write(`${JSON.stringify(request)}\n`);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(options.error(connected ? 'broken' : 'unreachable', e.message));
    });
    sock.on('end', () => {
      clearTimeout(timer);
      reject(options.error('broken', 'connection closed before an answer'));
    });
    sock.on('data', (d: string) => {
      // Look for the end of the line only in the new chunk: answers can be megabytes.
      const at = d.indexOf('\n');
      buf += d;
      if (at < 0) return;
      clearTimeout(timer);
      sock.removeAllListeners('end');
      sock.end();
      try {
        resolve(JSON.parse(buf.slice(0, buf.length - d.length + at)));
      } catch {
        reject(options.error('malformed', 'the answer is not a JSON line'));
      }
    });
  });
}

/**
 * A small TCP server and prober, run with python3 inside lab namespaces by the host-endpoint and
 * IPv6 policy tests. `serve [PORT…]` accepts and closes connections on each port (80 if none),
 * on IPv4 and IPv6 alike; `probe TIMEOUT TARGET…` connects to every target at once and prints
 * `TARGET=1` for a connection made within TIMEOUT seconds, `TARGET=0` otherwise. A target is
 * `ADDRESS` (port 80), `IPv4:PORT` or `[IPv6]:PORT`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const SCRIPT = `
import selectors, socket, sys, time
def serve(ports):
    sel = selectors.DefaultSelector()
    for port in ports or ['80']:
        s = socket.socket(socket.AF_INET6)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(('::', int(port))); s.listen(128); s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    print('serving', flush=True)
    while True:
        for key, _ in sel.select():
            try:
                c, _ = key.fileobj.accept(); c.close()
            except OSError:
                pass
def address(t):
    if t.startswith('['):
        host, port = t[1:].split(']:', 1)
        return socket.AF_INET6, host, int(port)
    if t.count(':') == 1:
        host, port = t.split(':')
        return socket.AF_INET, host, int(port)
    return (socket.AF_INET6 if ':' in t else socket.AF_INET), t, 80
def probe(timeout, targets):
    sel = selectors.DefaultSelector()
    result = {t: 0 for t in targets}
    for t in targets:
        family, host, port = address(t)
        s = socket.socket(family); s.setblocking(False)
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_WRITE, t)
    deadline = time.monotonic() + timeout
    pending = len(targets)
    while pending > 0:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(left):
            s = key.fileobj
            result[key.data] = 1 if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 else 0
            sel.unregister(s); s.close(); pending -= 1
    print(' '.join(f'{t}={v}' for t, v in result.items()))
if sys.argv[1] == 'serve':
    serve(sys.argv[2:])
else:
    probe(float(sys.argv[2]), sys.argv[3:])
`;

/** Writes the script into `dir` (a test's own temporary directory) and returns its path. */
export function writeTcpProbe(dir: string): string {
  const path = join(dir, 'tcp-probe.py');
  writeFileSync(path, SCRIPT);
  return path;
}

/** One iperf3 client run from a namespace, as the throughput benches use it. */
import type { NetNamespace } from '@calico-ts/kernel';

/**
 * Runs `iperf3 -c target` from `ns` (pinned to CPU 1, JSON output) and returns the receiver's
 * throughput in Gbit/s; a failed run throws with what iperf3 printed, labelled `what`.
 */
export async function iperf3Gbps(
  ns: NetNamespace,
  target: string,
  opts: { port: number; seconds: number; what: string },
): Promise<number> {
  // Loaded on first use: node.bench.ts's probe processes import this file and need no kernel.
  const { execInNamespace } = await import('@calico-ts/kernel');
  const r = await execInNamespace(ns, 'iperf3', [
    '-c',
    target,
    '-p',
    String(opts.port),
    '-t',
    String(opts.seconds),
    '-A',
    '1',
    '-J',
  ]);
  if (r.exitCode !== 0)
    throw new Error(`iperf3 ${opts.what} → ${target}: ${r.stdout.slice(0, 400)} ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

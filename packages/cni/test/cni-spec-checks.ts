/**
 * Checks of plugin answers against the CNI spec's result and error shapes; the runtime side that
 * execs the plugins (a small libcni) is the lab's (`@calico-ts/lab`).
 */
import type { PluginAnswer } from '@calico-ts/lab';

/** CNI SPEC §"Success": the shape every ADD result must have. Throws naming the first deviation. */
export function assertSuccessResult(json: unknown, version: string): void {
  const fail = (why: string): never => {
    throw new Error(`result does not follow the CNI spec: ${why}: ${JSON.stringify(json)}`);
  };
  if (typeof json !== 'object' || json === null) fail('not an object');
  const r = json as Record<string, unknown>;
  if (r['cniVersion'] !== version) fail(`cniVersion ${String(r['cniVersion'])} != ${version}`);
  const ifaces = r['interfaces'];
  if (ifaces !== undefined) {
    if (!Array.isArray(ifaces)) fail('interfaces is not a list');
    for (const i of ifaces as Record<string, unknown>[]) {
      if (typeof i['name'] !== 'string' || i['name'] === '') fail('interface without name');
      if (i['mac'] !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(String(i['mac'])))
        fail(`bad mac ${String(i['mac'])}`);
    }
  }
  const ips = r['ips'];
  if (ips !== undefined) {
    if (!Array.isArray(ips)) fail('ips is not a list');
    for (const ip of ips as Record<string, unknown>[]) {
      if (typeof ip['address'] !== 'string' || !/\/\d+$/.test(ip['address'])) fail('ip address is not CIDR');
      const idx = ip['interface'];
      if (
        idx !== undefined &&
        (typeof idx !== 'number' || !Array.isArray(ifaces) || idx >= (ifaces as unknown[]).length)
      ) {
        fail(`ip interface index ${String(idx)} out of range`);
      }
      if (version.startsWith('0.') && ip['version'] !== (String(ip['address']).includes(':') ? '6' : '4')) {
        fail('pre-1.0 result needs ips[].version');
      }
    }
  }
  const routes = r['routes'];
  if (
    routes !== undefined &&
    (!Array.isArray(routes) ||
      (routes as Record<string, unknown>[]).some((x) => typeof x['dst'] !== 'string'))
  ) {
    fail('routes must be a list of {dst}');
  }
}

/** CNI SPEC §"Error": `{cniVersion, code, msg, details?}` on stdout. */
export function assertErrorResult(answer: PluginAnswer, code: number): void {
  if (answer.code === 0) throw new Error(`expected failure with code ${code}, got success: ${answer.stdout}`);
  const j = answer.json;
  if (!j) throw new Error(`error output is not JSON: stdout=${answer.stdout} stderr=${answer.stderr}`);
  if (typeof j['cniVersion'] !== 'string' || typeof j['msg'] !== 'string') {
    throw new Error(`error output lacks cniVersion/msg: ${answer.stdout}`);
  }
  if (j['code'] !== code)
    throw new Error(`expected code ${code}, got ${String(j['code'])}: ${answer.stdout}`);
}

import { CNI_ERROR, CniError } from './errors.ts';
import { type CniEnv, type CniRequest, parseCommand, parseRequest } from './request.ts';
import { type CniResult, renderResult } from './result.ts';
import { type CniVersion, isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS } from './versions.ts';

/** Where calico-node listens for the plugin binaries (Calico's run directory). */
export const DEFAULT_AGENT_SOCKET = '/var/run/calico/cni.sock';

/** The two plugin binaries; the server dispatches on this. */
export type PluginType = 'calico' | 'calico-ipam';

/** One request over calico-node's CNI socket: one JSON line each way, then the socket closes. */
export interface WireRequest {
  plugin: PluginType;
  env: Record<string, string>;
  stdin: string;
}

export interface WireResponse {
  exitCode: number;
  stdout: string;
}

export type RequestHandler = (req: CniRequest) => Promise<CniResult | undefined>;

/** Only CNI_* variables cross the socket: the rest of the runtime's environment is not ours. */
export function cniEnv(env: CniEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CNI_') && v !== undefined) out[k] = v;
  return out;
}

/** The version to write an error in: the config's when we can read it, else the newest. */
export function errorVersion(stdin: string): CniVersion {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return isSupportedVersion(v) ? v : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

export function errorResponse(err: CniError, stdin: string): WireResponse {
  return { exitCode: 1, stdout: `${JSON.stringify(err.toJSON(errorVersion(stdin)))}\n` };
}

/** CNI SPEC §VERSION: answered without reading or validating the config. */
export function versionResponse(stdin: string): WireResponse {
  return {
    exitCode: 0,
    stdout: `${JSON.stringify({ cniVersion: errorVersion(stdin), supportedVersions: SUPPORTED_VERSIONS })}\n`,
  };
}

/**
 * Runs one CNI invocation through `handler` and renders what the binary must print. `peerPid` is
 * the plugin process that sent it over the socket (see CniRequest.peerPid).
 */
export async function execute(
  plugin: PluginType,
  env: CniEnv,
  stdin: string,
  handler: RequestHandler,
  peerPid?: number,
): Promise<WireResponse> {
  try {
    if (parseCommand(env) === 'VERSION') return versionResponse(stdin);
    const req = parseRequest(env, stdin, plugin);
    if (peerPid !== undefined) req.peerPid = peerPid;
    const result = await handler(req);
    if (result === undefined) return { exitCode: 0, stdout: '' };
    return { exitCode: 0, stdout: `${JSON.stringify(renderResult(result, req.version))}\n` };
  } catch (err) {
    const e =
      err instanceof CniError
        ? err
        : new CniError(CNI_ERROR.internal, 'internal error', (err as Error)?.message ?? String(err));
    return errorResponse(e, stdin);
  }
}

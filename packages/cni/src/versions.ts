import { CNI_ERROR, CniError } from './errors.ts';

/** CNI SPEC versions we speak. Results are rendered in the caller's version. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

function parse(v: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function compareVersions(a: string, b: string): number {
  const pa = parse(a) ?? [0, 0, 0];
  const pb = parse(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/**
 * The version to answer in. CNI SPEC 1.1 §"Configuration format": a runtime may list several in
 * `cniVersions`; the highest one we support wins. Otherwise `cniVersion` must be one we support.
 */
export function negotiateVersion(conf: { cniVersion?: unknown; cniVersions?: unknown }): CniVersion {
  if (Array.isArray(conf.cniVersions) && conf.cniVersions.length > 0) {
    const ours = conf.cniVersions.filter(isSupportedVersion).sort(compareVersions);
    const best = ours.at(-1);
    if (best) return best;
    throw new CniError(
      CNI_ERROR.incompatibleVersion,
      'incompatible CNI versions',
      `config lists cniVersions ${JSON.stringify(conf.cniVersions)}; this plugin supports ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  if (conf.cniVersion === undefined || conf.cniVersion === '') {
    throw new CniError(
      CNI_ERROR.invalidConfig,
      'missing cniVersion',
      'network config field cniVersion is required',
    );
  }
  if (!isSupportedVersion(conf.cniVersion)) {
    throw new CniError(
      CNI_ERROR.incompatibleVersion,
      'incompatible CNI version',
      `config has cniVersion ${JSON.stringify(conf.cniVersion)}; this plugin supports ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  return conf.cniVersion;
}

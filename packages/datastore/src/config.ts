/**
 * Which datastore to use and how to reach it, read the way calicoctl reads it: the same field
 * names (CalicoAPIConfig spec), the same environment variables (each also accepted with a
 * `CALICO_` prefix, which wins, as libcalico-go's envconfig lookup does) and the same config file
 * (`/etc/calico/calicoctl.cfg`, YAML or JSON). Sources are merged field by field: flags over
 * environment over file. The CLI and calico-node both start here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Datastore } from './datastore.ts';
import { DatastoreError } from './errors.ts';
import { type EtcdDatastoreOptions, parseEndpoints } from './etcd-client.ts';
import { EtcdDatastore } from './etcd-datastore.ts';
import { MemoryDatastore } from './memory.ts';

export const DEFAULT_CONFIG_FILE = '/etc/calico/calicoctl.cfg';
export const DEFAULT_ETCD_ENDPOINTS = 'http://127.0.0.1:2379';
export const SUPPORTED_DATASTORE_TYPES = ['etcdv3', 'memory'] as const;
export type DatastoreType = (typeof SUPPORTED_DATASTORE_TYPES)[number];

/** The connection fields of calicoctl's CalicoAPIConfig spec that calico-ts uses. */
export interface DatastoreSettings {
  datastoreType?: string;
  etcdEndpoints?: string;
  etcdUsername?: string;
  etcdPassword?: string;
  etcdKeyFile?: string;
  etcdCertFile?: string;
  etcdCACertFile?: string;
  /** Inline PEM, instead of the *File forms. */
  etcdKey?: string;
  etcdCert?: string;
  etcdCACert?: string;
}

type Field = keyof DatastoreSettings;

/** The environment variable behind each field (calicoctl's names). */
export const ENV_NAMES: Readonly<Record<Field, string>> = {
  datastoreType: 'DATASTORE_TYPE',
  etcdEndpoints: 'ETCD_ENDPOINTS',
  etcdUsername: 'ETCD_USERNAME',
  etcdPassword: 'ETCD_PASSWORD',
  etcdKeyFile: 'ETCD_KEY_FILE',
  etcdCertFile: 'ETCD_CERT_FILE',
  etcdCACertFile: 'ETCD_CA_CERT_FILE',
  etcdKey: 'ETCD_KEY',
  etcdCert: 'ETCD_CERT',
  etcdCACert: 'ETCD_CA_CERT',
};
const FIELDS = Object.keys(ENV_NAMES) as Field[];

export type DatastoreConfig = (
  | { datastoreType: 'etcdv3'; etcd: EtcdDatastoreOptions }
  | { datastoreType: 'memory' }
) & {
  /** Where each setting came from (`flag --etcd-endpoints`, `env ETCD_ENDPOINTS`, `file <path>`, `default`). */
  sources: Partial<Record<Field, string>>;
};

export interface LoadDatastoreConfigInput {
  /** Settings given on the command line; `config` names the config file (calicoctl's --config). */
  flags?: DatastoreSettings & { config?: string };
  /** Environment to read; process.env when omitted. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Config file used when no --config flag is given (may be absent); DEFAULT_CONFIG_FILE when omitted, `false` for none. */
  file?: string | false;
}

// Kubernetes connection fields are part of the same spec; accepted so a calicoctl file parses,
// refused later only if the datastore type asks for Kubernetes.
const K8S_FIELDS = [
  'kubeconfig',
  'k8sAPIEndpoint',
  'k8sKeyFile',
  'k8sCertFile',
  'k8sCAFile',
  'k8sAPIToken',
  'k8sInsecureSkipTLSVerify',
  'k8sDisableNodePoll',
  'k8sClientQPS',
] as const;

const optionalString = z.string().optional();
const ConfigFileSchema = z.strictObject({
  apiVersion: z.literal('projectcalico.org/v3'),
  kind: z.literal('CalicoAPIConfig'),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  spec: z
    .strictObject({
      ...Object.fromEntries(FIELDS.map((f) => [f, optionalString])),
      etcdDiscoverySrv: optionalString,
      ...Object.fromEntries(K8S_FIELDS.map((f) => [f, z.unknown().optional()])),
    })
    .nullish(),
});

/** Reads and checks a calicoctl config file; undefined when `path` does not exist and may be absent. */
export function readConfigFile(path: string, mustExist: boolean): DatastoreSettings | undefined {
  if (!existsSync(path)) {
    if (mustExist) throw new DatastoreError('Invalid', `config file ${path} does not exist`);
    return undefined;
  }
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DatastoreError(
      'Invalid',
      `config file ${path} is not valid YAML or JSON: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  const parsed = ConfigFileSchema.safeParse(doc);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => {
        const where = i.path.join('.') || '(root)';
        const extra =
          i.code === 'unrecognized_keys' ? `: unknown field(s) ${i.keys.join(', ')}` : `: ${i.message}`;
        return `  ${where}${extra}`;
      })
      .join('\n');
    throw new DatastoreError(
      'Invalid',
      `config file ${path} is not a CalicoAPIConfig (apiVersion projectcalico.org/v3, kind CalicoAPIConfig, spec {datastoreType, etcdEndpoints, …}):\n${issues}`,
    );
  }
  const spec = (parsed.data.spec ?? {}) as Record<string, unknown>;
  if (spec['etcdDiscoverySrv']) {
    throw new DatastoreError(
      'Invalid',
      `config file ${path}: etcdDiscoverySrv is not supported yet; list etcdEndpoints instead`,
    );
  }
  const settings: DatastoreSettings = {};
  for (const f of FIELDS) {
    const v = spec[f];
    if (typeof v === 'string' && v !== '') settings[f] = v;
  }
  return settings;
}

/** calicoctl's environment lookup: `CALICO_<NAME>` first, then `<NAME>`. */
function fromEnv(
  env: Readonly<Record<string, string | undefined>>,
  field: Field,
): { value: string; name: string } | undefined {
  for (const name of [`CALICO_${ENV_NAMES[field]}`, ENV_NAMES[field]]) {
    const value = env[name];
    if (value !== undefined && value !== '') return { value, name };
  }
  return undefined;
}

function flagName(field: Field): string {
  return `--${field.replace(/[A-Z]+/g, (m) => `-${m.toLowerCase()}`)}`;
}

export function loadDatastoreConfig(input: LoadDatastoreConfigInput = {}): DatastoreConfig {
  const flags = input.flags ?? {};
  const env = input.env ?? process.env;
  // A file named with --config must exist; the default location may be absent (calicoctl then
  // reads only the environment).
  const path = flags.config ?? (input.file === false ? undefined : (input.file ?? DEFAULT_CONFIG_FILE));
  const file = path === undefined ? undefined : readConfigFile(path, flags.config !== undefined);

  const settings: DatastoreSettings = {};
  const sources: Partial<Record<Field, string>> = {};
  for (const f of FIELDS) {
    const flag = flags[f];
    const fromEnvironment = fromEnv(env, f);
    if (flag !== undefined && flag !== '') {
      settings[f] = flag;
      sources[f] = `flag ${flagName(f)}`;
    } else if (fromEnvironment) {
      settings[f] = fromEnvironment.value;
      sources[f] = `env ${fromEnvironment.name}`;
    } else if (file?.[f] !== undefined) {
      settings[f] = file[f];
      sources[f] = `file ${path}`;
    }
  }

  const type = settings.datastoreType ?? 'etcdv3';
  sources.datastoreType ??= 'default';
  if (type === 'kubernetes') {
    throw new DatastoreError(
      'Invalid',
      `datastoreType "kubernetes" (from ${sources.datastoreType}) is not supported yet by calico-ts; use etcdv3 with etcdEndpoints (DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=http://host:2379)`,
    );
  }
  if (type === 'memory') return { datastoreType: 'memory', sources };
  if (type !== 'etcdv3') {
    throw new DatastoreError(
      'Invalid',
      `datastoreType ${JSON.stringify(type)} (from ${sources.datastoreType}) is not one of ${SUPPORTED_DATASTORE_TYPES.join(', ')}`,
    );
  }

  const tls = {
    ...(settings.etcdCACertFile ? { caFile: settings.etcdCACertFile } : {}),
    ...(settings.etcdCertFile ? { certFile: settings.etcdCertFile } : {}),
    ...(settings.etcdKeyFile ? { keyFile: settings.etcdKeyFile } : {}),
    ...(settings.etcdCACert ? { ca: settings.etcdCACert } : {}),
    ...(settings.etcdCert ? { cert: settings.etcdCert } : {}),
    ...(settings.etcdKey ? { key: settings.etcdKey } : {}),
  };
  const useTls = Object.keys(tls).length > 0;
  if (Boolean(tls.certFile || tls.cert) !== Boolean(tls.keyFile || tls.key)) {
    throw new DatastoreError(
      'Invalid',
      `etcd client TLS needs both a certificate and its key: got ${tls.certFile || tls.cert ? 'a certificate' : 'a key'} only (${
        sources.etcdCertFile ?? sources.etcdCert ?? sources.etcdKeyFile ?? sources.etcdKey
      })`,
    );
  }
  const rawEndpoints = settings.etcdEndpoints ?? DEFAULT_ETCD_ENDPOINTS;
  sources.etcdEndpoints ??= 'default';
  let endpoints: string[];
  try {
    endpoints = parseEndpoints(rawEndpoints, useTls);
  } catch (err) {
    throw new DatastoreError(
      'Invalid',
      `${(err as Error).message} (etcdEndpoints from ${sources.etcdEndpoints})`,
      undefined,
      {
        cause: err,
      },
    );
  }
  const etcd: EtcdDatastoreOptions = {
    endpoints,
    ...(useTls ? { tls } : {}),
    ...(settings.etcdUsername ? { username: settings.etcdUsername } : {}),
    ...(settings.etcdPassword ? { password: settings.etcdPassword } : {}),
  };
  return { datastoreType: 'etcdv3', etcd, sources };
}

/** The Datastore a loaded config describes. Connects lazily: the first call reports Unavailable. */
export function datastoreFromConfig(cfg: DatastoreConfig): Datastore {
  switch (cfg.datastoreType) {
    case 'etcdv3':
      return new EtcdDatastore(cfg.etcd);
    case 'memory':
      return new MemoryDatastore();
  }
}

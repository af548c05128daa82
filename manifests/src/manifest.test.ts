import { existsSync, readFileSync } from 'node:fs';
import { loadDatastoreConfig } from '@calico-ts/datastore';
import { cniInstallSettings, loadNodeConfig } from '@calico-ts/node';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { IMAGES, imageRef } from '../../images/build.ts';
import { MANIFEST_FILE, renderManifest } from './generate.ts';
import type { K8sObject } from './manifest.ts';

const text = readFileSync(MANIFEST_FILE, 'utf8');
const documents = parseAllDocuments(text);
const objects = documents.map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
const find = (kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in calico-ts.yaml`);
  return found;
};

// biome-ignore lint/suspicious/noExplicitAny: walking untyped Kubernetes YAML
type Any = any;
const daemonSet = find('DaemonSet', 'calico-node') as Any;
const container = daemonSet.spec.template.spec.containers[0];
const configMap = find('ConfigMap', 'calico-config') as Any;

/** Every environment variable name calico-node's code reads, recorded by running its readers. */
function namesCalicoNodeReads(): Set<string> {
  const read = new Set<string>();
  const recording = (values: Record<string, string> = {}) =>
    new Proxy(values, {
      get(target, key) {
        if (typeof key === 'string') read.add(key);
        return typeof key === 'string' ? target[key] : undefined;
      },
    });
  loadNodeConfig({}, recording());
  loadNodeConfig({}, recording({ IP6: 'autodetect' }));
  cniInstallSettings(recording({ CALICO_INSTALL_CNI: 'true' }), 'n1');
  loadDatastoreConfig({ env: recording(), file: false });
  return read;
}

describe('manifests/calico-ts.yaml', () => {
  it('is what the generator makes (never hand-edited)', () => {
    expect(text).toBe(renderManifest());
  });

  it('parses, and every resource has apiVersion, kind and metadata.name', () => {
    expect(documents.flatMap((d) => d.errors)).toEqual([]);
    const kinds = objects.map((o) => o.kind);
    const crdCount = kinds.filter((k) => k === 'CustomResourceDefinition').length;
    expect(crdCount).toBeGreaterThan(0);
    // The CRDs first, so that a single apply knows the kinds before anything uses them.
    expect(kinds.slice(crdCount)).toEqual([
      'ConfigMap',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'DaemonSet',
    ]);
    for (const o of objects) {
      expect(o.apiVersion, o.kind).toMatch(/^([a-z0-9.]+\/)?v\d+$/);
      expect(o.metadata.name, o.kind).toMatch(/^[a-z0-9-]+(\.[a-z0-9-]+)*$/);
    }
  });

  it("validates against the Kubernetes API's OpenAPI schemas (kubernetes-models)", () => {
    const models: Record<string, new (data: never) => { validate(): void }> = {
      'v1/ConfigMap': ConfigMap,
      'v1/ServiceAccount': ServiceAccount,
      'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
      'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
      'apps/v1/DaemonSet': DaemonSet,
      'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
    };
    for (const o of objects) {
      const Model = models[`${o.apiVersion}/${o.kind}`];
      if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
      expect(() => new Model(o as never).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
    // The validator does reject what the API server would: a container image that is not a string.
    const broken = structuredClone(daemonSet);
    broken.spec.template.spec.containers[0].image = 42;
    expect(() => new DaemonSet(broken).validate()).toThrow(/image must be string/);
  });

  it('runs the image images/build.ts builds, pinned to the workspace version', () => {
    expect(container.image).toBe(imageRef('node'));
    expect(container.image).toMatch(/:\d+\.\d+\.\d+/);
    const name = /^calico-ts\/([a-z-]+):/.exec(container.image)?.[1];
    expect(IMAGES.map((i) => i.name)).toContain(name);
    expect(existsSync(new URL(`../../images/${name}/Dockerfile`, import.meta.url))).toBe(true);
  });

  it('sets only environment variables calico-node reads', () => {
    const reads = namesCalicoNodeReads();
    const names: string[] = container.env.map((e: { name: string }) => e.name);
    expect(names.filter((n) => !reads.has(n))).toEqual([]);
    expect(names).toEqual(expect.arrayContaining(['ETCD_ENDPOINTS', 'NODENAME', 'CALICO_INSTALL_CNI']));
    for (const e of container.env) {
      const key = e.valueFrom?.configMapKeyRef?.key;
      if (key) expect(Object.keys(configMap.data), e.name).toContain(key);
    }
  });

  it('runs on the host network with NET_ADMIN and SYS_ADMIN, not privileged, with the install mounts', () => {
    const pod = daemonSet.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(container.securityContext).toEqual({
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'SYS_ADMIN'] },
    });
    const volumes = new Map<string, string>(pod.volumes.map((v: Any) => [v.name, v.hostPath.path]));
    const mounts = new Map<string, string>(container.volumeMounts.map((m: Any) => [m.mountPath, m.name]));
    expect(volumes.get(mounts.get('/host/opt/cni/bin') ?? '')).toBe('/opt/cni/bin');
    expect(volumes.get(mounts.get('/host/etc/cni/net.d') ?? '')).toBe('/etc/cni/net.d');
    for (const name of mounts.values()) expect(volumes.has(name), name).toBe(true);
    expect(container.livenessProbe.httpGet).toMatchObject({ path: '/liveness', port: 9099 });
    expect(container.readinessProbe.httpGet).toMatchObject({ path: '/readiness', port: 9099 });
  });

  it("the CNI template becomes the conflist calico-node's install step writes", () => {
    const env = Object.fromEntries(
      container.env.map((e: Any) => [e.name, e.value ?? configMap.data[e.valueFrom?.configMapKeyRef?.key]]),
    );
    const settings = cniInstallSettings(env, 'worker-1');
    expect(settings?.conflist).toMatchObject({
      name: 'k8s-pod-network',
      plugins: [
        {
          type: 'calico',
          etcd_endpoints: configMap.data.etcd_endpoints,
          nodename: 'worker-1',
          mtu: Number(configMap.data.veth_mtu),
          ipam: { type: 'calico-ipam' },
        },
        { type: 'portmap' },
      ],
    });
    // The default pool comes from calico-node's start-up, from the ConfigMap's CIDR.
    expect(loadNodeConfig({}, env).ipv4Pool).toMatchObject({
      cidr: configMap.data.pool_cidr,
      vxlanMode: 'Never',
    });
  });
});

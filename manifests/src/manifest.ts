/**
 * The install manifest, as data: one document per Kubernetes resource, for an etcd datastore (as
 * Calico's calico-etcd.yaml): RBAC and a ServiceAccount for calico-node, the calico-config
 * ConfigMap (etcd endpoints, backend, MTU, the CNI conflist template), and the calico-node
 * DaemonSet on the host network, whose start-up does the install-cni job and creates the default
 * IPPool when none exists. `generate.ts` writes it to calico-ts.yaml; nobody edits that file.
 */

export interface ManifestOptions {
  /** calico-node's image, pinned to the release (images/build.ts names it). */
  nodeImage: string;
  namespace?: string;
  etcdEndpoints?: string;
  /** `bird` (BGP) or `vxlan`. */
  backend?: 'bird' | 'vxlan';
  poolCidr?: string;
  mtu?: number;
}

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
} & Record<string, unknown>;

/** Calico's CNI template, with the placeholders calico-node's install step fills in. */
export const CNI_NETWORK_CONFIG = {
  name: 'k8s-pod-network',
  cniVersion: '1.0.0',
  plugins: [
    {
      type: 'calico',
      log_level: 'info',
      datastore_type: 'etcdv3',
      etcd_endpoints: '__ETCD_ENDPOINTS__',
      nodename: '__KUBERNETES_NODE_NAME__',
      mtu: '__CNI_MTU__',
      ipam: { type: 'calico-ipam' },
    },
    { type: 'portmap', snat: true, capabilities: { portMappings: true } },
  ],
};

const HOST_PATHS = [
  // name, host path, mount path, read-only
  ['cni-bin-dir', '/opt/cni/bin', '/host/opt/cni/bin', false],
  ['cni-net-dir', '/etc/cni/net.d', '/host/etc/cni/net.d', false],
  ['var-run-calico', '/var/run/calico', '/var/run/calico', false],
  ['var-lib-calico', '/var/lib/calico', '/var/lib/calico', false],
  ['lib-modules', '/lib/modules', '/lib/modules', true],
  ['xtables-lock', '/run/xtables.lock', '/run/xtables.lock', false],
] as const;

export function calicoManifest(options: ManifestOptions): K8sObject[] {
  const namespace = options.namespace ?? 'kube-system';
  const labels = { 'k8s-app': 'calico-node' };
  const fromConfig = (key: string) => ({ valueFrom: { configMapKeyRef: { name: 'calico-config', key } } });
  const env: [string, Record<string, unknown>][] = [
    ['DATASTORE_TYPE', { value: 'etcdv3' }],
    ['ETCD_ENDPOINTS', fromConfig('etcd_endpoints')],
    ['CALICO_NETWORKING_BACKEND', fromConfig('calico_backend')],
    ['NODENAME', { valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
    ['CLUSTER_TYPE', { value: 'k8s,bgp' }],
    ['IP', { value: 'autodetect' }],
    ['CALICO_IPV4POOL_CIDR', fromConfig('pool_cidr')],
    ['CALICO_IPV4POOL_VXLAN', fromConfig('pool_vxlan')],
    ['CALICO_IPV4POOL_IPIP', { value: 'Never' }],
    ['FELIX_HEALTHENABLED', { value: 'true' }],
    ['FELIX_HEALTHPORT', { value: '9099' }],
    ['FELIX_PROMETHEUSMETRICSENABLED', { value: 'true' }],
    ['FELIX_PROMETHEUSMETRICSPORT', { value: '9091' }],
    ['CALICO_INSTALL_CNI', { value: 'true' }],
    ['CNI_NETWORK_CONFIG', fromConfig('cni_network_config')],
    ['CNI_MTU', fromConfig('veth_mtu')],
  ];
  const probe = (path: string) => ({
    httpGet: { path, port: 9099, host: 'localhost' },
    periodSeconds: 10,
    timeoutSeconds: 5,
    failureThreshold: 6,
  });
  const backend = options.backend ?? 'bird';
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'calico-config', namespace },
      data: {
        etcd_endpoints: options.etcdEndpoints ?? 'http://127.0.0.1:2379',
        calico_backend: backend,
        pool_cidr: options.poolCidr ?? '192.168.0.0/16',
        pool_vxlan: backend === 'vxlan' ? 'Always' : 'Never',
        veth_mtu: String(options.mtu ?? (backend === 'vxlan' ? 1450 : 1500)),
        cni_network_config: `${JSON.stringify(CNI_NETWORK_CONFIG, null, 2).replace('"__CNI_MTU__"', '__CNI_MTU__')}\n`,
      },
    },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'calico-node', namespace },
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'calico-node' },
      // With the etcd datastore calico-node reads only what it learns about its own host.
      rules: [
        { apiGroups: [''], resources: ['pods', 'nodes', 'namespaces'], verbs: ['get'] },
        { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'calico-node' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'calico-node' },
      subjects: [{ kind: 'ServiceAccount', name: 'calico-node', namespace }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'calico-node', namespace, labels },
      spec: {
        selector: { matchLabels: labels },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels },
          spec: {
            nodeSelector: { 'kubernetes.io/os': 'linux' },
            hostNetwork: true,
            tolerations: [
              { effect: 'NoSchedule', operator: 'Exists' },
              { key: 'CriticalAddonsOnly', operator: 'Exists' },
              { effect: 'NoExecute', operator: 'Exists' },
            ],
            serviceAccountName: 'calico-node',
            terminationGracePeriodSeconds: 0,
            priorityClassName: 'system-node-critical',
            containers: [
              {
                name: 'calico-node',
                image: options.nodeImage,
                env: env.map(([name, value]) => ({ name, ...value })),
                // NET_ADMIN for routes, links, iptables and ipsets; SYS_ADMIN for network namespaces.
                securityContext: {
                  privileged: false,
                  capabilities: { add: ['NET_ADMIN', 'SYS_ADMIN'] },
                },
                ports: [{ name: 'metrics', containerPort: 9091, protocol: 'TCP' }],
                resources: { requests: { cpu: '250m' } },
                livenessProbe: probe('/liveness'),
                readinessProbe: probe('/readiness'),
                volumeMounts: HOST_PATHS.map(([name, , mountPath, readOnly]) => ({
                  name,
                  mountPath,
                  ...(readOnly ? { readOnly: true } : {}),
                })),
              },
            ],
            volumes: HOST_PATHS.map(([name, path]) => ({
              name,
              hostPath: { path, ...(name === 'xtables-lock' ? { type: 'FileOrCreate' } : {}) },
            })),
          },
        },
      },
    },
  ];
}

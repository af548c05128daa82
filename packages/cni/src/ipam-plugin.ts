import { asCniError } from './calico-plugin.ts';
import { CNI_ERROR, CniError } from './errors.ts';
import { ipamHandle } from './names.ts';
import type { IpamPort } from './ports.ts';
import type { CniRequest } from './request.ts';
import type { CniResult } from './result.ts';

/**
 * `calico-ipam`, for plugins that delegate address management (`"ipam": {"type": "calico-ipam"}`
 * under e.g. ptp or bridge). CNI SPEC §"IP Allocation": ADD returns only `ips` (no interface
 * index) and routes; DEL releases the container's handle and is idempotent.
 */
export class CalicoIpamPlugin {
  readonly #ipam: IpamPort;
  readonly #node: string;

  constructor(options: { ipam: IpamPort; nodeName: string }) {
    this.#ipam = options.ipam;
    this.#node = options.nodeName;
  }

  async handle(req: CniRequest): Promise<CniResult | undefined> {
    const handleId = ipamHandle(req.config.name, req.containerId);
    switch (req.command) {
      case 'ADD': {
        const conf = req.config.ipam ?? req.config;
        const num4 = (conf['assign_ipv4'] ?? 'true') === 'true' ? 1 : 0;
        const num6 = (conf['assign_ipv6'] ?? 'false') === 'true' ? 1 : 0;
        let got: { ipv4: string[]; ipv6: string[] };
        try {
          got = await this.#ipam.autoAssign({
            num4,
            num6,
            handleId,
            attrs: { node: this.#node, containerID: req.containerId, timestamp: new Date().toISOString() },
            node: this.#node,
            ...(Array.isArray(conf['ipv4_pools']) ? { pools4: conf['ipv4_pools'] as string[] } : {}),
            ...(Array.isArray(conf['ipv6_pools']) ? { pools6: conf['ipv6_pools'] as string[] } : {}),
          });
        } catch (err) {
          throw asCniError(err, []);
        }
        if (got.ipv4.length < num4 || got.ipv6.length < num6) {
          await this.#ipam.releaseByHandle(handleId);
          throw new CniError(
            CNI_ERROR.ipamExhausted,
            'no free addresses',
            `IPAM could not supply addresses for ${handleId}`,
          );
        }
        return {
          cniVersion: req.version,
          ips: [
            ...got.ipv4.map((a) => ({ address: `${a}/32` })),
            ...got.ipv6.map((a) => ({ address: `${a}/128` })),
          ],
          routes: [
            ...(got.ipv4.length > 0 ? [{ dst: '0.0.0.0/0' }] : []),
            ...(got.ipv6.length > 0 ? [{ dst: '::/0' }] : []),
          ],
        };
      }
      case 'DEL':
        await this.#ipam.releaseByHandle(handleId);
        return undefined;
      case 'CHECK':
        return undefined;
      case 'GC': {
        const valid = req.config['cni.dev/valid-attachments'] ?? req.config['cni.dev/attachments'] ?? [];
        const keep = new Set(valid.map((a) => ipamHandle(req.config.name, a.containerID)));
        for (const h of await this.#ipam.listHandles(`${req.config.name}.`)) {
          if (!keep.has(h)) await this.#ipam.releaseByHandle(h);
        }
        return undefined;
      }
      case 'STATUS':
        return undefined;
      case 'VERSION':
        throw new CniError(CNI_ERROR.internal, 'VERSION is answered by the plugin binary itself');
    }
  }
}

/**
 * CalicoNodeStatus (projectcalico.org/v3): a node's BGP agent and sessions, written by the node
 * into `status`. The spec names the node, the classes of information to collect and how often.
 * The status follows Calico's fields (agent.birdV4/V6, bgp.numberEstablishedV4/…,
 * bgp.peersV4/V6 with peerIP, type, state, since); each peer may also carry `reason`, our
 * addition: why a session that is not Established is down.
 */
import { z } from 'zod';
import { ipString } from './field-types.ts';
import { kindSchema } from './resource-schema.ts';

export const NODE_STATUS_CLASSES = ['Agent', 'BGP', 'Routes'] as const;

export const calicoNodeStatusSpecSchema = z
  .strictObject({
    node: z.string().min(1).optional(),
    classes: z.array(z.enum(NODE_STATUS_CLASSES)).optional(),
    updatePeriodSeconds: z.number().int().min(0).optional(),
  })
  .prefault({});

export type CalicoNodeStatusSpec = z.output<typeof calicoNodeStatusSpecSchema>;
export const calicoNodeStatusSchema = kindSchema('CalicoNodeStatus', calicoNodeStatusSpecSchema);

/** Calico's BGPPeerType names. */
export const NODE_STATUS_PEER_TYPES = ['NodeMesh', 'NodePeer', 'GlobalPeer'] as const;
/** Calico's BGPSessionState names (RFC 4271 §8 states, plus Close). */
export const NODE_STATUS_SESSION_STATES = [
  'Idle',
  'Connect',
  'Active',
  'OpenSent',
  'OpenConfirm',
  'Established',
  'Close',
] as const;

const peerSchema = z.object({
  peerIP: ipString(),
  type: z.enum(NODE_STATUS_PEER_TYPES),
  state: z.enum(NODE_STATUS_SESSION_STATES),
  since: z.string(),
  /** calico-ts: why the session is not Established (absent when it is). */
  reason: z.string().optional(),
});

const daemonSchema = z.object({
  state: z.enum(['Ready', 'NotReady']),
  version: z.string().optional(),
  routerID: z.string().optional(),
  lastBootTime: z.string().optional(),
  lastReconfigurationTime: z.string().optional(),
});

export const calicoNodeStatusStatusSchema = z.object({
  lastUpdated: z.string(),
  agent: z.object({ birdV4: daemonSchema.optional(), birdV6: daemonSchema.optional() }).optional(),
  bgp: z
    .object({
      numberEstablishedV4: z.number().int(),
      numberNotEstablishedV4: z.number().int(),
      numberEstablishedV6: z.number().int(),
      numberNotEstablishedV6: z.number().int(),
      peersV4: z.array(peerSchema).optional(),
      peersV6: z.array(peerSchema).optional(),
    })
    .optional(),
});

export type CalicoNodeStatusStatus = z.output<typeof calicoNodeStatusStatusSchema>;
export type CalicoNodeStatusPeer = z.output<typeof peerSchema>;

/**
 * A stored CalicoNodeStatus's `status`, checked: the status the node wrote, or the problems
 * (field path and what was wrong) when it is missing or malformed.
 */
export function parseCalicoNodeStatusStatus(
  status: unknown,
): { ok: true; status: CalicoNodeStatusStatus } | { ok: false; problems: string[] } {
  if (status === undefined) return { ok: false, problems: ['status: not written yet'] };
  const r = calicoNodeStatusStatusSchema.safeParse(status);
  if (r.success) return { ok: true, status: r.data };
  return {
    ok: false,
    problems: r.error.issues.map((i) => `status.${i.path.join('.')}: ${i.message}`),
  };
}

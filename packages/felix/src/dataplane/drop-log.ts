/**
 * Drop logs: before each DROP that policy makes (a Deny rule, the end of a tier, no profile
 * accepting), an NFLOG rule hands the packet to Felix with a prefix naming the decision. Felix
 * OSS uses NFLOG group 1 for inbound and 2 for outbound traffic (calico-internals §3.3); the
 * prefix is at most 63 bytes (xt_nflog_info.prefix[64] with its NUL), so an owner name that does
 * not fit is replaced by `#` + a hash that `DropLogNames` maps back to the full name.
 *
 * Prefix grammar: `[S]<verdict><direction>[<rule index>]|<owner>`
 *   S          staged: the packet was not dropped; a staged policy would have dropped it
 *   verdict    D denied by a rule, T end of tier, P no profile accepted
 *   direction  I ingress (to the endpoint), E egress (from it)
 *   owner      D: policy key (`np/<ns>/<name>`, `gnp/<name>`, `knp/<ns>/<name>`) or `pr/<profile>`;
 *              T: the tier name; P: empty
 *
 * Each record is rate-limited per flow (source/destination address and port) with one hashlimit
 * table shared by every drop rule of the node, so a flow that keeps sending gives one record per
 * minute rather than one per packet.
 */
import { createHash } from 'node:crypto';
import type { PolicyDirection } from '../calc/policy/policy-id.ts';
import type { Rule } from './chains.ts';

/** NFLOG groups as Felix uses them: 1 inbound (to a workload), 2 outbound (from it). */
export const NFLOG_GROUP: Readonly<Record<PolicyDirection, number>> = { ingress: 1, egress: 2 };

/** At most this many bytes; the kernel keeps 64 with the terminating NUL. */
export const MAX_PREFIX_BYTES = 63;

/**
 * hashlimit tables: one for enforced drops, and for staged would-drops one per direction — a
 * packet that enforced policy lets through may be a staged would-drop both leaving its source and
 * reaching its destination, and each deserves its record.
 */
export const DROP_HASHLIMIT = 'cali-drop';
export const STAGED_HASHLIMIT: Readonly<Record<PolicyDirection, string>> = {
  ingress: 'cali-staged-in',
  egress: 'cali-staged-out',
};
/**
 * One record per flow per minute, its table entry kept as long (`htable-expire`). With one per
 * 10 s, 4 of 3,061 denied probes gave a second record on a loaded machine, most likely a SYN
 * retransmitted 15 s after the first (after 1, 3 and 7 s) before the prober closed its socket.
 */
export const RECORD_RATE = '1/min';
const RECORD_WINDOW_MS = 60_000;

export type DropVerdict = 'rule' | 'endOfTier' | 'noProfile';

export interface DropCause {
  verdict: DropVerdict;
  direction: PolicyDirection;
  staged: boolean;
  /** Policy key or `pr/<profile>` (rule), tier name (end of tier); '' for no profile. */
  owner: string;
  /** Index of the rule within the owner's rules for the direction (rule verdicts only). */
  ruleIndex: number | undefined;
}

const VERDICT_CHAR: Readonly<Record<DropVerdict, string>> = { rule: 'D', endOfTier: 'T', noProfile: 'P' };
const CHAR_VERDICT: Readonly<Record<string, DropVerdict>> = { D: 'rule', T: 'endOfTier', P: 'noProfile' };

/** The owner as written in a prefix: itself when it fits, else `#` + 16 base64url hash characters. */
export function ownerToken(owner: string, head: string): string {
  if (Buffer.byteLength(head) + 1 + Buffer.byteLength(owner) <= MAX_PREFIX_BYTES && !owner.startsWith('#'))
    return owner;
  return `#${createHash('sha256').update(owner).digest('base64url').slice(0, 16)}`;
}

function head(cause: Omit<DropCause, 'owner'>): string {
  const index = cause.verdict === 'rule' ? String(cause.ruleIndex ?? 0) : '';
  return `${cause.staged ? 'S' : ''}${VERDICT_CHAR[cause.verdict]}${cause.direction === 'ingress' ? 'I' : 'E'}${index}`;
}

export function encodeDropPrefix(cause: DropCause): string {
  const h = head(cause);
  return `${h}|${ownerToken(cause.owner, h)}`;
}

/**
 * Reads a prefix back; a hashed owner is looked up in `names` (left as `#…` when unknown).
 * Undefined for a prefix that is not ours.
 */
export function decodeDropPrefix(prefix: string, names?: DropLogNames): DropCause | undefined {
  const m = /^(S?)([DTP])([IE])(\d*)\|(.*)$/.exec(prefix);
  if (!m) return undefined;
  const verdict = CHAR_VERDICT[m[2]!]!;
  if ((verdict === 'rule') !== (m[4] !== '')) return undefined;
  const owner = m[5]!;
  return {
    verdict,
    direction: m[3] === 'I' ? 'ingress' : 'egress',
    staged: m[1] === 'S',
    owner: owner.startsWith('#') ? (names?.lookup(owner) ?? owner) : owner,
    ruleIndex: verdict === 'rule' ? Number(m[4]) : undefined,
  };
}

/** Hashed owner tokens seen while rendering, so a record names the full policy or tier. */
export class DropLogNames {
  readonly #byToken = new Map<string, string>();

  /** Remembers an owner (any head gives the same token once the name is too long). */
  note(owner: string): void {
    const token = ownerToken(owner, 'SDE0000');
    if (token !== owner) this.#byToken.set(token, owner);
  }

  lookup(token: string): string | undefined {
    return this.#byToken.get(token);
  }
}

/**
 * The NFLOG rule placed just before a policy DROP with the same `match`: rate-limited per flow,
 * the packet's first 128 bytes (its headers) copied to the group of its direction.
 */
export function nflogRule(match: string | undefined, cause: DropCause): Rule {
  const limit = cause.staged ? STAGED_HASHLIMIT[cause.direction] : DROP_HASHLIMIT;
  const rate =
    `-m hashlimit --hashlimit-upto ${RECORD_RATE} --hashlimit-burst 1 ` +
    `--hashlimit-mode srcip,srcport,dstip,dstport --hashlimit-name ${limit} ` +
    `--hashlimit-htable-expire ${RECORD_WINDOW_MS}`;
  return {
    match: match ? `${match} ${rate}` : rate,
    action:
      `-j NFLOG --nflog-group ${NFLOG_GROUP[cause.direction]} ` +
      `--nflog-prefix "${encodeDropPrefix(cause)}" --nflog-size 128`,
  };
}

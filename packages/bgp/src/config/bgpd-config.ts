/**
 * calico-bgpd configuration (YAML or JSON), validated with zod. Errors name the field, the
 * value and what was expected.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseIp, parseIpv4, parsePrefix } from '../wire/prefix.ts';

const RTPROT_BGP = 186;

const ipv4 = z.string().refine((s) => parseIpv4(s) !== undefined, { message: 'an IPv4 address' });
const ip = z.string().refine((s) => parseIp(s) !== undefined, { message: 'an IPv4 or IPv6 address' });
const cidr = z
  .string()
  .refine((s) => parsePrefix(s) !== undefined, { message: 'a CIDR prefix with host bits zero' });
const asNumber = z.number().int().min(1).max(4294967295);
const port = z.number().int().min(0).max(65535);
// RFC 4271 §4.2: hold time is 0 or at least 3 seconds.
const holdTime = z
  .number()
  .int()
  .min(0)
  .max(65535)
  .refine((n) => n === 0 || n >= 3, { message: '0 or 3..65535 seconds' });

const prefixMatch = z.strictObject({
  prefix: cidr,
  ge: z.number().int().optional(),
  le: z.number().int().optional(),
});
const policy = z.strictObject({
  defaultAction: z.enum(['accept', 'reject']).optional(),
  rules: z.array(
    z.strictObject({
      match: z
        .strictObject({
          prefixes: z.array(prefixMatch).optional(),
          communities: z.array(z.string()).optional(),
          asPathContains: z.array(asNumber).optional(),
          asPathRegex: z.string().optional(),
          nextHop: z.array(z.string()).optional(),
        })
        .optional(),
      set: z
        .strictObject({
          localPref: z.number().int().min(0).max(4294967295).optional(),
          med: z.number().int().min(0).max(4294967295).optional(),
          addCommunities: z.array(z.string()).optional(),
          prependAs: z
            .strictObject({ as: asNumber.optional(), count: z.number().int().min(1).max(32) })
            .optional(),
          nextHop: ip.optional(),
        })
        .optional(),
      action: z.enum(['accept', 'reject']).optional(),
    }),
  ),
});

const peerSchema = z.strictObject({
  address: ip,
  asNumber,
  password: z.string().min(1).max(80).optional(),
  holdTime: holdTime.optional(),
  keepaliveTime: z.number().int().min(1).optional(),
  connectRetryTime: z.number().int().min(1).optional(),
  passive: z.boolean().optional(),
  routeReflectorClient: z.boolean().optional(),
  port: port.optional(),
  localAddress: ip.optional(),
  ttl: z.number().int().min(1).max(255).optional(),
  gtsm: z.boolean().optional(),
  families: z
    .array(z.enum(['ipv4', 'ipv6']))
    .min(1)
    .optional(),
  nextHopSelf: z.boolean().optional(),
  nextHopV4: ipv4.optional(),
  nextHopV6: ip.optional(),
  addPathReceive: z.boolean().optional(),
  addPathSend: z.boolean().optional(),
  importPolicy: policy.optional(),
  exportPolicy: policy.optional(),
});

export const bgpdConfigSchema = z.strictObject({
  routerId: ipv4,
  asNumber,
  clusterId: ipv4.optional(),
  listen: z
    .union([z.strictObject({ address: ip.default('::'), port: port.default(179) }), z.literal(false)])
    .default({ address: '::', port: 179 }),
  peers: z.array(peerSchema).default([]),
  originate: z.array(cidr).default([]),
  // Best paths go to the kernel with RTPROT_BGP (186, linux/rtnetlink.h), the protocol Linux
  // reserves for BGP daemons, unless the file names another.
  kernel: z
    .strictObject({
      export: z.boolean().default(false),
      table: z.number().int().min(1).max(4294967295).default(254),
      protocol: z.number().int().min(1).max(255).default(RTPROT_BGP),
    })
    .default({ export: false, table: 254, protocol: RTPROT_BGP }),
  multipath: z.boolean().optional(),
  connectRetryTime: z.number().int().min(1).optional(),
  gracefulRestart: z
    .strictObject({
      enabled: z.boolean().optional(),
      restartTime: z.number().int().min(1).max(4095).optional(),
      restarting: z.boolean().optional(),
      forwardingPreserved: z.boolean().optional(),
      staleTime: z.number().int().min(1).optional(),
    })
    .optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type BgpdConfig = z.infer<typeof bgpdConfigSchema>;

export class BgpdConfigError extends Error {
  readonly code = 'BGPD_CONFIG_INVALID';
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super(`invalid configuration in ${file}:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

export function validateBgpdConfig(raw: unknown, file = 'config'): BgpdConfig {
  const r = bgpdConfigSchema.safeParse(raw, { reportInput: true });
  if (!r.success) {
    throw new BgpdConfigError(
      file,
      r.error.issues.map((i) => {
        if (i.code === 'unrecognized_keys') {
          return `${fieldPath(i.path)}: unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
        }
        const input = 'input' in i && i.input !== undefined ? JSON.stringify(i.input) : undefined;
        let expected: string;
        if (i.code === 'invalid_type') expected = i.expected;
        else if (i.code === 'too_big')
          expected = `${i.origin === 'array' ? 'at most' : '≤'} ${String(i.maximum)}${i.origin === 'array' ? ' items' : ''}`;
        else if (i.code === 'too_small')
          expected = `${i.origin === 'array' ? 'at least' : '≥'} ${String(i.minimum)}${i.origin === 'array' ? ' items' : ''}`;
        else if (i.code === 'invalid_value')
          expected = `one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
        else expected = i.message.replace(/^Invalid input: /, '');
        return `${fieldPath(i.path)}: ${input === undefined ? 'missing' : `got ${input}`}, expected ${expected}`;
      }),
    );
  }
  const c = r.data;
  const problems: string[] = [];
  const seen = new Set<string>();
  c.peers.forEach((p, i) => {
    if (seen.has(p.address))
      problems.push(`peers[${i}].address: got "${p.address}", expected each peer address once`);
    seen.add(p.address);
  });
  c.originate.forEach((p, i) => {
    if (parsePrefix(p) === undefined) problems.push(`originate[${i}]: got "${p}", expected a CIDR prefix`);
  });
  if (problems.length) throw new BgpdConfigError(file, problems);
  return c;
}

export function loadBgpdConfig(file: string): BgpdConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new BgpdConfigError(file, [`cannot read the file: ${(e as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new BgpdConfigError(file, [
      `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
    ]);
  }
  return validateBgpdConfig(raw, file);
}

/**
 * IPAM's own objects, in Calico's shape (libcalico-go internalapi IPAMBlock, BlockAffinity,
 * IPAMHandle; api IPAMConfiguration) so the allocator's data reads like Calico's.
 */
import { z } from 'zod';
import { affinityName, blockNameFromCidr } from '../kinds.ts';
import { checkedString, cidrProblem, cidrString } from './field-types.ts';
import { familyBits, parseCidr } from './ip.ts';
import { keySegmentProblem, subdomainProblem } from './names.ts';
import { kindSchema } from './resource-schema.ts';

const nonNegativeInteger = () =>
  z.number().superRefine((n, ctx) => {
    // Sequence numbers may exceed 2^53 (Calico seeds them from the clock in nanoseconds), so only
    // integrality and sign are checked, not safe-integer range.
    if (!Number.isInteger(n) || n < 0)
      ctx.addIssue({ code: 'custom', input: n, message: 'expected an integer ≥ 0' });
  });

const AFFINITY_RE = /^(host|virtual):(.+)$/;

export const allocationAttributeSchema = z.strictObject({
  handle_id: z.string().optional(),
  secondary: z.record(z.string(), z.string()).optional(),
  alternateOwnerAttrs: z.record(z.string(), z.string()).optional(),
  releasedAt: z.string().optional(),
});

export const ipamBlockSpecSchema = z
  .strictObject({
    cidr: cidrString({ masked: true }),
    /** `host:<node>` or `virtual:<name>`; absent for a block nobody is affine to. */
    affinity: checkedString((v) =>
      AFFINITY_RE.test(v) ? undefined : 'expected "host:<node>" or "virtual:<name>"',
    ).optional(),
    affinityClaimTime: z.string().optional(),
    strictAffinity: z.boolean().default(false),
    /** One slot per address ordinal: index into `attributes`, null when free. */
    allocations: z.array(z.number().int().nonnegative().nullable()),
    /** Free ordinals, in the order they are handed out. */
    unallocated: z.array(z.number().int().nonnegative()),
    attributes: z.array(allocationAttributeSchema),
    sequenceNumber: nonNegativeInteger().default(0),
    sequenceNumberForAllocation: z.record(z.string(), nonNegativeInteger()).optional(),
    deleted: z.boolean().default(false),
  })
  .superRefine((spec, ctx) => {
    const cidr = parseCidr(spec.cidr);
    if (!cidr || cidrProblem(spec.cidr, { masked: true })) return;
    const size = 2 ** (familyBits(cidr.family) - cidr.prefixLength);
    if (size > 65536) {
      ctx.addIssue({
        code: 'custom',
        path: ['cidr'],
        input: spec.cidr,
        message: 'a block holds at most 65536 addresses',
      });
      return;
    }
    if (spec.allocations.length !== size) {
      ctx.addIssue({
        code: 'custom',
        path: ['allocations'],
        input: spec.allocations.length,
        message: `must have one entry per address of ${spec.cidr} (${size}), found ${spec.allocations.length}`,
      });
      return;
    }
    spec.allocations.forEach((a, i) => {
      if (a !== null && a >= spec.attributes.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['allocations', i],
          input: a,
          message: `refers to attributes[${a}], but there are ${spec.attributes.length} attribute entries`,
        });
      }
    });
    // Every ordinal is either allocated or listed once in unallocated: the block's invariant.
    const free = new Set<number>();
    spec.unallocated.forEach((ord, i) => {
      let message: string | undefined;
      if (ord >= size) message = `ordinal out of range 0–${size - 1}`;
      else if (free.has(ord)) message = 'ordinal listed twice';
      else if (spec.allocations[ord] !== null) message = 'ordinal is allocated';
      if (message) ctx.addIssue({ code: 'custom', path: ['unallocated', i], input: ord, message });
      free.add(ord);
    });
    spec.allocations.forEach((a, i) => {
      if (a === null && !free.has(i)) {
        ctx.addIssue({
          code: 'custom',
          path: ['allocations', i],
          input: a,
          message: `ordinal ${i} is free but missing from unallocated`,
        });
      }
    });
  });

export type IPAMBlockSpec = z.output<typeof ipamBlockSpecSchema>;
export type IPAMBlockSpecInput = z.input<typeof ipamBlockSpecSchema>;

export const ipamBlockSchema = kindSchema('IPAMBlock', ipamBlockSpecSchema, {
  nameProblem: keySegmentProblem,
  check: ({ metadata, spec }, report) => {
    if (cidrProblem(spec.cidr, { masked: true })) return;
    const expected = blockNameFromCidr(spec.cidr);
    if (metadata.name !== expected)
      report(['metadata', 'name'], metadata.name, `must be "${expected}" for block ${spec.cidr}`);
  },
});

export const BLOCK_AFFINITY_STATES = ['confirmed', 'pending', 'pendingDeletion'] as const;

export const blockAffinitySpecSchema = z.strictObject({
  state: z.enum(BLOCK_AFFINITY_STATES),
  node: checkedString(subdomainProblem),
  /** `host` for a node's affinity; `virtual` for addresses that follow a VM. */
  type: z.string().min(1).default('host'),
  cidr: cidrString({ masked: true }),
  deleted: z.boolean().default(false),
});

export type BlockAffinitySpec = z.output<typeof blockAffinitySpecSchema>;
export type BlockAffinitySpecInput = z.input<typeof blockAffinitySpecSchema>;

export const blockAffinitySchema = kindSchema('BlockAffinity', blockAffinitySpecSchema, {
  nameProblem: keySegmentProblem,
  check: ({ metadata, spec }, report) => {
    if (cidrProblem(spec.cidr, { masked: true }) || subdomainProblem(spec.node)) return;
    const expected = affinityName(spec.node, spec.cidr);
    if (metadata.name !== expected) {
      report(['metadata', 'name'], metadata.name, `must be "${expected}" (<node>-<block name>)`);
    }
  },
});

export const ipamHandleSpecSchema = z.strictObject({
  handleID: checkedString(keySegmentProblem),
  /** Addresses this handle holds, per block CIDR. */
  block: z
    .record(z.string(), z.number().int().nonnegative())
    .superRefine((blocks, ctx) => {
      for (const key of Object.keys(blocks)) {
        const message = cidrProblem(key, { masked: true });
        if (message)
          ctx.addIssue({ code: 'custom', path: [key], input: key, message: `block key: ${message}` });
      }
    })
    .default({}),
  deleted: z.boolean().default(false),
});

export type IPAMHandleSpec = z.output<typeof ipamHandleSpecSchema>;
export type IPAMHandleSpecInput = z.input<typeof ipamHandleSpecSchema>;

export const ipamHandleSchema = kindSchema('IPAMHandle', ipamHandleSpecSchema, {
  nameProblem: keySegmentProblem,
  check: ({ metadata, spec }, report) => {
    if (metadata.name !== spec.handleID) {
      report(['metadata', 'name'], metadata.name, `must equal spec.handleID ("${spec.handleID}")`);
    }
  },
});

export const ipamConfigurationSpecSchema = z
  .strictObject({
    /** Only ever allocate from blocks affine to this node (no borrowing). */
    strictAffinity: z.boolean().default(false),
    /** Blocks one node may claim; 0 means no limit. */
    maxBlocksPerHost: z.number().int().min(0).max(2147483647).default(0),
    autoAllocateBlocks: z.boolean().default(true),
    kubeVirtVMAddressPersistence: z.enum(['Enabled', 'Disabled']).optional(),
    /** Seconds a released address rests before reuse (Calico caps it at 1200). */
    ipCooldownSeconds: z.number().int().min(0).max(1200).optional(),
  })
  .prefault({});

export type IPAMConfigurationSpec = z.output<typeof ipamConfigurationSpecSchema>;
export type IPAMConfigurationSpecInput = z.input<typeof ipamConfigurationSpecSchema>;

export const ipamConfigurationSchema = kindSchema('IPAMConfiguration', ipamConfigurationSpecSchema, {
  nameProblem: (name) =>
    name === 'default' ? undefined : 'IPAMConfiguration is a singleton: the name must be "default"',
  check: ({ spec }, report) => {
    // Calico's validateIPAMConfigSpec refuses this combination (design/ipam/ipam-core-library.md).
    if (!spec.autoAllocateBlocks && !spec.strictAffinity) {
      report(
        ['spec', 'autoAllocateBlocks'],
        spec.autoAllocateBlocks,
        'autoAllocateBlocks may be false only together with strictAffinity: true',
      );
    }
  },
});

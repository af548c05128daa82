import { describe, expect, it } from 'vitest';
import { validateResource } from './index.ts';

function block(cidr: string, overrides: Record<string, unknown> = {}, name?: string) {
  const size = cidr.endsWith('/30') ? 4 : cidr.endsWith('/126') ? 4 : 64;
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPAMBlock',
    metadata: { name: name ?? cidr.replaceAll(/[./:]/g, '-') },
    spec: {
      cidr,
      affinity: 'host:node-1',
      allocations: [0, ...Array<null>(size - 1).fill(null)],
      unallocated: Array.from({ length: size - 1 }, (_, i) => i + 1),
      attributes: [{ handle_id: 'k8s-pod-network.abc', secondary: { node: 'node-1' } }],
      ...overrides,
    },
  };
}

function pathsOf(result: ReturnType<typeof validateResource>): string[] {
  return result.ok ? [] : result.issues.map((i) => i.path);
}

describe('IPAMBlock', () => {
  it('accepts a consistent block and fills the defaults', () => {
    const result = validateResource('IPAMBlock', block('10.0.0.0/30'));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.spec.strictAffinity).toBe(false);
    expect(result.value.spec.sequenceNumber).toBe(0);
    expect(result.value.spec.deleted).toBe(false);
    expect(result.value.spec.allocations).toEqual([0, null, null, null]);
  });

  it('accepts an IPv6 block named with all eight groups', () => {
    const result = validateResource('IPAMBlock', block('fd00::/126', {}, 'fd00-0-0-0-0-0-0-0-126'));
    expect(result.ok ? [] : result.issues).toEqual([]);
  });

  it('requires the name to be the block name of the CIDR', () => {
    const result = validateResource('IPAMBlock', block('10.0.0.0/30', {}, 'some-block'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues).toEqual([
      { path: 'metadata.name', value: 'some-block', message: 'must be "10-0-0-0-30" for block 10.0.0.0/30' },
    ]);
  });

  it('reports an unmasked CIDR with the masked form', () => {
    const result = validateResource('IPAMBlock', block('10.0.0.1/30', {}, '10-0-0-0-30'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues[0]).toEqual({
      path: 'spec.cidr',
      value: '10.0.0.1/30',
      message: 'CIDR is not masked (host bits set): expected 10.0.0.0/30',
    });
  });

  it('checks the allocation invariant: every ordinal allocated or free exactly once', () => {
    const result = validateResource(
      'IPAMBlock',
      block('10.0.0.0/30', { allocations: [0, null, 3, null], unallocated: [1, 1, 0, 7] }),
    );
    expect(pathsOf(result)).toEqual([
      'spec.allocations[2]',
      'spec.unallocated[1]',
      'spec.unallocated[2]',
      'spec.unallocated[3]',
      'spec.allocations[3]',
    ]);
  });

  it('requires one allocation slot per address', () => {
    const result = validateResource(
      'IPAMBlock',
      block('10.0.0.0/30', { allocations: [null], unallocated: [0] }),
    );
    expect(pathsOf(result)).toEqual(['spec.allocations']);
  });

  it('rejects unknown fields and a malformed affinity together', () => {
    const result = validateResource('IPAMBlock', block('10.0.0.0/30', { affinity: 'node-1', colour: 'red' }));
    expect(pathsOf(result).sort()).toEqual(['spec.affinity', 'spec.colour']);
  });
});

describe('BlockAffinity', () => {
  const affinity = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BlockAffinity',
    metadata: { name },
    spec,
  });

  it('defaults type and deleted', () => {
    const result = validateResource(
      'BlockAffinity',
      affinity('node-1-10-0-0-0-26', { state: 'confirmed', node: 'node-1', cidr: '10.0.0.0/26' }),
    );
    expect(result.ok && result.value.spec).toEqual({
      state: 'confirmed',
      node: 'node-1',
      cidr: '10.0.0.0/26',
      type: 'host',
      deleted: false,
    });
  });

  it('rejects a bad state and a name that does not match node and CIDR', () => {
    expect(
      pathsOf(
        validateResource(
          'BlockAffinity',
          affinity('x', { state: 'claimed', node: 'node-1', cidr: '10.0.0.0/26' }),
        ),
      ),
    ).toEqual(['spec.state']);
    const wrongName = validateResource(
      'BlockAffinity',
      affinity('node-2-10-0-0-0-26', { state: 'pending', node: 'node-1', cidr: '10.0.0.0/26' }),
    );
    expect(wrongName.ok ? [] : wrongName.issues).toEqual([
      {
        path: 'metadata.name',
        value: 'node-2-10-0-0-0-26',
        message: 'must be "node-1-10-0-0-0-26" (<node>-<block name>)',
      },
    ]);
  });
});

describe('IPAMHandle', () => {
  it('requires name = handleID and CIDR block keys', () => {
    const ok = validateResource('IPAMHandle', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPAMHandle',
      metadata: { name: 'k8s-pod-network.abc123' },
      spec: { handleID: 'k8s-pod-network.abc123', block: { '10.0.0.0/26': 2 } },
    });
    expect(ok.ok && ok.value.spec).toEqual({
      handleID: 'k8s-pod-network.abc123',
      block: { '10.0.0.0/26': 2 },
      deleted: false,
    });
    const bad = validateResource('IPAMHandle', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPAMHandle',
      metadata: { name: 'other' },
      spec: { handleID: 'k8s-pod-network.abc123', block: { '10.0.0.1/26': 1, '10.0.0.0/26': -1 } },
    });
    expect(pathsOf(bad).sort()).toEqual([
      'metadata.name',
      'spec.block["10.0.0.0/26"]',
      'spec.block["10.0.0.1/26"]',
    ]);
  });
});

describe('IPAMConfiguration', () => {
  it('fills defaults when the spec is omitted', () => {
    const result = validateResource('IPAMConfiguration', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPAMConfiguration',
      metadata: { name: 'default' },
    });
    expect(result.ok && result.value.spec).toEqual({
      strictAffinity: false,
      maxBlocksPerHost: 0,
      autoAllocateBlocks: true,
    });
  });

  it('is a singleton and refuses autoAllocateBlocks=false without strictAffinity', () => {
    const result = validateResource('IPAMConfiguration', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPAMConfiguration',
      metadata: { name: 'mine' },
      spec: { autoAllocateBlocks: false, maxBlocksPerHost: -1 },
    });
    expect(pathsOf(result).sort()).toEqual([
      'metadata.name',
      'spec.autoAllocateBlocks',
      'spec.maxBlocksPerHost',
    ]);
    const combo = validateResource('IPAMConfiguration', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPAMConfiguration',
      metadata: { name: 'default' },
      spec: { autoAllocateBlocks: false },
    });
    expect(pathsOf(combo)).toEqual(['spec.autoAllocateBlocks']);
  });
});

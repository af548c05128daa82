import { describe, expect, it } from 'vitest';
import { tableHeadings } from './resource-table.ts';

describe('tableHeadings', () => {
  it("uses calicoctl's columns and puts NAMESPACE first when asked", () => {
    expect(tableHeadings('IPPool', false, false)).toEqual(['NAME', 'CIDR', 'SELECTOR']);
    expect(tableHeadings('WorkloadEndpoint', false, true)).toEqual([
      'NAMESPACE',
      'WORKLOAD',
      'NODE',
      'NETWORKS',
      'INTERFACE',
    ]);
    expect(tableHeadings('GlobalNetworkPolicy', true, false)).toEqual(['NAME', 'ORDER', 'SELECTOR']);
  });
});

import { describe, expect, it } from 'vitest';
import { layoutTable, tableHeadings } from './resource-table.ts';

describe('layoutTable', () => {
  it("pads every column but the last to its widest cell plus 3, at least 5 (calicoctl's tabwriter)", () => {
    expect(
      layoutTable([
        ['A', 'LONGER', 'LAST'],
        ['x', 'y', 'z'],
      ]),
    ).toBe('A    LONGER   LAST\nx    y        z\n');
  });
  it('lays out a lone column as it is', () => {
    expect(layoutTable([['NAME'], ['a-very-long-name']])).toBe('NAME\na-very-long-name\n');
  });
});

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

import { describe, expect, it } from 'vitest';
import { borderedTable, displayWidth, tabwriterTable } from './text-table.ts';

describe('displayWidth', () => {
  it('counts terminal columns: ASCII 1, CJK and emoji 2, combining marks 0', () => {
    expect(displayWidth('pool-a')).toBe(6);
    expect(displayWidth('命名空间')).toBe(8);
    expect(displayWidth('e\u0301')).toBe(1);
    expect(displayWidth('🚀x')).toBe(3);
  });
});

describe('tabwriterTable', () => {
  it("pads every column but the last to its widest cell plus 3, at least 5 (calicoctl's tabwriter)", () => {
    expect(
      tabwriterTable([
        ['A', 'LONGER', 'LAST'],
        ['x', 'y', 'z'],
      ]),
    ).toBe('A    LONGER   LAST\nx    y        z\n');
  });
  it('lays out a lone column as it is', () => {
    expect(tabwriterTable([['NAME'], ['a-very-long-name']])).toBe('NAME\na-very-long-name\n');
  });
  it('aligns the next column after a wide-character cell', () => {
    expect(
      tabwriterTable([
        ['NAME', 'CIDR'],
        ['网络', '10.0.0.0/8'],
        ['ab', '10.1.0.0/16'],
      ]),
    ).toBe('NAME   CIDR\n网络   10.0.0.0/8\nab     10.1.0.0/16\n');
  });
});

describe('borderedTable', () => {
  it("draws calicoctl node status's grid: centred headers, left-aligned cells", () => {
    expect(borderedTable(['PEER', 'STATE'], [['10.0.0.1', 'up']])).toBe(
      [
        '+----------+-------+',
        '|   PEER   | STATE |',
        '+----------+-------+',
        '| 10.0.0.1 | up    |',
        '+----------+-------+',
        '',
      ].join('\n'),
    );
  });
  it("right-aligns numbers as tablewriter's default alignment does, and only numbers", () => {
    expect(
      borderedTable(
        ['IPS', 'NOTE'],
        [
          ['65536', '5 (0%)'],
          ['64', '1.2089e+24'],
          ['12%', 'x'],
        ],
      ),
    ).toBe(
      [
        '+-------+------------+',
        '|  IPS  |    NOTE    |',
        '+-------+------------+',
        '| 65536 | 5 (0%)     |',
        '|    64 | 1.2089e+24 |',
        '|   12% | x          |',
        '+-------+------------+',
        '',
      ].join('\n'),
    );
  });
  it('sizes columns by display width and fills missing cells', () => {
    expect(borderedTable(['N', 'X'], [['网'], ['a', 'b']])).toBe(
      ['+----+---+', '| N  | X |', '+----+---+', '| 网 |   |', '| a  | b |', '+----+---+', ''].join('\n'),
    );
  });
});

import { describe, expect, it } from 'vitest';
import type { SelectorNode } from './ast.ts';
import { compareUtf8, formatSelectorNode, selectorLabelKeys } from './ast.ts';
import { maxSelectorNesting } from './parser.ts';
import { type Labels, parseSelector, Selector, validateSelector } from './selector.ts';
import { SelectorParseError } from './selector-parse-error.ts';

function parseError(text: string): SelectorParseError {
  try {
    parseSelector(text);
  } catch (err) {
    if (err instanceof SelectorParseError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

describe('parseSelector: accepted syntax', () => {
  it.each<[string, string]>([
    ['', 'all()'],
    [' \t ', 'all()'],
    [' all() ', 'all()'],
    [' (all() )', 'all()'],
    ['global()', 'global()'],
    ['a == "b"', 'a == "b"'],
    ["a == 'a'", 'a == "a"'],
    ['a==""', 'a == ""'],
    ['k8s-app == "kube-dns"', 'k8s-app == "kube-dns"'],
    ['app.kubernetes.io/name != "x"', 'app.kubernetes.io/name != "x"'],
    ['a contains"x"', 'a contains "x"'],
    ['a startswith "x"', 'a starts with "x"'],
    ['a starts \t with "x"', 'a starts with "x"'],
    ['a endswith "x"', 'a ends with "x"'],
    ['a in{"x"}', 'a in {"x"}'],
    ['a in {}', 'a in {}'],
    ['a notin {}', 'a not in {}'],
    ['a in {"x",}', 'a in {"x"}'],
    ['has( a )', 'has(a)'],
    ['!has(a)', '!has(a)'],
    ['!!has(a)', 'has(a)'],
    ['!!!has(a)', '!has(a)'],
    ['! !! has(a)', '!has(a)'],
    // Keywords are ordinary label names where an operator cannot appear.
    ['in == "x"', 'in == "x"'],
    ['has == "x" && all in {"y"} || not not in {}', '((has == "x" && all in {"y"}) || not not in {})'],
    ['contains contains "contains"', 'contains contains "contains"'],
    ['!a == "x" && b == "y"', '(!a == "x" && b == "y")'],
    ['a == "1" && b == "2" && c == "3"', '(a == "1" && b == "2" && c == "3")'],
    ['(a == "1" && b == "2") && c == "3"', '((a == "1" && b == "2") && c == "3")'],
    ['a == "1" || b == "2" && c == "3"', '(a == "1" || (b == "2" && c == "3"))'],
    [
      "! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}",
      '(!has(my-label) || (my-label starts with "prod" && role in {"business", "frontend"}))',
    ],
    [`has(${'l'.repeat(512)})`, `has(${'l'.repeat(512)})`],
  ])('%j → %s', (text, canonical) => {
    expect(parseSelector(text).toString()).toBe(canonical);
    expect(validateSelector(text)).toBeUndefined();
  });
});

describe('parseSelector: rejected syntax', () => {
  // Calico's bad-selector table (policy-semantics §1.2) and the lexical rules of §1.1, with where we point.
  it.each<[string, number, string]>([
    ['b == b', 5, 'expected string after operator but found label "b"'],
    ['b contains b', 11, 'expected string after operator'],
    ['b starts with b', 14, 'expected string after operator'],
    ['b ends with b', 12, 'expected string after operator'],
    ["'b1' == b", 0, 'unexpected string, expected an expression'],
    ['b', 1, 'expected operator after label "b" but found end of selector'],
    ['a b', 2, 'expected operator after label "a"'],
    ['!', 1, 'unexpected end of selector'],
    ['foo == "bar" &', 13, 'expected "&&" but found a lone "&"'],
    ['foo == "bar" |', 13, 'expected "||" but found a lone "|"'],
    ['foo != ||', 7, 'expected string after operator but found "||"'],
    ['foo in {"", ||', 12, 'expected "}" or another set member but found "||"'],
    ['foo in ""', 7, 'expected set literal'],
    ['"FOO', 0, 'unterminated string'],
    ['"FOO\'', 0, 'unterminated string'],
    ["'FOO", 0, 'unterminated string'],
    ['(', 1, 'unexpected end of selector'],
    ['(a == "foo"', 11, 'expected ")" to close "(" at position 0'],
    [')', 0, 'unexpected ")"'],
    ['()', 1, 'unexpected ")"'],
    ['%', 0, 'unexpected character "%"'],
    ['a == "b" && %', 12, 'unexpected character "%"'],
    ['a == "b" || %', 12, 'unexpected character "%"'],
    ['a ', 2, 'expected operator after label "a"'],
    ['has(foo) &&', 11, 'unexpected end of selector'],
    ['a == 5', 5, 'expected string after operator but found label "5"'],
    ['a in {,}', 6, 'expected "}" or another set member but found ","'],
    ['a in {"x" "y"}', 10, 'expected "}" or another set member but found string'],
    ['a inx {"x"}', 2, 'expected operator after label "a"'],
    ['has (a)', 4, 'expected operator after label "has" but found "("'],
    ['all ()', 4, 'expected operator after label "all"'],
    ['global ()', 7, 'expected operator after label "global"'],
    ['a == "x"\nb == "y"', 8, 'unexpected character "\\n"'],
    ['a == "x"\r', 8, 'unexpected character "\\r"'],
    ['a == "x") ', 8, 'unexpected content at end of selector (found ")")'],
    ['has(a) has(b)', 7, 'unexpected content at end of selector (found has())'],
    ['a == "x" b == "y"', 9, 'unexpected content at end of selector (found label "b")'],
    ['a == "x" !', 9, 'unexpected content at end of selector'],
    ['a == "x" &&& b == "y"', 11, 'expected "&&" but found a lone "&"'],
    [`${'l'.repeat(513)} == "x"`, 0, 'label name is 513 characters long'],
    ['has(a', 5, 'expected ")" to close has('],
    ['a ==', 4, 'expected string after operator but found end of selector'],
  ])('%j at %i: %s', (text, position, reason) => {
    const err = parseError(text);
    expect(err.code).toBe('SelectorParse');
    expect(err.selector).toBe(text);
    expect(err.position).toBe(position);
    expect(err.reason).toContain(reason);
    expect(err.message).toBe(`${err.reason} at position ${position}: ${text}`);
    expect(validateSelector(text)).toBe(err.message);
  });

  it('formats the message with reason, position and text', () => {
    expect(parseError('a == 5').message).toBe(
      'expected string after operator but found label "5" at position 5: a == 5',
    );
  });

  it(`accepts ${maxSelectorNesting} nested parentheses and rejects one more`, () => {
    const nested = (n: number) => `${'!('.repeat(n)}has(a)${')'.repeat(n)}`;
    const ok = parseSelector(nested(maxSelectorNesting));
    expect(ok.evaluate({ a: '' })).toBe(true);
    // Parity collapsing applies to runs of "!", not across parentheses, as in Calico.
    expect(ok.toString()).toBe(`${'!'.repeat(maxSelectorNesting)}has(a)`);
    const err = parseError(nested(maxSelectorNesting + 1));
    expect(err.position).toBe(2 * maxSelectorNesting + 1);
    expect(err.reason).toMatch(/nested more than/);
  });
});

describe('canonical form and unique ID', () => {
  // Calico's canonicalisation table, including the IDs Felix computes for the same selectors.
  it.each<[string, string, string | undefined]>([
    ['', 'all()', 's:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug'],
    [' all() ', 'all()', 's:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug'],
    [' (all() )', 'all()', 's:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug'],
    ['! (has( b)||! has(a ))', '!(has(b) || !has(a))', 's:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q'],
    ['! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")', 's:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w'],
    [`a == "'"`, `a == "'"`, undefined],
    [`a == '"'`, `a == '"'`, undefined],
    [`a contains '"'`, `a contains '"'`, undefined],
    [`a contains "'"`, `a contains "'"`, undefined],
    [`a startswith '"'`, `a starts with '"'`, undefined],
    [`a endswith "'"`, `a ends with "'"`, undefined],
    [`a!='"'`, `a != '"'`, undefined],
    ['a in {"d"}', 'a in {"d"}', undefined],
    ['a in {"d", "a", "b"}', 'a in {"a", "b", "d"}', undefined],
    ['a in {"z", "z", "x", "y", "x", "a"}', 'a in {"a", "x", "y", "z"}', undefined],
    [`a not in {'"', "'", "c"}`, `a not in {'"', "'", "c"}`, undefined],
    [
      "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
      '!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})',
      undefined,
    ],
  ])('%j → %s', (text, canonical, uid) => {
    const sel = parseSelector(text);
    expect(sel.toString()).toBe(canonical);
    const again = parseSelector(canonical);
    expect(again.toString()).toBe(canonical);
    expect(again.uniqueId).toBe(sel.uniqueId);
    expect(sel.uniqueId).toMatch(/^s:[A-Za-z0-9_-]{38}$/);
    if (uid !== undefined) expect(sel.uniqueId).toBe(uid);
  });

  it('gives different IDs to different selectors', () => {
    expect(parseSelector('a == "b"').uniqueId).not.toBe(parseSelector('a != "b"').uniqueId);
  });

  it('sorts set members by UTF-8 bytes, as Go does', () => {
    // U+FF5E is one UTF-16 unit above the surrogates of U+1F600, but its UTF-8 bytes sort first.
    expect(parseSelector('a in {"😀", "～", "b", "B"}').toString()).toBe('a in {"B", "b", "～", "😀"}');
    expect(compareUtf8('～', '😀')).toBeLessThan(0);
    expect(compareUtf8('a', 'ab')).toBeLessThan(0);
    expect(compareUtf8('x', 'x')).toBe(0);
  });
});

describe('evaluation (policy-semantics §1.3)', () => {
  // [selector, labels that match, labels that do not]; most rows are Calico's parser test table.
  it.each<[string, Labels[], Labels[]]>([
    ['a == "b"', [{ a: 'b' }, { a: 'b', c: 'd' }], [{}, { a: 'c' }, { c: 'd' }]],
    ['a == "b" && c == "d"', [{ a: 'b', c: 'd' }], [{}, { a: 'b', c: 'e' }, { a: 'c', c: 'd' }, { a: 'b' }]],
    ['a == "b" || c == "d"', [{ a: 'b', c: 'd' }, { a: 'b' }, { c: 'd' }], [{}, { a: 'e', c: 'e' }]],
    [`a in {"'", '"', "c"}`, [{ a: 'c' }, { a: '"' }, { a: "'" }], [{}, { a: 'e' }]],
    [`a not in {"'", '"', "c"}`, [{}, { a: 'e' }], [{ a: 'c' }, { a: '"' }, { a: "'" }]],
    ['a != "b"', [{ a: 'a' }, {}, { b: 'b' }], [{ a: 'b' }]],
    ['a contains "a"', [{ a: 'a' }, { a: 'bab' }, { a: 'aaa', b: 'c' }], [{}, { a: 'b' }, { b: 'aaa' }]],
    ['a starts with "a"', [{ a: 'a' }, { a: 'abb' }], [{}, { a: 'b' }, { a: 'baa' }, { b: 'aaa' }]],
    ['a ends with "a"', [{ a: 'a' }, { a: 'bba' }], [{}, { a: 'b' }, { a: 'aab' }, { b: 'aaa' }]],
    ['a contains ""', [{ a: '' }, { a: 'x' }], [{}]],
    ['a starts with "A"', [{ a: 'Abc' }], [{ a: 'abc' }]],
    ['a == ""', [{ a: '' }], [{}, { a: ' ' }]],
    ['a in {}', [], [{}, { a: '' }, { a: 'x' }]],
    ['a not in {}', [{}, { a: '' }, { a: 'x' }], []],
    ['!a in {"a"}', [{ a: 'b' }, {}], [{ a: 'a' }]],
    ['has(a)', [{ a: 'b' }, { a: '' }], [{}, { b: 'a' }]],
    ['!has(a)', [{ b: 'b' }, {}], [{ a: 'b' }, { a: '' }]],
    ['!!!has(a)', [{}], [{ a: 'b' }]],
    ['', [{}, { a: 'b' }], []],
    ['all()', [{}, { a: 'b' }], []],
    ['global()', [{}, { a: 'b' }], []],
    ['a != "a1" && !b == "b1"', [{}, { a: 'x', b: 'y' }], [{ a: 'a1', b: 'b1' }, { b: 'b1' }]],
    ['!(!has(a) || has(b))', [{ a: 'a' }], [{}, { a: 'a', b: 'b' }]],
    ['! a == "a1" || ! b == "b1"', [{ a: 'a1' }, {}], [{ a: 'a1', b: 'b1' }]],
    // Label names that are also Object.prototype members are absent unless really present.
    ['has(constructor)', [{ constructor: 'x' }], [{}]],
    ['constructor != "x"', [{}], [{ constructor: 'x' }]],
    ['toString in {"x"}', [{ toString: 'x' }], [{}]],
    ['__proto__ == "x"', [JSON.parse('{"__proto__":"x"}') as Labels], [{}]],
  ])('%j', (text, matching, nonMatching) => {
    const sel = parseSelector(text);
    const canonical = parseSelector(sel.toString());
    for (const labels of matching) {
      expect(sel.evaluate(labels), JSON.stringify(labels)).toBe(true);
      expect(canonical.evaluate(labels), JSON.stringify(labels)).toBe(true);
    }
    for (const labels of nonMatching) {
      expect(sel.evaluate(labels), JSON.stringify(labels)).toBe(false);
      expect(canonical.evaluate(labels), JSON.stringify(labels)).toBe(false);
    }
  });

  it('accepts labels with a null prototype', () => {
    const labels = Object.assign(Object.create(null) as Record<string, string>, { a: 'b' });
    expect(parseSelector('a == "b" && !has(c)').evaluate(labels)).toBe(true);
  });
});

describe('AST', () => {
  it('exposes a walkable tree', () => {
    const sel = parseSelector("!has(x) && role in {'db', 'api'} || tier starts with 'prod'");
    const expected: SelectorNode = {
      kind: 'or',
      operands: [
        {
          kind: 'and',
          operands: [
            { kind: 'not', operand: { kind: 'has', label: 'x' } },
            { kind: 'in', label: 'role', values: ['api', 'db'] },
          ],
        },
        { kind: 'startsWith', label: 'tier', value: 'prod' },
      ],
    };
    expect(sel.root).toEqual(expected);
    expect(sel.labelKeys).toEqual(['role', 'tier', 'x']);
    expect(selectorLabelKeys(parseSelector('all() && global()').root)).toEqual([]);
    expect(parseSelector('b == "1" || a == "2" || has(b)').labelKeys).toEqual(['a', 'b']);
  });

  it('builds selectors from code-made trees and prints them canonically', () => {
    const node: SelectorNode = {
      kind: 'and',
      operands: [
        { kind: 'notIn', label: 'a', values: ['z', 'x', 'z'] },
        { kind: 'ne', label: 'b', value: 'say "hi"' },
      ],
    };
    const sel = Selector.fromNode(node);
    expect(formatSelectorNode(node)).toBe(`(a not in {"x", "z"} && b != 'say "hi"')`);
    expect(sel.toString()).toBe(formatSelectorNode(node));
    expect(sel.evaluate({ a: 'y', b: 'x' })).toBe(true);
    expect(sel.evaluate({ a: 'z' })).toBe(false);
    expect(parseSelector(sel.toString()).uniqueId).toBe(sel.uniqueId);
  });

  it('reshapes code-made trees the way the parser would', () => {
    const node: SelectorNode = {
      kind: 'not',
      operand: { kind: 'or', operands: [{ kind: 'not', operand: { kind: 'has', label: 'a' } }] },
    };
    const sel = Selector.fromNode(node);
    expect(sel.root).toEqual({ kind: 'has', label: 'a' });
    expect(sel.uniqueId).toBe(parseSelector('has(a)').uniqueId);
  });

  it.each<[string, SelectorNode]>([
    ['invalid label name "a b"', { kind: 'has', label: 'a b' }],
    ['invalid label name ""', { kind: 'eq', label: '', value: 'x' }],
    ['contains both quote characters', { kind: 'eq', label: 'a', value: `'"` }],
    ['contains both quote characters', { kind: 'in', label: 'a', values: ['x', `'"`] }],
    ['"or" node has no operands', { kind: 'not', operand: { kind: 'or', operands: [] } }],
  ])('fromNode rejects a tree with %s', (reason, node) => {
    expect(() => Selector.fromNode(node)).toThrow(reason);
  });
});

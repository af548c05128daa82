import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSelectorNode, type LabelValueOperator, type SelectorNode } from './ast.ts';
import { type Labels, parseSelector, Selector, validateSelector } from './selector.ts';
import { SelectorParseError } from './selector-parse-error.ts';

// Label names and values come mostly from small pools so random label maps actually hit the selector;
// keywords are in the pool because they are legal label names.
const labelName = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom('a', 'b', 'k8s-app', 'app.kubernetes.io/name', 'in', 'has', 'all'),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('not', 'contains', 'starts', 'with', 'global', 'notin', 'constructor'),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_./-]{1,12}$/) },
);

const valuePool = ['', 'x', 'xy', 'yx', 'X', '"', "'", 'a b', 'é', '😀', '～'];
// Any string is a legal value except one holding both quote characters, which has no selector text.
const labelValue = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...valuePool) },
  {
    weight: 1,
    arbitrary: fc
      .string({ unit: 'grapheme', maxLength: 6 })
      .filter((s) => !(s.includes('"') && s.includes("'"))),
  },
);

const valueOperators: LabelValueOperator[] = ['eq', 'ne', 'contains', 'startsWith', 'endsWith'];

const leaf: fc.Arbitrary<SelectorNode> = fc.oneof(
  fc.constant<SelectorNode>({ kind: 'all' }),
  fc.constant<SelectorNode>({ kind: 'global' }),
  labelName.map((label): SelectorNode => ({ kind: 'has', label })),
  fc
    .tuple(fc.constantFrom(...valueOperators), labelName, labelValue)
    .map(([kind, label, value]): SelectorNode => ({ kind, label, value })),
  fc
    .tuple(
      fc.constantFrom('in' as const, 'notIn' as const),
      labelName,
      fc.array(labelValue, { maxLength: 4 }),
    )
    .map(([kind, label, values]): SelectorNode => ({ kind, label, values })),
);

/**
 * Trees the parser can produce: and/or with two or more operands and no `!` directly under `!` (runs of "!"
 * collapse by parity). For these, parse(print(tree)) prints identically.
 */
const parserShapedTree = fc.letrec<{ node: SelectorNode; positive: SelectorNode }>((tie) => ({
  positive: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc
      .array(tie('node'), { minLength: 2, maxLength: 3 })
      .map((operands): SelectorNode => ({ kind: 'and', operands })),
    fc
      .array(tie('node'), { minLength: 2, maxLength: 3 })
      .map((operands): SelectorNode => ({ kind: 'or', operands })),
  ),
  node: fc.oneof(
    tie('positive'),
    tie('positive').map((operand): SelectorNode => ({ kind: 'not', operand })),
  ),
})).node;

/** Any tree fromNode accepts, including `!!x` and one-operand groups, which the parser never builds. */
const anyTree = fc.letrec<{ node: SelectorNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    tie('node').map((operand): SelectorNode => ({ kind: 'not', operand })),
    fc
      .array(tie('node'), { minLength: 1, maxLength: 3 })
      .map((operands): SelectorNode => ({ kind: 'and', operands })),
    fc
      .array(tie('node'), { minLength: 1, maxLength: 3 })
      .map((operands): SelectorNode => ({ kind: 'or', operands })),
  ),
})).node;

const labels: fc.Arbitrary<Labels> = fc.dictionary(labelName, labelValue, { maxKeys: 5 });
const labelMaps = fc.array(labels, { minLength: 1, maxLength: 8 });

/** Reference semantics straight from the §1.3 table, independent of the compiled matcher. */
function reference(node: SelectorNode, l: Labels): boolean {
  const has = (k: string) => Object.hasOwn(l, k);
  switch (node.kind) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return has(node.label);
    case 'eq':
      return has(node.label) && l[node.label] === node.value;
    case 'ne':
      return !has(node.label) || l[node.label] !== node.value;
    case 'contains':
      return has(node.label) && l[node.label]!.includes(node.value);
    case 'startsWith':
      return has(node.label) && l[node.label]!.startsWith(node.value);
    case 'endsWith':
      return has(node.label) && l[node.label]!.endsWith(node.value);
    case 'in':
      return has(node.label) && node.values.includes(l[node.label]!);
    case 'notIn':
      return !has(node.label) || !node.values.includes(l[node.label]!);
    case 'not':
      return !reference(node.operand, l);
    case 'and':
      return node.operands.every((op) => reference(op, l));
    case 'or':
      return node.operands.some((op) => reference(op, l));
  }
}

describe('selector properties', () => {
  it('print → parse → print is the identity on parser-shaped trees, and evaluation agrees', () => {
    fc.assert(
      fc.property(parserShapedTree, labelMaps, (tree, maps) => {
        const text = formatSelectorNode(tree);
        const parsed = parseSelector(text);
        expect(parsed.toString()).toBe(text);
        expect(parsed.uniqueId).toBe(Selector.fromNode(tree).uniqueId);
        for (const l of maps) expect(parsed.evaluate(l)).toBe(reference(tree, l));
      }),
      { numRuns: 500 },
    );
  });

  it('any code-built tree gets the text and ID its own text parses to, and evaluation agrees', () => {
    fc.assert(
      fc.property(anyTree, labelMaps, (tree, maps) => {
        const built = Selector.fromNode(tree);
        const parsed = parseSelector(built.toString());
        expect(parsed.toString()).toBe(built.toString());
        expect(parsed.uniqueId).toBe(built.uniqueId);
        expect(parsed.root).toEqual(built.root);
        for (const l of maps) {
          const expected = reference(tree, l);
          expect(built.evaluate(l)).toBe(expected);
          expect(parsed.evaluate(l)).toBe(expected);
        }
      }),
      { numRuns: 500 },
    );
  });

  // Strings built from selector fragments reach deep into the grammar; plain random strings probe the lexer.
  const fragment = fc.constantFrom(
    'a',
    'b',
    ' ',
    '\t',
    '\n',
    '==',
    '!=',
    '=',
    '!',
    '&&',
    '&',
    '||',
    '|',
    '(',
    ')',
    '{',
    '}',
    ',',
    '"x"',
    "'y'",
    '"',
    "'",
    'in',
    'not',
    'not in',
    'contains',
    'starts',
    'with',
    'ends with',
    'has(',
    'has(a)',
    'all()',
    'all(',
    'global()',
    '5',
    '%',
    'é',
  );
  const selectorSoup = fc.oneof(
    fc.array(fragment, { maxLength: 16 }).map((parts) => parts.join('')),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
  );

  it('never crashes: random text parses, or fails with a SelectorParseError positioned inside it', () => {
    fc.assert(
      fc.property(selectorSoup, (text) => {
        let sel: Selector | undefined;
        try {
          sel = parseSelector(text);
        } catch (err) {
          expect(err).toBeInstanceOf(SelectorParseError);
          const e = err as SelectorParseError;
          expect(e.code).toBe('SelectorParse');
          expect(e.position).toBeGreaterThanOrEqual(0);
          expect(e.position).toBeLessThanOrEqual(text.length);
          expect(e.selector).toBe(text);
          expect(validateSelector(text)).toBe(e.message);
          return;
        }
        expect(validateSelector(text)).toBeUndefined();
        // Whatever parses has canonical text that parses to itself.
        expect(parseSelector(sel.toString()).toString()).toBe(sel.toString());
      }),
      { numRuns: 3000 },
    );
  });

  it('double negation and De Morgan hold', () => {
    fc.assert(
      fc.property(parserShapedTree, parserShapedTree, labelMaps, (x, y, maps) => {
        const p = formatSelectorNode(x);
        const q = formatSelectorNode(y);
        const pairs: [string, string][] = [
          [`!!(${p})`, p],
          [`!(!(${p}))`, p],
          [`!(${p} && ${q})`, `!${p} || !${q}`],
          [`!(${p} || ${q})`, `!${p} && !${q}`],
          [`${p} && ${q}`, `${q} && ${p}`],
          [`${p} || ${q}`, `${q} || ${p}`],
        ];
        for (const [left, right] of pairs) {
          const l = parseSelector(left);
          const r = parseSelector(right);
          for (const m of maps)
            expect(l.evaluate(m), `${left} vs ${right} on ${JSON.stringify(m)}`).toBe(r.evaluate(m));
        }
      }),
      { numRuns: 300 },
    );
  });
});

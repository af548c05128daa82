/**
 * The selector AST: a readonly discriminated union on `kind`, so policy → ipset translation and the label
 * index can walk a selector with an exhaustive `switch`. Nodes built by the parser are canonical: set
 * members sorted (UTF-8 byte order, as Calico's Go `sort.Strings`) and de-duplicated, `!` collapsed by parity.
 */

/** `all()`: matches everything; also what the empty selector means. */
export interface AllNode {
  readonly kind: 'all';
}

/** `global()`: matches everything as an expression; its meaning in a namespaceSelector comes from rewriting. */
export interface GlobalNode {
  readonly kind: 'global';
}

/** `has(label)`: the label is present, with any value (including ""). */
export interface HasNode {
  readonly kind: 'has';
  readonly label: string;
}

export type LabelValueOperator = 'eq' | 'ne' | 'contains' | 'startsWith' | 'endsWith';

/** `label == "v"`, `!=`, `contains`, `starts with`, `ends with`. */
export interface LabelValueNode {
  readonly kind: LabelValueOperator;
  readonly label: string;
  readonly value: string;
}

export type LabelSetOperator = 'in' | 'notIn';

/** `label in {…}` / `label not in {…}`; `values` sorted and unique. */
export interface LabelSetNode {
  readonly kind: LabelSetOperator;
  readonly label: string;
  readonly values: readonly string[];
}

export interface NotNode {
  readonly kind: 'not';
  readonly operand: SelectorNode;
}

/** `a && b && …`: the parser builds one node per chain, so it always has at least two operands. */
export interface AndNode {
  readonly kind: 'and';
  readonly operands: readonly SelectorNode[];
}

/** `a || b || …`: at least two operands when built by the parser. */
export interface OrNode {
  readonly kind: 'or';
  readonly operands: readonly SelectorNode[];
}

export type SelectorNode =
  | AllNode
  | GlobalNode
  | HasNode
  | LabelValueNode
  | LabelSetNode
  | NotNode
  | AndNode
  | OrNode;

/**
 * Order strings by their UTF-8 bytes. JS compares UTF-16 code units, which disagrees with byte order when a
 * surrogate pair (code point ≥ U+10000) meets a BMP character ≥ U+E000; canonical text and so the selector's
 * unique ID must match Calico's, which sorts Go (UTF-8) strings.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codeUnitRank(x) - codeUnitRank(y);
  }
  return a.length - b.length;
}

function codeUnitRank(unit: number): number {
  // Surrogates stand for code points above every BMP unit, so lift them above U+E000..U+FFFF.
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** Sorted (UTF-8 byte order), de-duplicated set members, as the canonical form prints them. */
export function canonicalSetValues(values: readonly string[]): string[] {
  const sorted = [...values].sort(compareUtf8);
  let w = 0;
  for (let r = 0; r < sorted.length; r++) {
    if (r === 0 || sorted[r] !== sorted[w - 1]) sorted[w++] = sorted[r]!;
  }
  sorted.length = w;
  return sorted;
}

const valueOperatorText: Readonly<Record<LabelValueOperator, string>> = {
  eq: ' == ',
  ne: ' != ',
  contains: ' contains ',
  startsWith: ' starts with ',
  endsWith: ' ends with ',
};

/** Calico quoting: double quotes unless the string itself contains one. */
function quote(value: string): string {
  return value.includes('"') ? `'${value}'` : `"${value}"`;
}

/**
 * Calico's canonical text for a node (`Selector.String()`, §1.4 of the policy notes): every `&&`/`||` group is
 * parenthesised, operators are spaced, strings use double quotes unless they contain one, and set members are
 * sorted and de-duplicated. Equal canonical text means an equal selector ID, so this format must not drift.
 */
export function formatSelectorNode(node: SelectorNode): string {
  switch (node.kind) {
    case 'all':
      return 'all()';
    case 'global':
      return 'global()';
    case 'has':
      return `has(${node.label})`;
    case 'eq':
    case 'ne':
    case 'contains':
    case 'startsWith':
    case 'endsWith':
      return node.label + valueOperatorText[node.kind] + quote(node.value);
    case 'in':
    case 'notIn': {
      const members = canonicalSetValues(node.values).map(quote).join(', ');
      return `${node.label} ${node.kind === 'in' ? 'in' : 'not in'} {${members}}`;
    }
    case 'not':
      return '!' + formatSelectorNode(node.operand);
    case 'and':
      return '(' + node.operands.map(formatSelectorNode).join(' && ') + ')';
    case 'or':
      return '(' + node.operands.map(formatSelectorNode).join(' || ') + ')';
  }
}

/** Every label key a selector refers to, sorted and unique; what a label index must watch for it. */
export function selectorLabelKeys(node: SelectorNode): string[] {
  const keys = new Set<string>();
  collectLabelKeys(node, keys);
  return [...keys].sort(compareUtf8);
}

function collectLabelKeys(node: SelectorNode, keys: Set<string>): void {
  switch (node.kind) {
    case 'all':
    case 'global':
      return;
    case 'not':
      collectLabelKeys(node.operand, keys);
      return;
    case 'and':
    case 'or':
      for (const operand of node.operands) collectLabelKeys(operand, keys);
      return;
    default:
      keys.add(node.label);
  }
}

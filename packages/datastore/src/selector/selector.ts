import { createHash } from 'node:crypto';
import { canonicalSetValues, formatSelectorNode, type SelectorNode, selectorLabelKeys } from './ast.ts';
import { isValidSelectorLabel } from './lexer.ts';
import { parseSelectorNode } from './parser.ts';
import { SelectorParseError } from './selector-parse-error.ts';

/** Labels as selectors see them: key → value. Absent keys are what `!=`, `not in` and `!has()` match. */
export type Labels = Readonly<Record<string, string>>;

type Matcher = (labels: Labels) => boolean;

/**
 * A parsed selector. Evaluation runs a tree of closures compiled once from the AST, so matching an endpoint
 * allocates nothing; canonical text and the unique ID are computed on first use.
 */
export class Selector {
  readonly root: SelectorNode;
  readonly #matches: Matcher;
  #text: string | undefined;
  #uniqueId: string | undefined;
  #labelKeys: readonly string[] | undefined;

  private constructor(root: SelectorNode) {
    this.root = root;
    this.#matches = compile(root);
  }

  /** Parse selector text; throws SelectorParseError. */
  static parse(text: string): Selector {
    return new Selector(parseSelectorNode(text));
  }

  /**
   * Wrap an AST built by code (e.g. a rewritten selector). Rejects what the parser could never produce and the
   * canonical text could not express (invalid label names, strings holding both quote characters, empty
   * and/or), and reshapes the rest as the parser would (`!!x` → `x`, one-operand and/or → the operand, sets
   * sorted), so the result has the same text and unique ID as parsing its own text.
   */
  static fromNode(root: SelectorNode): Selector {
    checkNode(root);
    return new Selector(parserShaped(root));
  }

  /** Does the selector match these labels? (policy-semantics §1.3) */
  evaluate(labels: Labels): boolean {
    return this.#matches(labels);
  }

  /** Calico's canonical text; parsing it gives back an equivalent selector with the same canonical text. */
  toString(): string {
    this.#text ??= formatSelectorNode(this.root);
    return this.#text;
  }

  /**
   * Calico's selector ID: `s:` + unpadded base64url SHA-224 of `s:<canonical text>` (libcalico-go
   * hash.MakeUniqueID), so ipset names derived from it agree with Felix for the same selector.
   */
  get uniqueId(): string {
    this.#uniqueId ??= `s:${createHash('sha224').update(`s:${this.toString()}`).digest('base64url')}`;
    return this.#uniqueId;
  }

  /** Label keys the selector refers to, sorted and unique. */
  get labelKeys(): readonly string[] {
    this.#labelKeys ??= Object.freeze(selectorLabelKeys(this.root));
    return this.#labelKeys;
  }
}

/** Parse selector text; throws SelectorParseError (code `SelectorParse`) with the offending position. */
export function parseSelector(text: string): Selector {
  return Selector.parse(text);
}

/** undefined when `text` is a valid selector, otherwise the parse error message. */
export function validateSelector(text: string): string | undefined {
  try {
    parseSelectorNode(text);
    return undefined;
  } catch (err) {
    if (err instanceof SelectorParseError) return err.message;
    throw err;
  }
}

// Own string-valued properties only: Object.prototype has no string-valued members, so `typeof` alone keeps
// label names like `constructor` from matching inherited functions without a hasOwn call per lookup.
function compile(node: SelectorNode): Matcher {
  switch (node.kind) {
    case 'all':
    case 'global':
      return () => true;
    case 'has': {
      const k = node.label;
      return (labels) => typeof labels[k] === 'string';
    }
    case 'eq': {
      const k = node.label;
      const v = node.value;
      return (labels) => labels[k] === v;
    }
    case 'ne': {
      const k = node.label;
      const v = node.value;
      return (labels) => labels[k] !== v;
    }
    case 'contains': {
      const k = node.label;
      const v = node.value;
      // UTF-16 substring tests agree with Calico's byte-wise UTF-8 tests on well-formed text.
      return (labels) => {
        const x = labels[k];
        return typeof x === 'string' && x.includes(v);
      };
    }
    case 'startsWith': {
      const k = node.label;
      const v = node.value;
      return (labels) => {
        const x = labels[k];
        return typeof x === 'string' && x.startsWith(v);
      };
    }
    case 'endsWith': {
      const k = node.label;
      const v = node.value;
      return (labels) => {
        const x = labels[k];
        return typeof x === 'string' && x.endsWith(v);
      };
    }
    case 'in': {
      const k = node.label;
      const set = new Set<unknown>(node.values);
      return (labels) => set.has(labels[k]);
    }
    case 'notIn': {
      const k = node.label;
      const set = new Set<unknown>(node.values);
      return (labels) => !set.has(labels[k]);
    }
    case 'not': {
      const inner = compile(node.operand);
      return (labels) => !inner(labels);
    }
    case 'and': {
      const parts = node.operands.map(compile);
      if (parts.length === 2) {
        const [a, b] = parts as [Matcher, Matcher];
        return (labels) => a(labels) && b(labels);
      }
      return (labels) => {
        for (const part of parts) if (!part(labels)) return false;
        return true;
      };
    }
    case 'or': {
      const parts = node.operands.map(compile);
      if (parts.length === 2) {
        const [a, b] = parts as [Matcher, Matcher];
        return (labels) => a(labels) || b(labels);
      }
      return (labels) => {
        for (const part of parts) if (part(labels)) return true;
        return false;
      };
    }
  }
}

function checkNode(node: SelectorNode): void {
  const invalid = (reason: string): never => {
    throw new SelectorParseError(reason, 0, formatSelectorNode(node));
  };
  switch (node.kind) {
    case 'all':
    case 'global':
      return;
    case 'not':
      checkNode(node.operand);
      return;
    case 'and':
    case 'or':
      if (node.operands.length === 0) invalid(`"${node.kind}" node has no operands`);
      for (const operand of node.operands) checkNode(operand);
      return;
    case 'in':
    case 'notIn':
      for (const value of node.values) checkValue(value, invalid);
      break;
    case 'has':
      break;
    default:
      checkValue(node.value, invalid);
  }
  if (!isValidSelectorLabel(node.label)) invalid(`invalid label name ${JSON.stringify(node.label)}`);
}

function checkValue(value: string, invalid: (reason: string) => never): void {
  // No escapes exist, so a string with both quote characters has no selector text.
  if (value.includes('"') && value.includes("'")) {
    invalid(`value ${JSON.stringify(value)} contains both quote characters`);
  }
}

function parserShaped(node: SelectorNode): SelectorNode {
  switch (node.kind) {
    case 'not': {
      // Runs of "!" collapse by parity when parsed, so `!!x` never survives a round trip.
      const operand = parserShaped(node.operand);
      return operand.kind === 'not' ? operand.operand : { kind: 'not', operand };
    }
    case 'and':
    case 'or': {
      // A one-operand group prints as "(x)", which parses back as plain x.
      if (node.operands.length === 1) return parserShaped(node.operands[0]!);
      return { kind: node.kind, operands: node.operands.map(parserShaped) };
    }
    case 'in':
    case 'notIn':
      return { kind: node.kind, label: node.label, values: canonicalSetValues(node.values) };
    default:
      return node;
  }
}

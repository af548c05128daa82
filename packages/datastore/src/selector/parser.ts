import {
  type AndNode,
  canonicalSetValues,
  type LabelValueOperator,
  type OrNode,
  type SelectorNode,
} from './ast.ts';
import { SelectorLexer, Tok, tokenDescriptions } from './lexer.ts';

/**
 * Deepest parenthesis nesting accepted. Calico has no limit (Go stacks grow), but a JS recursive descent
 * would overflow the stack on hostile input; 512 still covers any selector that fits the CRDs' 1024 characters.
 */
export const maxSelectorNesting = 512;

const ALL: SelectorNode = Object.freeze({ kind: 'all' });
const GLOBAL: SelectorNode = Object.freeze({ kind: 'global' });

/**
 * Parse selector text into its AST (recursive descent over the grammar in policy-semantics §1.2):
 *   or := and { "||" and };  and := unary { "&&" unary };  unary := { "!" } primary
 * Empty or all-whitespace text is `all()`. Throws SelectorParseError.
 */
export function parseSelectorNode(text: string): SelectorNode {
  const lexer = new SelectorLexer(text);
  if (lexer.peek() === Tok.Eof) return ALL;
  const node = parseOr(lexer, 0);
  if (lexer.peek() !== Tok.Eof) {
    lexer.fail(`unexpected content at end of selector (found ${describeFound(lexer)})`, lexer.start);
  }
  return node;
}

function parseOr(lexer: SelectorLexer, depth: number): SelectorNode {
  const first = parseAnd(lexer, depth);
  if (lexer.peek() !== Tok.Or) return first;
  const operands = [first];
  while (lexer.peek() === Tok.Or) {
    lexer.next();
    operands.push(parseAnd(lexer, depth));
  }
  const node: OrNode = { kind: 'or', operands };
  return node;
}

function parseAnd(lexer: SelectorLexer, depth: number): SelectorNode {
  const first = parseUnary(lexer, depth);
  if (lexer.peek() !== Tok.And) return first;
  const operands = [first];
  while (lexer.peek() === Tok.And) {
    lexer.next();
    operands.push(parseUnary(lexer, depth));
  }
  const node: AndNode = { kind: 'and', operands };
  return node;
}

function parseUnary(lexer: SelectorLexer, depth: number): SelectorNode {
  // Any run of "!" collapses by parity, as Calico does: `!!has(a)` is `has(a)`.
  let negated = false;
  while (lexer.peek() === Tok.Not) {
    negated = !negated;
    lexer.next();
  }
  const node = parsePrimary(lexer, depth);
  return negated ? { kind: 'not', operand: node } : node;
}

function parsePrimary(lexer: SelectorLexer, depth: number): SelectorNode {
  switch (lexer.peek()) {
    case Tok.Has: {
      const label = lexer.value;
      lexer.next();
      return { kind: 'has', label };
    }
    case Tok.All:
      lexer.next();
      return ALL;
    case Tok.Global:
      lexer.next();
      return GLOBAL;
    case Tok.Label:
      return parseLabelMatch(lexer);
    case Tok.LParen: {
      if (depth >= maxSelectorNesting) {
        lexer.fail(`parentheses nested more than ${maxSelectorNesting} deep`, lexer.start);
      }
      const open = lexer.start;
      lexer.next();
      const inner = parseOr(lexer, depth + 1);
      if (lexer.peek() !== Tok.RParen) {
        lexer.fail(
          `expected ")" to close "(" at position ${open} but found ${tokenDescriptions[lexer.peek()]}`,
          lexer.start,
        );
      }
      lexer.next();
      return inner;
    }
    case Tok.Eof:
      return lexer.fail('unexpected end of selector, expected an expression', lexer.start);
    default:
      return lexer.fail(`unexpected ${tokenDescriptions[lexer.peek()]}, expected an expression`, lexer.start);
  }
}

function parseLabelMatch(lexer: SelectorLexer): SelectorNode {
  const label = lexer.value;
  lexer.next();
  let op: LabelValueOperator;
  switch (lexer.peek()) {
    case Tok.Eq:
      op = 'eq';
      break;
    case Tok.Ne:
      op = 'ne';
      break;
    case Tok.Contains:
      op = 'contains';
      break;
    case Tok.StartsWith:
      op = 'startsWith';
      break;
    case Tok.EndsWith:
      op = 'endsWith';
      break;
    case Tok.In:
    case Tok.NotIn:
      return parseSetMatch(lexer, label);
    default:
      return lexer.fail(
        `expected operator after label "${label}" but found ${tokenDescriptions[lexer.peek()]}`,
        lexer.start,
      );
  }
  lexer.next();
  if (lexer.peek() !== Tok.String) {
    // Numbers are not literals: `a == 5` must be written `a == "5"`.
    lexer.fail(`expected string after operator but found ${describeFound(lexer)}`, lexer.start);
  }
  const value = lexer.value;
  lexer.next();
  return { kind: op, label, value };
}

function parseSetMatch(lexer: SelectorLexer, label: string): SelectorNode {
  const kind = lexer.peek() === Tok.In ? 'in' : 'notIn';
  lexer.next();
  if (lexer.peek() !== Tok.LBrace) {
    lexer.fail(`expected set literal "{…}" after operator but found ${describeFound(lexer)}`, lexer.start);
  }
  lexer.next();
  const values: string[] = [];
  // Members are strings separated by commas; one trailing comma is allowed, `{,}` is not.
  while (lexer.peek() === Tok.String) {
    values.push(lexer.value);
    lexer.next();
    if (lexer.peek() !== Tok.Comma) break;
    lexer.next();
  }
  if (lexer.peek() !== Tok.RBrace) {
    lexer.fail(`expected "}" or another set member but found ${describeFound(lexer)}`, lexer.start);
  }
  lexer.next();
  return { kind, label, values: canonicalSetValues(values) };
}

function describeFound(lexer: SelectorLexer): string {
  if (lexer.peek() === Tok.Label) return `label "${lexer.value}"`;
  return tokenDescriptions[lexer.peek()];
}

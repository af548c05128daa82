import { describe, expect, it } from 'vitest';
import { SelectorLexer, Tok, type TokKind } from './lexer.ts';
import { SelectorParseError } from './selector-parse-error.ts';

type Token = [TokKind, string?];

function tokenize(text: string): Token[] {
  const lexer = new SelectorLexer(text);
  const out: Token[] = [];
  while (lexer.peek() !== Tok.Eof) {
    out.push(lexer.value === '' ? [lexer.peek()] : [lexer.peek(), lexer.value]);
    lexer.next();
  }
  return out;
}

describe('selector lexer', () => {
  // Token streams from Calico's tokenizer tests, plus our own edge cases.
  it.each<[string, Token[]]>([
    ['a=="b"', [[Tok.Label, 'a'], [Tok.Eq], [Tok.String, 'b']]],
    ['label contains "value"', [[Tok.Label, 'label'], [Tok.Contains], [Tok.String, 'value']]],
    ['contains contains "contains"', [[Tok.Label, 'contains'], [Tok.Contains], [Tok.String, 'contains']]],
    ["contains contains 'contains'", [[Tok.Label, 'contains'], [Tok.Contains], [Tok.String, 'contains']]],
    ['label contains"value"', [[Tok.Label, 'label'], [Tok.Contains], [Tok.String, 'value']]],
    ['label startswith "v"', [[Tok.Label, 'label'], [Tok.StartsWith], [Tok.String, 'v']]],
    ['label endswith "v"', [[Tok.Label, 'label'], [Tok.EndsWith], [Tok.String, 'v']]],
    ['startswith starts with "v"', [[Tok.Label, 'startswith'], [Tok.StartsWith], [Tok.String, 'v']]],
    ['endswith ends \t with "v"', [[Tok.Label, 'endswith'], [Tok.EndsWith], [Tok.String, 'v']]],
    [
      'a not in "bar" && !has(foo) || b in c',
      [
        [Tok.Label, 'a'],
        [Tok.NotIn],
        [Tok.String, 'bar'],
        [Tok.And],
        [Tok.Not],
        [Tok.Has, 'foo'],
        [Tok.Or],
        [Tok.Label, 'b'],
        [Tok.In],
        [Tok.Label, 'c'],
      ],
    ],
    [
      'a notin"bar"&&!has(foo)||b in"c"',
      [
        [Tok.Label, 'a'],
        [Tok.NotIn],
        [Tok.String, 'bar'],
        [Tok.And],
        [Tok.Not],
        [Tok.Has, 'foo'],
        [Tok.Or],
        [Tok.Label, 'b'],
        [Tok.In],
        [Tok.String, 'c'],
      ],
    ],
    ['has(calico/k8s_NS-.1/role)', [[Tok.Has, 'calico/k8s_NS-.1/role']]],
    ['has(\t x )', [[Tok.Has, 'x']]],
    ['all( )', [[Tok.All]]],
    ['global(\t)', [[Tok.Global]]],
    ['a in{}', [[Tok.Label, 'a'], [Tok.In], [Tok.LBrace], [Tok.RBrace]]],
    ["a!='x'", [[Tok.Label, 'a'], [Tok.Ne], [Tok.String, 'x']]],
    ['!!a', [[Tok.Not], [Tok.Not], [Tok.Label, 'a']]],
    ['"it\'s" \'say "hi"\' ""', [[Tok.String, "it's"], [Tok.String, 'say "hi"'], [Tok.String]]],
    // Keywords are plain labels unless a label is just behind them.
    ['in in {', [[Tok.Label, 'in'], [Tok.In], [Tok.LBrace]]],
  ])('tokenizes %j', (text, expected) => {
    expect(tokenize(text)).toEqual(expected);
  });

  it.each<[string, number, string]>([
    ['label starts foo "value"', 6, 'expected operator after label "label"'],
    ['label ends foo "value"', 6, 'expected operator after label "label"'],
    ['label squiggles "value"', 6, 'expected operator after label "label"'],
    ['a inx {"x"}', 2, 'expected operator after label "a"'],
    ['a containsx "x"', 2, 'expected operator after label "a"'],
    ['has all()', 4, 'expected operator after label "has"'],
    ['a = "x"', 2, 'expected "==" but found a lone "="'],
    ['a == "x" & b', 9, 'expected "&&" but found a lone "&"'],
    ['a == "x" | b', 9, 'expected "||" but found a lone "|"'],
    ['a == "x', 5, 'unterminated string'],
    ['\'x"', 0, 'unterminated string'],
    ['has()', 4, 'expected label name inside has( but found ")"'],
    ['has(a b)', 6, 'expected ")" to close has('],
    ['all(x)', 4, 'expected ")" to close all('],
    ['global(', 7, 'expected ")" to close global('],
    [
      'a\n== "x"',
      1,
      'expected operator after label "a" but found "\\n" (only spaces and tabs may separate tokens)',
    ],
    ['a == "x" &&\nb == "y"', 11, 'unexpected character "\\n" (only spaces and tabs may separate tokens)'],
    ['é == "x"', 0, 'unexpected character "é"'],
  ])('rejects %j at %i', (text, position, reason) => {
    const err = catchParseError(() => tokenize(text));
    expect(err.position).toBe(position);
    expect(err.reason).toBe(reason);
  });

  it('accepts a 512-character label and rejects 513', () => {
    expect(tokenize(`has(${'x'.repeat(512)})`)).toEqual([[Tok.Has, 'x'.repeat(512)]]);
    const err = catchParseError(() => tokenize(`${'x'.repeat(513)} == "a"`));
    expect(err.position).toBe(0);
    expect(err.reason).toMatch(/513 characters long, the limit is 512/);
  });
});

function catchParseError(fn: () => unknown): SelectorParseError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SelectorParseError) return err;
    throw err;
  }
  throw new Error('expected a SelectorParseError');
}

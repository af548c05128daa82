import { SelectorParseError } from './selector-parse-error.ts';

/** Token kinds. Small integers so the parser's comparisons stay cheap on the hot path. */
export const Tok = {
  Eof: 0,
  Label: 1,
  String: 2,
  LBrace: 3,
  RBrace: 4,
  Comma: 5,
  Eq: 6,
  Ne: 7,
  In: 8,
  NotIn: 9,
  Contains: 10,
  StartsWith: 11,
  EndsWith: 12,
  Not: 13,
  And: 14,
  Or: 15,
  LParen: 16,
  RParen: 17,
  Has: 18,
  All: 19,
  Global: 20,
} as const;
export type TokKind = (typeof Tok)[keyof typeof Tok];

/** How each token reads in an error message. */
export const tokenDescriptions: Readonly<Record<TokKind, string>> = {
  [Tok.Eof]: 'end of selector',
  [Tok.Label]: 'label',
  [Tok.String]: 'string',
  [Tok.LBrace]: '"{"',
  [Tok.RBrace]: '"}"',
  [Tok.Comma]: '","',
  [Tok.Eq]: '"=="',
  [Tok.Ne]: '"!="',
  [Tok.In]: '"in"',
  [Tok.NotIn]: '"not in"',
  [Tok.Contains]: '"contains"',
  [Tok.StartsWith]: '"starts with"',
  [Tok.EndsWith]: '"ends with"',
  [Tok.Not]: '"!"',
  [Tok.And]: '"&&"',
  [Tok.Or]: '"||"',
  [Tok.LParen]: '"("',
  [Tok.RParen]: '")"',
  [Tok.Has]: 'has()',
  [Tok.All]: 'all()',
  [Tok.Global]: 'global()',
};

/** Calico's MaxLabelLength: a label name longer than this is an error, not two tokens. */
export const maxLabelLength = 512;

/** Operators recognised right after a label: kind, first word, optional second word. */
const operatorWords: readonly (readonly [TokKind, string, string | undefined])[] = [
  [Tok.Contains, 'contains', undefined],
  [Tok.StartsWith, 'starts', 'with'],
  [Tok.EndsWith, 'ends', 'with'],
  [Tok.NotIn, 'not', 'in'],
  [Tok.In, 'in', undefined],
];

const SPACE = 0x20;
const TAB = 0x09;

// Label names are `[A-Za-z0-9_./-]+`; a lookup table keeps the scan to one load per character.
const identifierChars = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  identifierChars[c] = /[A-Za-z0-9_./-]/.test(ch) ? 1 : 0;
}

function isIdentifierChar(code: number): boolean {
  return code < 128 && identifierChars[code] === 1;
}

/** True when `text` is a complete, valid label name (the only names a selector can refer to). */
export function isValidSelectorLabel(text: string): boolean {
  if (text.length === 0 || text.length > maxLabelLength) return false;
  for (let i = 0; i < text.length; i++) {
    if (!isIdentifierChar(text.charCodeAt(i))) return false;
  }
  return true;
}

/**
 * A pull lexer over one selector text. The language is context-sensitive in two places (Calico tokenizer):
 * operator words (`in`, `contains`, …) are only recognised right after a label, and `has(`/`all(`/`global(`
 * only where a label is not just behind us; so the lexer remembers whether the last token was a label.
 * The current token is exposed through mutable fields so that lexing allocates only the token texts.
 */
export class SelectorLexer {
  readonly input: string;
  /** Kind of the current token; read it through `peek()` from outside, see there. */
  kind: TokKind = Tok.Eof;
  /** Label name, string contents or has() label for the current token; '' otherwise. */
  value = '';
  /** Offset where the current token starts. */
  start = 0;
  private pos = 0;

  constructor(input: string) {
    this.input = input;
    this.next();
  }

  /**
   * Kind of the current token. A method rather than the field because TypeScript narrows a field across
   * `next()` calls, which change it.
   */
  peek(): TokKind {
    return this.kind;
  }

  /** Raise a parse error at `position`. */
  fail(reason: string, position: number): never {
    throw new SelectorParseError(reason, position, this.input);
  }

  /** Advance to the next token. */
  next(): void {
    const input = this.input;
    const labelBehind = this.kind === Tok.Label ? this.value : undefined;
    let pos = this.skipWhitespace(this.pos);
    this.start = pos;
    this.value = '';
    if (pos >= input.length) {
      this.kind = Tok.Eof;
      this.pos = pos;
      return;
    }
    const c = input.charCodeAt(pos);
    switch (c) {
      case 0x28 /* ( */:
        this.kind = Tok.LParen;
        pos++;
        break;
      case 0x29 /* ) */:
        this.kind = Tok.RParen;
        pos++;
        break;
      case 0x7b /* { */:
        this.kind = Tok.LBrace;
        pos++;
        break;
      case 0x7d /* } */:
        this.kind = Tok.RBrace;
        pos++;
        break;
      case 0x2c /* , */:
        this.kind = Tok.Comma;
        pos++;
        break;
      case 0x22 /* " */:
      case 0x27 /* ' */:
        {
          // No escapes: the string runs to the next quote of the same kind, so the other quote may appear inside.
          const close = input.indexOf(c === 0x22 ? '"' : "'", pos + 1);
          if (close < 0) this.fail('unterminated string', pos);
          this.kind = Tok.String;
          this.value = input.slice(pos + 1, close);
          pos = close + 1;
          break;
        }
      case 0x3d /* = */:
        if (input.charCodeAt(pos + 1) !== 0x3d) this.fail('expected "==" but found a lone "="', pos);
        this.kind = Tok.Eq;
        pos += 2;
        break;
      case 0x21 /* ! */:
        // "!=" wins over "!", so `a!='x'` is label, !=, string.
        if (input.charCodeAt(pos + 1) === 0x3d) {
          this.kind = Tok.Ne;
          pos += 2;
        } else {
          this.kind = Tok.Not;
          pos++;
        }
        break;
      case 0x26 /* & */:
        if (input.charCodeAt(pos + 1) !== 0x26) this.fail('expected "&&" but found a lone "&"', pos);
        this.kind = Tok.And;
        pos += 2;
        break;
      case 0x7c /* | */:
        if (input.charCodeAt(pos + 1) !== 0x7c) this.fail('expected "||" but found a lone "|"', pos);
        this.kind = Tok.Or;
        pos += 2;
        break;
      default:
        pos = labelBehind === undefined ? this.lexWord(pos) : this.lexOperator(pos, labelBehind);
    }
    this.pos = pos;
  }

  private skipWhitespace(pos: number): number {
    // Only space and TAB: CR/LF (e.g. from a YAML block scalar) are errors, as in Calico.
    const input = this.input;
    while (pos < input.length) {
      const c = input.charCodeAt(pos);
      if (c !== SPACE && c !== TAB) break;
      pos++;
    }
    return pos;
  }

  /** The offset just past `word` if the input has it at `pos`, else -1. */
  private cutWord(pos: number, word: string): number {
    return this.input.startsWith(word, pos) ? pos + word.length : -1;
  }

  /** Operator words must end at a word boundary: `a in{"x"}` is fine, `a inx {"x"}` is not. */
  private atWordBoundary(pos: number): boolean {
    return pos >= this.input.length || !isIdentifierChar(this.input.charCodeAt(pos));
  }

  /** Cut a multi-word operator; any run of spaces/TABs (including none) may separate the words. */
  private cutOperator(pos: number, first: string, second?: string): number {
    let end = this.cutWord(pos, first);
    if (end < 0) return -1;
    if (second !== undefined) {
      end = this.cutWord(this.skipWhitespace(end), second);
      if (end < 0) return -1;
    }
    return this.atWordBoundary(end) ? end : -1;
  }

  private lexOperator(pos: number, label: string): number {
    for (const [kind, first, second] of operatorWords) {
      const end = this.cutOperator(pos, first, second);
      if (end >= 0) {
        this.kind = kind;
        return end;
      }
    }
    const note = this.lineBreakNote(pos);
    const found = note === '' ? '' : ` but found ${JSON.stringify(this.input[pos])}${note}`;
    return this.fail(`expected operator after label "${label}"${found}`, pos);
  }

  private lexWord(pos: number): number {
    const afterHas = this.cutWord(pos, 'has(');
    if (afterHas >= 0) {
      // has(label): spaces allowed inside the parentheses but not before "(".
      const labelStart = this.skipWhitespace(afterHas);
      const labelEnd = this.cutIdentifier(labelStart, 'expected label name inside has(');
      this.kind = Tok.Has;
      this.value = this.input.slice(labelStart, labelEnd);
      return this.closeParen(labelEnd, 'has(');
    }
    const afterAll = this.cutWord(pos, 'all(');
    if (afterAll >= 0) {
      this.kind = Tok.All;
      return this.closeParen(afterAll, 'all(');
    }
    const afterGlobal = this.cutWord(pos, 'global(');
    if (afterGlobal >= 0) {
      this.kind = Tok.Global;
      return this.closeParen(afterGlobal, 'global(');
    }
    const end = this.cutIdentifier(pos, '');
    this.kind = Tok.Label;
    this.value = this.input.slice(pos, end);
    return end;
  }

  private closeParen(pos: number, opener: string): number {
    const at = this.skipWhitespace(pos);
    if (this.input.charCodeAt(at) !== 0x29) this.fail(`expected ")" to close ${opener}`, at);
    return at + 1;
  }

  private lineBreakNote(pos: number): string {
    // A line break usually comes from a YAML block scalar; say why it is not skipped like a space.
    const c = this.input.charCodeAt(pos);
    return c === 0x0a || c === 0x0d ? ' (only spaces and tabs may separate tokens)' : '';
  }

  /** Cut a label name at `pos`; `expected` names what was wanted there, '' for "any token". */
  private cutIdentifier(pos: number, expected: string): number {
    const input = this.input;
    let end = pos;
    while (end < input.length && isIdentifierChar(input.charCodeAt(end))) end++;
    if (end === pos) {
      if (pos >= input.length) this.fail(`${expected} but reached end of selector`, pos);
      const found = JSON.stringify(input[pos]) + this.lineBreakNote(pos);
      this.fail(expected === '' ? `unexpected character ${found}` : `${expected} but found ${found}`, pos);
    }
    if (end - pos > maxLabelLength) {
      this.fail(`label name is ${end - pos} characters long, the limit is ${maxLabelLength}`, pos);
    }
    return end;
  }
}

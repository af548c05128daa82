export type {
  AllNode,
  AndNode,
  GlobalNode,
  HasNode,
  LabelSetNode,
  LabelSetOperator,
  LabelValueNode,
  LabelValueOperator,
  NotNode,
  OrNode,
  SelectorNode,
} from './ast.ts';
export { compareUtf8, formatSelectorNode, selectorLabelKeys } from './ast.ts';
export { isValidSelectorLabel, maxLabelLength } from './lexer.ts';
export { maxSelectorNesting, parseSelectorNode } from './parser.ts';
export { type Labels, parseSelector, Selector, validateSelector } from './selector.ts';
export { isSelectorParseError, SelectorParseError } from './selector-parse-error.ts';

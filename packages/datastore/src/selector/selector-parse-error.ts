/**
 * A selector that is not valid Calico selector syntax. `position` is the 0-based character offset where the
 * problem was found (`selector.length` when the text ended too early), so tools can point at it.
 */
export class SelectorParseError extends Error {
  override readonly name = 'SelectorParseError';
  readonly code = 'SelectorParse' as const;
  /** What was wrong, without the position and selector text that `message` adds. */
  readonly reason: string;
  readonly position: number;
  readonly selector: string;

  constructor(reason: string, position: number, selector: string) {
    super(`${reason} at position ${position}: ${selector}`);
    this.reason = reason;
    this.position = position;
    this.selector = selector;
  }
}

/** True when `err` came from parsing a selector. */
export function isSelectorParseError(err: unknown): err is SelectorParseError {
  return err instanceof SelectorParseError;
}

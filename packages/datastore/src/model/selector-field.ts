/** Selector-valued fields, checked with the selector language's own parser. */
import { validateSelector } from '../selector/index.ts';
import { checkedString } from './field-types.ts';

export function selectorProblem(value: string): string | undefined {
  const err = validateSelector(value);
  return err === undefined ? undefined : `invalid selector: ${err}`;
}

/** Any selector field; where `global()` may appear is checked by the kinds that allow it. */
export const selectorString = () => checkedString(selectorProblem);

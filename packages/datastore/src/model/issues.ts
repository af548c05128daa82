/**
 * Turning zod's findings into our ValidationIssue list: one `{path, value, message}` per problem,
 * paths written the way users read them (`spec.ingress[0].destination.ports[1]`), messages that
 * say what was expected.
 */
import type { z } from 'zod';
import type { ValidationIssue } from '../resource.ts';

export type PathSegment = string | number;

/** Reports one problem at a path relative to the value being checked. */
export type Report = (path: readonly PathSegment[], value: unknown, message: string) => void;

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      // Keys that are not plain identifiers (label keys, CIDRs in IPAMHandle.block) stay readable.
      out += /^[A-Za-z_$][\w$]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg as string];
  }
  return cur;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

const EXPECTED_WORDS: Record<string, string> = {
  object: 'an object',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  record: 'a map',
};

/**
 * The error map handed to every parse: replaces zod's generic wording with ours. Issues that
 * carry their own message (our checks) keep it.
 */
export function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required';
      return `expected ${EXPECTED_WORDS[issue.expected] ?? issue.expected}, got ${describeType(issue.input)}`;
    case 'invalid_value':
      return `expected ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small': {
      const incl = issue.inclusive === false ? 'greater than' : 'at least';
      if (issue.origin === 'array') return `must have ${incl} ${issue.minimum} item(s)`;
      if (issue.origin === 'string') return `must have ${incl} ${issue.minimum} character(s)`;
      return `must be ${issue.inclusive === false ? '>' : '≥'} ${issue.minimum}`;
    }
    case 'too_big': {
      if (issue.origin === 'array') return `must have at most ${issue.maximum} item(s)`;
      if (issue.origin === 'string') return `must have at most ${issue.maximum} character(s)`;
      return `must be ${issue.inclusive === false ? '<' : '≤'} ${issue.maximum}`;
    }
    case 'invalid_union':
      return 'does not match any accepted form';
    case 'invalid_format':
      return `expected ${issue.format}`;
    default:
      return undefined;
  }
}

/** Flattens zod issues into ours, one per problem, with the offending value taken from `input`. */
export function toValidationIssues(issues: readonly z.core.$ZodIssue[], input: unknown): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        out.push({ path: formatPath(path), value: valueAt(input, path), message: 'unknown field' });
      }
      continue;
    }
    // Parses run with reportInput, so our own checks' issues carry the exact value they judged
    // (possibly a defaulted one); otherwise take it from the document.
    const value = 'input' in issue ? issue.input : valueAt(input, issue.path);
    out.push({ path: formatPath(issue.path), value, message: issue.message });
  }
  // The same finding reached twice (e.g. through a union's branches) is one problem to the user.
  const seen = new Set<string>();
  return out.filter((i) => {
    const key = `${i.path}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Adapts a zod refinement context to a Report. */
export function reporterFor(ctx: z.core.$RefinementCtx<unknown>): Report {
  return (path, value, message) => {
    ctx.addIssue({ code: 'custom', path: [...path], input: value, message });
  };
}

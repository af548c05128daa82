// PLACEHOLDER until the model lands: every kind is an untyped Resource and nothing is validated.
import type { KindName } from '../kinds.ts';
import type { Resource, ValidationResult } from '../resource.ts';

export type ResourceOf<_K extends KindName> = Resource;

export function validateResource(kind: KindName, input: unknown): ValidationResult<Resource> {
  void kind;
  return { ok: true, value: input as Resource };
}

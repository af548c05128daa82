/**
 * JSON Merge Patch (RFC 7396) and JSON Patch (RFC 6902) over plain JSON values. Pure: inputs are
 * never modified; a failed JSON Patch throws JsonPatchError and yields nothing (RFC 6902 §5: the
 * patch is applied atomically).
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export class JsonPatchError extends Error {
  override readonly name = 'JsonPatchError';
}

/** RFC 7396 §2: objects merge key by key, `null` removes a key, anything else replaces. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: { [key: string]: Json } = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: Json;
  from?: string;
}

/** Checks that `patch` is an RFC 6902 document (an array of operations) before applying it. */
export function parseJsonPatch(patch: Json): JsonPatchOperation[] {
  if (!Array.isArray(patch)) throw new JsonPatchError('a JSON patch must be an array of operations');
  return patch.map((op, i) => {
    if (!isObject(op)) throw new JsonPatchError(`operation ${i}: expected an object`);
    const kind = op['op'];
    if (!['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(kind as string)) {
      throw new JsonPatchError(`operation ${i}: unknown op ${JSON.stringify(kind)}`);
    }
    if (typeof op['path'] !== 'string') throw new JsonPatchError(`operation ${i}: "path" must be a string`);
    if ((kind === 'move' || kind === 'copy') && typeof op['from'] !== 'string') {
      throw new JsonPatchError(`operation ${i}: "${kind}" needs a "from" string`);
    }
    // RFC 6902 §4.1/4.3/4.6: add, replace and test need a value (which may be null).
    if ((kind === 'add' || kind === 'replace' || kind === 'test') && !('value' in op)) {
      throw new JsonPatchError(`operation ${i}: "${kind}" needs a "value"`);
    }
    return op as unknown as JsonPatchOperation;
  });
}

export function applyJsonPatch(target: Json, operations: readonly JsonPatchOperation[]): Json {
  let doc = structuredClone(target);
  operations.forEach((op, i) => {
    try {
      doc = applyOperation(doc, op);
    } catch (err) {
      throw new JsonPatchError(`operation ${i} (${op.op} ${op.path}): ${(err as Error).message}`);
    }
  });
  return doc;
}

function applyOperation(doc: Json, op: JsonPatchOperation): Json {
  switch (op.op) {
    case 'add':
      return add(doc, parsePointer(op.path), structuredClone(op.value as Json));
    case 'remove':
      return remove(doc, parsePointer(op.path)).doc;
    case 'replace': {
      const path = parsePointer(op.path);
      get(doc, path); // must exist (§4.3)
      return add(remove(doc, path).doc, path, structuredClone(op.value as Json));
    }
    case 'move': {
      const from = parsePointer(op.from!);
      const path = parsePointer(op.path);
      // §4.4: a location cannot be moved into one of its children.
      if (path.length > from.length && from.every((t, i) => path[i] === t)) {
        throw new Error('cannot move a value into one of its own children');
      }
      const removed = remove(doc, from);
      return add(removed.doc, path, removed.value);
    }
    case 'copy':
      return add(doc, parsePointer(op.path), structuredClone(get(doc, parsePointer(op.from!))));
    case 'test':
      if (!deepEqual(get(doc, parsePointer(op.path)), op.value as Json)) {
        throw new Error(`value is not ${JSON.stringify(op.value)}`);
      }
      return doc;
  }
}

/** RFC 6901: `/a/b~1c/0` → ['a', 'b/c', '0']. */
function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`"${pointer}" is not a JSON pointer (must start with /)`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function get(doc: Json, path: readonly string[]): Json {
  let cur: Json = doc;
  for (const token of path) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, token, false)]!;
    else if (isObject(cur) && Object.hasOwn(cur, token)) cur = cur[token]!;
    else throw new Error(`path not found at "${token}"`);
  }
  return cur;
}

function add(doc: Json, path: readonly string[], value: Json): Json {
  if (path.length === 0) return value;
  const parent = get(doc, path.slice(0, -1));
  const last = path.at(-1)!;
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : arrayIndex(parent, last, true);
    parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    parent[last] = value;
  } else {
    throw new Error(`cannot add "${last}" to a ${typeof parent} value`);
  }
  return doc;
}

function remove(doc: Json, path: readonly string[]): { doc: Json; value: Json } {
  if (path.length === 0) throw new Error('cannot remove the whole document');
  const parent = get(doc, path.slice(0, -1));
  const last = path.at(-1)!;
  if (Array.isArray(parent)) {
    const [value] = parent.splice(arrayIndex(parent, last, false), 1);
    return { doc, value: value! };
  }
  if (isObject(parent) && Object.hasOwn(parent, last)) {
    const value = parent[last]!;
    delete parent[last];
    return { doc, value };
  }
  throw new Error(`path not found at "${last}"`);
}

function arrayIndex(arr: readonly Json[], token: string, forInsert: boolean): number {
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new Error(`"${token}" is not an array index`);
  const i = Number(token);
  if (i > arr.length || (!forInsert && i === arr.length)) throw new Error(`index ${i} is out of bounds`);
  return i;
}

function isObject(v: unknown): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a))
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]!));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return (
      ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k]!, b[k]!))
    );
  }
  return false;
}

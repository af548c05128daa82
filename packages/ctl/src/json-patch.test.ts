import { describe, expect, it } from 'vitest';
import { applyJsonPatch, applyMergePatch, type Json, parseJsonPatch } from './json-patch.ts';

describe('JSON Merge Patch (RFC 7396)', () => {
  // RFC 7396 Appendix A, one row each.
  const cases: [Json, Json, Json][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(cases)('%j + %j = %j', (target, patch, result) => {
    const before = structuredClone(target);
    expect(applyMergePatch(target, patch)).toEqual(result);
    expect(target).toEqual(before);
  });
});

describe('JSON Patch (RFC 6902)', () => {
  const apply = (doc: Json, ops: Json) => applyJsonPatch(doc, parseJsonPatch(ops));

  it('adds object members and array elements, appending with -', () => {
    expect(apply({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }])).toEqual({
      foo: 'bar',
      baz: 'qux',
    });
    expect(apply({ foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }])).toEqual({
      foo: ['bar', 'qux', 'baz'],
    });
    expect(apply({ foo: [1] }, [{ op: 'add', path: '/foo/-', value: [2] }])).toEqual({ foo: [1, [2]] });
  });

  it('removes, replaces, moves and copies', () => {
    expect(apply({ baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }])).toEqual({ foo: 'bar' });
    expect(apply({ foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }])).toEqual({
      foo: ['bar', 'baz'],
    });
    expect(apply({ baz: 'qux' }, [{ op: 'replace', path: '/baz', value: 'boo' }])).toEqual({ baz: 'boo' });
    expect(
      apply({ foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [
        { op: 'move', from: '/foo/waldo', path: '/qux/thud' },
      ]),
    ).toEqual({ foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } });
    expect(
      apply({ foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }]),
    ).toEqual({
      foo: ['all', 'cows', 'eat', 'grass'],
    });
    expect(apply({ a: { b: 1 } }, [{ op: 'copy', from: '/a', path: '/c' }])).toEqual({
      a: { b: 1 },
      c: { b: 1 },
    });
  });

  it('unescapes ~1 and ~0 in pointers (RFC 6901)', () => {
    expect(
      apply({ labels: { 'a/b': '1', 'c~d': '2' } }, [
        { op: 'remove', path: '/labels/a~1b' },
        { op: 'replace', path: '/labels/c~0d', value: '3' },
      ]),
    ).toEqual({ labels: { 'c~d': '3' } });
  });

  it('tests values deeply, and a failed test fails the whole patch', () => {
    expect(
      apply({ baz: 'qux', foo: ['a', 2, 'c'] }, [
        { op: 'test', path: '/baz', value: 'qux' },
        { op: 'test', path: '/foo', value: ['a', 2, 'c'] },
      ]),
    ).toEqual({ baz: 'qux', foo: ['a', 2, 'c'] });
    const doc = { baz: 'qux' };
    expect(() =>
      apply(doc, [
        { op: 'add', path: '/x', value: 1 },
        { op: 'test', path: '/baz', value: 'bar' },
      ]),
    ).toThrow('operation 1 (test /baz): value is not "bar"');
    expect(doc).toEqual({ baz: 'qux' });
  });

  it('refuses targets that do not exist and malformed operations', () => {
    expect(() => apply({ foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }])).toThrow(
      'path not found',
    );
    expect(() => apply({ foo: 'bar' }, [{ op: 'replace', path: '/nope', value: 1 }])).toThrow(
      'path not found',
    );
    expect(() => apply({ a: [1] }, [{ op: 'add', path: '/a/5', value: 1 }])).toThrow('out of bounds');
    expect(() => apply({ a: { b: {} } }, [{ op: 'move', from: '/a', path: '/a/b/c' }])).toThrow(
      'own children',
    );
    expect(() => apply({}, [{ op: 'add', path: 'x', value: 1 }])).toThrow('not a JSON pointer');
    expect(() => parseJsonPatch({ op: 'add' })).toThrow('must be an array');
    expect(() => parseJsonPatch([{ op: 'frob', path: '/' }])).toThrow('unknown op "frob"');
    expect(() => parseJsonPatch([{ op: 'add', path: '/a' }])).toThrow('"add" needs a "value"');
    expect(() => parseJsonPatch([{ op: 'move', path: '/a' }])).toThrow('needs a "from"');
  });
});

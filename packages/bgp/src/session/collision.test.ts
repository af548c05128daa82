import { expect, it } from 'vitest';
import { resolveCollision } from './session.ts';

it('keeps the connection opened by the higher BGP Identifier (RFC 4271 §6.8)', () => {
  // We are higher: our outgoing connection survives, the peer's new inbound one is refused.
  expect(resolveCollision('192.0.2.9', '192.0.2.1', true)).toBe('keep-existing');
  // The peer is higher and already owns the existing connection: keep it.
  expect(resolveCollision('192.0.2.1', '192.0.2.9', false)).toBe('keep-existing');
  // The peer is higher: its new inbound connection replaces our outgoing one.
  expect(resolveCollision('192.0.2.1', '192.0.2.9', true)).toBe('take-new');
  // Numeric, not textual, comparison: 10.0.0.2 < 9.0.0.1 as text but not as a number.
  expect(resolveCollision('10.0.0.2', '9.0.0.1', true)).toBe('keep-existing');
});

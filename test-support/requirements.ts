/**
 * Integration tests need root and real tools. Where they are missing a test is skipped loudly,
 * naming what is missing — except in CI (CI=true), where a missing requirement is a failure,
 * because CI must run every test.
 */
import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';

export interface Requirement {
  ok: boolean;
  reason: string;
}

export function root(): Requirement {
  const ok = process.getuid?.() === 0;
  return { ok, reason: 'needs root (network namespaces, netlink, iptables)' };
}

/** A command on PATH (or an absolute path). */
export function command(name: string): Requirement {
  try {
    execFileSync('sh', ['-c', `command -v ${JSON.stringify(name)}`], { stdio: 'ignore' });
    return { ok: true, reason: '' };
  } catch {
    return { ok: false, reason: `needs ${name} on PATH (scripts/ensure-env.sh installs it)` };
  }
}

/**
 * describe() that runs only when every requirement holds. Otherwise it prints why and skips, or,
 * under CI=true, registers a failing test so the gap cannot pass unnoticed.
 */
export function describeWith(requirements: Requirement[], name: string, body: () => void): void {
  const missing = requirements.filter((r) => !r.ok).map((r) => r.reason);
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const why = missing.join('; ');
  if (process.env['CI'] === 'true') {
    describe(name, () => {
      it(`requirements: ${why}`, () => {
        throw new Error(`CI must run "${name}" but ${why}`);
      });
    });
    return;
  }
  console.warn(`SKIPPED "${name}": ${why}`);
  describe.skip(name, body);
}

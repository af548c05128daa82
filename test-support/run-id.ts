import { randomBytes } from 'node:crypto';

/**
 * A short prefix unique to one test run, for every kernel object and process name a test makes
 * (network namespaces, interfaces, iptables chains). Interface names are at most 15 bytes, so
 * keep prefixes short: 'ct' + 4 hex = 6 characters.
 */
export function runPrefix(tag = 'ct'): string {
  return `${tag}${randomBytes(2).toString('hex')}`;
}

import { isDatastoreError } from '@calico-ts/datastore';

/**
 * A failure the CLI reports to the user as-is: its message goes to stderr (no stack) and the
 * process exits with `exitCode` (1, like calicoctl, for every failure).
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * The message a user sees for an error that escaped a command. Datastore errors already carry
 * actionable text (`cannot reach etcd at …`, `IPPool p not found`); anything else is reported by
 * its message, one line, because a stack trace tells an operator nothing they can act on.
 */
export function userMessage(err: unknown): string {
  if (err instanceof CliError) return err.message;
  if (isDatastoreError(err)) {
    // Unavailable errors are about the connection: keep them to one line.
    return err.code === 'Unavailable' ? firstLine(err.message) : err.message;
  }
  if (err instanceof Error) return firstLine(err.message) || err.name;
  return String(err);
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0]!.trim();
}

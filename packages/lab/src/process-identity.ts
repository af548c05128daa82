/**
 * Telling a recorded pid from a later process that reuses it: a process's start time
 * (/proc/<pid>/stat field 22, in clock ticks since boot) never changes, so a pid plus its start
 * time names one process. Signalling a recorded pid is safe only while both still match.
 */
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** /proc/<pid>/stat starttime; undefined when the process was already gone when recorded. */
  start: number | undefined;
}

/** The start time of a running process, undefined if there is none with this pid. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // proc(5): the command (field 2) is in parentheses and may itself hold spaces and ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

export const identify = (pid: number): ProcessIdentity => ({ pid, start: processStartTime(pid) });

/** Whether the process recorded as `id` still runs (same pid, same start time). */
export function stillRunning(id: ProcessIdentity): boolean {
  return id.start !== undefined && processStartTime(id.pid) === id.start;
}

/** Sends `signal` only to the process recorded, never to a later one with the same pid. */
export function signalIfSame(id: ProcessIdentity, signal: NodeJS.Signals): boolean {
  if (!stillRunning(id)) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch {
    return false;
  }
}

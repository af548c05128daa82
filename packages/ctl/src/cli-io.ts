/**
 * Everything the CLI touches outside itself: output streams, stdin, environment and working
 * directory. Commands write only through this, so `run()` can be driven in-process by tests.
 */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The whole of standard input (for `-f -`). */
  readStdin(): Promise<string>;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

export function processIo(): CliIo {
  // A reader that goes away (`calico get … | head`) is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    env: process.env,
    cwd: process.cwd(),
  };
}

/** An in-memory CliIo that records what was written; for tests and embedding. */
export interface CapturedIo extends CliIo {
  readonly out: string;
  readonly err: string;
}

export function captureIo(
  options: { stdin?: string; env?: Record<string, string>; cwd?: string } = {},
): CapturedIo {
  let out = '';
  let err = '';
  return {
    stdout: (text) => {
      out += text;
    },
    stderr: (text) => {
      err += text;
    },
    readStdin: async () => options.stdin ?? '',
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}

/** calicoctl's levels (logrus), most to least verbose. Default `panic`: only our own messages. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'warning', 'error', 'fatal', 'panic'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface CliLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

const RANK: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  warning: 3,
  error: 4,
  fatal: 5,
  panic: 6,
};

/** Diagnostics on stderr at or above `level`. */
export function cliLog(io: CliIo, level: LogLevel): CliLog {
  const at = (l: LogLevel, tag: string) => (message: string) => {
    if (RANK[l] >= RANK[level]) io.stderr(`${tag} ${message}\n`);
  };
  return { debug: at('debug', '[DEBUG]'), info: at('info', '[INFO]'), warn: at('warn', '[WARN]') };
}

import { type Logger, pino } from 'pino';

/** The package logger; a host (calico-node) passes its own child logger to Felix instead. */
export const defaultLogger: Logger = pino({
  name: '@calico-ts/felix',
  level: process.env['CALICO_LOG_LEVEL'] ?? 'warn',
});

export type { Logger };

import { type Logger, pino } from 'pino';

/** The package logger; CALICO_LOG_LEVEL raises or lowers it, IpamOptions.logger replaces it. */
export const defaultLogger: Logger = pino({
  name: '@calico-ts/ipam',
  level: process.env['CALICO_LOG_LEVEL'] ?? 'warn',
});

export type { Logger };

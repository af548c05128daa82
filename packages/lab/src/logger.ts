import { pino } from 'pino';

/** The package logger; callers may replace the level with CALICO_LOG_LEVEL. */
export const logger = pino({
  name: '@calico-ts/lab',
  level: process.env['CALICO_LOG_LEVEL'] ?? 'warn',
});

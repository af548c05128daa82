import { Command } from 'commander';
import { clientVersion } from '../client-version.ts';
import type { CommandContext } from '../command-context.ts';

export function versionCommand(ctx: CommandContext): Command {
  return new Command('version')
    .summary('Print the client version')
    .option('--client', 'print only the client version (the default)')
    .action(() => {
      ctx.io.stdout(`Client Version:    v${clientVersion()}\n`);
    });
}

import { Command } from 'commander';
import type { CommandContext } from '../command-context.ts';
import { nodeCheckSystemCommand } from './node-checksystem.ts';
import { nodeDiagsCommand } from './node-diags.ts';
import { nodeStatusCommand } from './node-status.ts';

/** `calico node`: status, diags and checksystem, as calicoctl's node commands. */
export function nodeCommand(ctx: CommandContext): Command {
  const node = new Command('node').summary('Inspect this node’s calico-node');
  for (const cmd of [nodeStatusCommand(ctx), nodeDiagsCommand(ctx), nodeCheckSystemCommand(ctx)]) {
    node.addCommand(cmd);
  }
  return node;
}

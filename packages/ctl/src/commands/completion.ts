/**
 * `calico completion bash|zsh`: a shell completion script generated from the program's own
 * command tree, so every command, subcommand and option the CLI has is offered, and the KIND
 * argument of the resource verbs completes to kind names. zsh uses the same function through
 * bashcompinit.
 */
import { KIND_NAMES, KINDS } from '@calico-ts/datastore';
import { Command, type Option } from 'commander';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';

/** Verbs whose first argument is a resource kind. */
const KIND_VERBS = new Set(['get', 'delete', 'label', 'patch']);

function optionWords(options: readonly Option[]): string[] {
  return options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined));
}

/** Every command path (space-separated, '' for the program) and the words to offer after it. */
function completionTable(program: Command): Map<string, string[]> {
  const table = new Map<string, string[]>();
  const kinds = KIND_NAMES.filter((k) => k !== 'KubernetesNetworkPolicy').map((k) => KINDS[k].plural);
  const visit = (cmd: Command, path: string) => {
    const words = [
      ...cmd.commands.map((c) => c.name()),
      ...(KIND_VERBS.has(path) ? kinds : []),
      ...optionWords(cmd.options),
      '--help',
    ];
    table.set(path, [...new Set(words)]);
    for (const sub of cmd.commands) visit(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  visit(program, '');
  return table;
}

function shellWord(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

export function bashCompletion(program: Command): string {
  const table = completionTable(program);
  const paths = [...table.keys()].filter((p) => p !== '');
  const cases = [...table]
    .map(([path, words]) => `    ${shellWord(path)}) words=${shellWord(words.join(' '))} ;;`)
    .join('\n');
  return `# calico shell completion (bash; zsh loads it through bashcompinit)
_calico_completions() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w next words=""
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    [[ $w == -* ]] && continue
    next="\${path:+$path }$w"
    case "$next" in
      ${paths.map(shellWord).join('|')}) path="$next" ;;
    esac
  done
  case "$path" in
${cases}
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -o default -F _calico_completions calico
`;
}

export function completionCommand(ctx: CommandContext): Command {
  return new Command('completion')
    .summary('Print a shell completion script (bash or zsh)')
    .argument('<SHELL>', 'bash or zsh')
    .addHelpText(
      'after',
      '\nExamples:\n  source <(calico completion bash)\n  calico completion zsh > ~/.zfunc/_calico\n',
    )
    .action((shell: string, _opts: unknown, cmd: Command) => {
      const program = cmd.parent;
      if (!program) throw new CliError('completion must run under the calico program');
      if (shell === 'bash') ctx.io.stdout(bashCompletion(program));
      else if (shell === 'zsh') {
        ctx.io.stdout(
          `#compdef calico\nautoload -U +X bashcompinit && bashcompinit\n${bashCompletion(program)}`,
        );
      } else throw new CliError(`unsupported shell ${JSON.stringify(shell)}: expected bash or zsh`);
    });
}

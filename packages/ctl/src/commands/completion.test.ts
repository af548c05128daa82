import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../cli.ts';
import { captureIo } from '../cli-io.ts';

const dir = mkdtempSync(join(tmpdir(), 'calico-completion-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function calico(...args: string[]) {
  const io = captureIo();
  const code = await run(args, io);
  return { code, out: io.out, err: io.err };
}

// A bash driver: sources the script, sets the words as bash would and prints the candidates.
const DRIVER =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a JS template
  'source "$1"; read -ra COMP_WORDS <<< "$2"; [[ $2 == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _calico_completions; printf "%s\\n" "${COMPREPLY[@]}"';

/** What bash offers after `line` (the last word is the one being completed). */
function complete(script: string, line: string): string[] {
  const out = execFileSync('bash', ['-c', DRIVER, 'complete', script, line], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

describe('calico completion', () => {
  it('completes commands, subcommands, options and kinds in bash', async () => {
    const r = await calico('completion', 'bash');
    expect(r.code).toBe(0);
    const script = join(dir, 'calico.bash');
    writeFileSync(script, r.out);
    expect(complete(script, 'calico ipam s')).toEqual(['show']);
    expect(complete(script, 'calico ipam ')).toEqual(['show', 'check', 'release', 'configure', '--help']);
    expect(complete(script, 'calico ipam show --show-b')).toEqual(['--show-blocks', '--show-borrowed']);
    expect(complete(script, 'calico get ippo')).toEqual(['ippools']);
    expect(complete(script, 'calico --etcd-endpoints x conv')).toEqual(['convert']);
    expect(complete(script, 'calico create --skip')).toEqual(['--skip-exists', '--skip-empty']);
  });

  it('prints the same function for zsh through bashcompinit, and refuses other shells', async () => {
    const zsh = await calico('completion', 'zsh');
    expect(zsh.out).toMatch(/^#compdef calico\nautoload -U \+X bashcompinit && bashcompinit\n/);
    expect(zsh.out).toContain('complete -o default -F _calico_completions calico');
    expect(await calico('completion', 'fish')).toEqual({
      code: 1,
      out: '',
      err: 'unsupported shell "fish": expected bash or zsh\n',
    });
  });
});

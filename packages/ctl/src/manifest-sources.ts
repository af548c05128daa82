import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CliError } from './cli-error.ts';
import type { CliIo } from './cli-io.ts';

/** One input named by `-f`: a file's text, or stdin's. */
export interface ManifestSource {
  /** What messages call it: the path as given (or found under a directory), or `<stdin>`. */
  name: string;
  text: string;
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/**
 * Reads `-f FILE|DIR|-`. A directory yields its .yaml/.yml/.json files in name order (calicoctl's
 * rule), descending into subdirectories only with `recursive`.
 */
export async function readManifestSources(
  io: CliIo,
  filename: string,
  options: { recursive?: boolean } = {},
): Promise<ManifestSource[]> {
  if (filename === '-') return [{ name: '<stdin>', text: await io.readStdin() }];
  const path = resolve(io.cwd, filename);
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new CliError(
      err.code === 'ENOENT' ? `${filename}: no such file or directory` : `${filename}: ${err.message}`,
    );
  });
  if (!info.isDirectory()) return [{ name: filename, text: await readText(path, filename) }];
  const files = await manifestFilesIn(path, filename, options.recursive ?? false);
  return Promise.all(files.map(async (f) => ({ name: f.name, text: await readText(f.path, f.name) })));
}

async function manifestFilesIn(
  dir: string,
  shown: string,
  recursive: boolean,
): Promise<{ path: string; name: string }[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const out: { path: string; name: string }[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    const name = join(shown, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...(await manifestFilesIn(path, name, true)));
    } else if (MANIFEST_EXTENSIONS.some((ext) => e.name.endsWith(ext))) {
      out.push({ path, name });
    }
  }
  return out;
}

async function readText(path: string, shown: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(`${shown}: ${(err as Error).message}`);
  }
}

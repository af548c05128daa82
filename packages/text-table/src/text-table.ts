/**
 * The CLI's one table renderer, in the two layouts calicoctl prints: Go's tabwriter as `calicoctl
 * get` configures it (no borders) and tablewriter's bordered grid (`calicoctl node status`,
 * `calicoctl ipam show`). Columns are sized by the width a terminal gives each cell, not by UTF-16
 * length, so names with wide (CJK, emoji) or combining characters still line up.
 */

/** Combining marks and zero-width format characters take no column. */
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\u2060\ufeff]$/u;
/** East Asian Wide and Fullwidth ranges, and pictographs shown as emoji, take two columns. */
const WIDE =
  /^[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{20000}-\u{3fffd}\p{Emoji_Presentation}]$/u;

/** The number of terminal columns `text` occupies. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    if (ZERO_WIDTH.test(ch)) continue;
    width += WIDE.test(ch) ? 2 : 1;
  }
  return width;
}

const padRight = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - displayWidth(text)));

function centre(text: string, width: number): string {
  const room = Math.max(0, width - displayWidth(text));
  const left = Math.floor(room / 2);
  return `${' '.repeat(left)}${text}${' '.repeat(room - left)}`;
}

/** Each column's width: its widest cell. */
function columnWidths(rows: readonly (readonly string[])[]): number[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, displayWidth(cell));
  }
  return widths;
}

/**
 * Go's tabwriter as calicoctl sets it up (minwidth 5, padding 3, spaces): every column but the
 * last is as wide as its widest cell plus three, and at least five; the last is not padded.
 */
export function tabwriterTable(rows: readonly (readonly string[])[]): string {
  const widths = columnWidths(rows).map((w) => Math.max(5, w + 3));
  return rows
    .map((row) => row.map((cell, i) => (i < row.length - 1 ? padRight(cell, widths[i]!) : cell)).join(''))
    .map((line) => `${line}\n`)
    .join('');
}

const padLeft = (text: string, width: number) => ' '.repeat(Math.max(0, width - displayWidth(text))) + text;

/** tablewriter's default alignment puts numbers (`65536`, `1,024`, `2.5`, `-3`, `12%`) on the right. */
const NUMBER = /^-?(?:\d{1,3}(?:,\d{3})*|\d+)(?:\.\d+)?%?$/;
const alignCell = (text: string, width: number) =>
  NUMBER.test(text.trim()) ? padLeft(text, width) : padRight(text, width);

/**
 * tablewriter's grid as calicoctl prints it: `+`/`-`/`|` borders, headers centred, numbers
 * right-aligned and other cells left-aligned, one space of padding each side.
 */
export function borderedTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = columnWidths([headers, ...rows]);
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: readonly string[], pad: (s: string, w: number) => string) =>
    `| ${widths.map((w, i) => pad(cells[i] ?? '', w)).join(' | ')} |`;
  return [rule, line(headers, centre), rule, ...rows.map((r) => line(r, alignCell)), rule, ''].join('\n');
}

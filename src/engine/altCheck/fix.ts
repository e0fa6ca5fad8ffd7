/**
 * `pali alt-text --fix`: alt text written by the model for the findings a check found. The model is behind a
 * `describe` callback, so this file only decides which images to describe, builds the edits with the same
 * escaping as the extension's quick fixes, and writes files that did not change since they were read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { setAltTextEdits, type TextEdit } from '../../common/altText/altEdits.js';
import { decodeURIComponentSafe } from '../../common/altText/altRules.js';
import type { FileFindings } from './findings.js';

export interface FileFix {
  file: string;
  displayPath: string;
  before: string;
  after: string;
  fixed: number;
}

export interface FixPlan {
  fixes: FileFix[];
  /** Findings left as they are, with the reason: "path:line:col: reason". */
  skipped: string[];
}

/** The image file an address points at, or why none: remote and data: images are not fetched here. */
export function localImagePath(src: string | undefined, documentFile: string, root: string): string | { reason: string } {
  if (!src) return { reason: 'no image address' };
  if (/^[a-z][a-z0-9+.-]*:/i.test(src) && !/^file:/i.test(src)) return { reason: `not a local file (${src.split(':')[0]}:)` };
  const address = decodeURIComponentSafe(src.replace(/^file:\/\//i, '').split(/[?#]/)[0]!);
  // A site-absolute address (/img/logo.png) is taken from the checked folder, as static-site generators do.
  const file = address.startsWith('/') && !fs.existsSync(address) ? path.join(root, address) : path.resolve(path.dirname(documentFile), address);
  return fs.existsSync(file) ? file : { reason: `image not found: ${path.relative(root, file) || file}` };
}

/**
 * Describes each distinct image once and builds the edited texts. `alt-empty` findings are left alone: an
 * empty alt may be decorative on purpose, which only the author can tell.
 */
export async function planFixes(
  files: FileFindings[],
  root: string,
  describe: (imageFile: string) => Promise<string>,
  onProgress?: (done: number, total: number) => void,
): Promise<FixPlan> {
  const skipped: string[] = [];
  const wanted: { file: FileFindings; index: number; image: string }[] = [];
  for (const file of files) {
    file.findings.forEach(({ finding, reference }, index) => {
      const where = `${finding.path}:${finding.line}:${finding.column}`;
      if (finding.ruleId === 'alt-empty') return skipped.push(`${where}: empty alt left as it is: describe the image or mark it decorative`);
      if (reference.alt.kind === 'dynamic') return;
      const image = localImagePath(reference.src, file.source.file, root);
      if (typeof image !== 'string') return skipped.push(`${where}: ${image.reason}`);
      wanted.push({ file, index, image });
    });
  }
  const captions = new Map<string, string>();
  const distinct = [...new Set(wanted.map((w) => w.image))];
  for (const [i, image] of distinct.entries()) {
    onProgress?.(i, distinct.length);
    captions.set(image, await describe(image));
  }
  if (distinct.length) onProgress?.(distinct.length, distinct.length);

  const fixes: FileFix[] = [];
  for (const file of files) {
    const edits: TextEdit[] = [];
    let fixed = 0;
    for (const { index, image } of wanted.filter((w) => w.file === file)) {
      const caption = captions.get(image)!;
      const { finding, reference } = file.findings[index]!;
      if (!caption) {
        skipped.push(`${finding.path}:${finding.line}:${finding.column}: the model gave no text for ${reference.src}`);
        continue;
      }
      edits.push(...setAltTextEdits(reference, caption, file.text));
      fixed++;
    }
    if (!edits.length) continue;
    let after = file.text;
    for (const edit of edits.sort((a, b) => b.start - a.start)) after = after.slice(0, edit.start) + edit.newText + after.slice(edit.end);
    fixes.push({ file: file.source.file, displayPath: file.findings[0]!.finding.path, before: file.text, after, fixed });
  }
  return { fixes, skipped };
}

export function unifiedDiff(fixes: FileFix[]): string {
  return fixes.map((f) => createTwoFilesPatch(`a/${f.displayPath}`, `b/${f.displayPath}`, f.before, f.after, undefined, undefined, { context: 1 })
    .replace(/^=+\n/m, '')
    .replace(/^Index: .*\n/m, '')).join('');
}

/**
 * Writes each fix unless its file changed since it was read (an editor saved it meanwhile): such files are
 * returned, untouched. Each file is replaced in one rename, so a crash never leaves half a file.
 */
export function writeFixes(fixes: FileFix[]): { written: FileFix[]; changed: FileFix[] } {
  const written: FileFix[] = [];
  const changed: FileFix[] = [];
  for (const fix of fixes) {
    if (fs.readFileSync(fix.file, 'utf8') !== fix.before) {
      changed.push(fix);
      continue;
    }
    const temporary = `${fix.file}.pali-${process.pid}.tmp`;
    fs.writeFileSync(temporary, fix.after, { mode: fs.statSync(fix.file).mode });
    fs.renameSync(temporary, fix.file);
    written.push(fix);
  }
  return { written, changed };
}

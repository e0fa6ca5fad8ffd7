/**
 * Findings of `pali alt-text --check`: the extension's own alt-text rules (common/altText/altRules.ts) run
 * over files, with 1-based line and column positions where the image element starts, as linters print them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkAltText, type AltProblemCode } from '../../common/altText/altRules.js';
import { findImageReferences } from '../../common/altText/findReferences.js';
import type { ImageReference } from '../../common/altText/types.js';
import { findSourceFiles, type SourceFile } from './sourceFiles.js';

export interface AltFinding {
  /** Relative to the working folder, with forward slashes. */
  path: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  ruleId: AltProblemCode;
  message: string;
  /** The image's address as written, when it has one. */
  src?: string;
}

export interface FileFindings {
  source: SourceFile;
  text: string;
  findings: { finding: AltFinding; reference: ImageReference }[];
}

export const RULE_DESCRIPTIONS: Record<AltProblemCode, string> = {
  'alt-missing': 'Images need alt text: screen readers read the file name or nothing without it.',
  'alt-empty': 'An empty alt hides an image from screen readers; describe it, or mark it decorative with role="presentation".',
  'alt-placeholder': 'Alt text such as "image", "screenshot" or the file name says nothing about the image.',
};

function shortMessage(code: AltProblemCode, reference: ImageReference): string {
  switch (code) {
    case 'alt-missing':
      return reference.alt.kind === 'literal' && (reference.tag === 'input' || reference.tag === 'area') ? 'empty alt text on a control' : 'missing alt text';
    case 'alt-empty':
      return 'empty alt text: describe the image, or mark it decorative with role="presentation"';
    case 'alt-placeholder':
      return `placeholder alt text "${reference.alt.kind === 'literal' ? reference.alt.value.trim() : ''}"`;
  }
}

/** 1-based line and column of each UTF-16 offset, from one pass over the line starts. */
function positionOf(lineStarts: number[], offset: number): { line: number; column: number } {
  let low = 0;
  let high = lineStarts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (lineStarts[middle]! <= offset) low = middle;
    else high = middle - 1;
  }
  return { line: low + 1, column: offset - lineStarts[low]! + 1 };
}

export function checkText(text: string, languageId: string, displayPath: string, fileName?: string): FileFindings['findings'] {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1);
  const findings: FileFindings['findings'] = [];
  for (const reference of findImageReferences(text, languageId, fileName)) {
    const problem = checkAltText(reference);
    if (!problem) continue;
    const start = positionOf(lineStarts, reference.range.start);
    const end = positionOf(lineStarts, reference.range.end);
    findings.push({
      reference,
      finding: {
        path: displayPath,
        line: start.line,
        column: start.column,
        endLine: end.line,
        endColumn: end.column,
        ruleId: problem.code,
        message: shortMessage(problem.code, reference),
        ...(reference.src !== undefined ? { src: reference.src } : {}),
      },
    });
  }
  return findings;
}

export function displayPathOf(file: string, cwd: string): string {
  return path.relative(cwd, file).split(path.sep).join('/') || path.basename(file);
}

/** Checks every file under `paths`; files that cannot be read or parsed are reported in `unreadable`. */
export function checkPaths(paths: string[], cwd = process.cwd()): { files: FileFindings[]; unreadable: string[] } {
  const files: FileFindings[] = [];
  const unreadable: string[] = [];
  for (const source of findSourceFiles(paths, cwd)) {
    const displayPath = displayPathOf(source.file, cwd);
    let text: string;
    try {
      text = fs.readFileSync(source.file, 'utf8');
    } catch (error) {
      unreadable.push(`${displayPath}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      continue;
    }
    files.push({ source, text, findings: checkText(text, source.languageId, displayPath, source.file) });
  }
  return { files, unreadable };
}

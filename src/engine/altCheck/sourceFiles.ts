/**
 * The files `pali alt-text --check` reads: Markdown, HTML, JSX and TSX under the given paths, skipping what
 * git ignores (common/gitIgnore.ts). node_modules and .git are never walked, as eslint and markdownlint-cli2
 * do by default. Symbolic links to folders are not followed, so a link loop cannot hang CI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GitIgnore } from '../../common/gitIgnore.js';
import { UserError } from '../../common/errors.js';

const LANGUAGES: Record<string, string> = {
  '.md': 'markdown', '.markdown': 'markdown', '.mdown': 'markdown', '.mkd': 'markdown',
  '.html': 'html', '.htm': 'html', '.xhtml': 'html',
  '.jsx': 'javascriptreact',
  '.tsx': 'typescriptreact',
};

const NEVER_WALKED = new Set(['.git', 'node_modules']);

export interface SourceFile {
  /** Absolute path. */
  file: string;
  /** VS Code's language id, which the reference finders take. */
  languageId: string;
}

export function languageOf(file: string): string | undefined {
  return LANGUAGES[path.extname(file).toLowerCase()];
}

/**
 * Every checkable file under `paths`, sorted. A file named on the command line is read even when it is
 * ignored (the user asked for it), as long as it is a supported kind; a path that does not exist is an error.
 */
export function findSourceFiles(paths: string[], cwd = process.cwd()): SourceFile[] {
  const found = new Map<string, SourceFile>();
  const starts = paths.map((given) => ({ given, start: path.resolve(cwd, given) }));
  const gitIgnore = new GitIgnore(starts.map((s) => s.start));
  for (const { given, start } of starts) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(start);
    } catch {
      throw new UserError(`${given}: no such file or folder`);
    }
    if (stat.isFile()) {
      const languageId = languageOf(start);
      if (!languageId) throw new UserError(`${given}: not a Markdown, HTML, JSX or TSX file`);
      found.set(start, { file: start, languageId });
      continue;
    }
    const walk = (dir: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return; // unreadable folder: nothing in it can be checked, and nothing else should stop
      }
      for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const target = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          if (!NEVER_WALKED.has(entry.name) && !gitIgnore.ignores(target, true)) walk(target);
        } else if (entry.isFile()) {
          const languageId = languageOf(entry.name);
          if (languageId && !gitIgnore.ignores(target)) found.set(target, { file: target, languageId });
        }
      }
    };
    walk(start);
  }
  return [...found.values()].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

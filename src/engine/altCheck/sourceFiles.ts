/**
 * The files `pali alt-text --check` reads: Markdown, HTML, JSX and TSX under the given paths, skipping what
 * git ignores. .gitignore files are read as git does (every one from the repository's root down to the
 * folder, patterns relative to their own folder, plus .git/info/exclude), matched by the `ignore` package,
 * which implements git's pattern rules. node_modules and .git are never walked, as eslint and markdownlint-cli2
 * do by default. Symbolic links to folders are not followed, so a link loop cannot hang CI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { UserError } from '../errors.js';

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

interface IgnoreRules {
  dir: string;
  rules: Ignore;
}

function readRules(dir: string, file: string): IgnoreRules | undefined {
  try {
    return { dir, rules: ignore().add(fs.readFileSync(path.join(dir, file), 'utf8')) };
  } catch {
    return undefined; // no such file, or unreadable: no rules from it
  }
}

function gitRoot(from: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, '.git'))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** As git decides: the deepest .gitignore with a matching pattern wins, so a `!pattern` below re-includes. */
function isIgnored(stack: IgnoreRules[], target: string, isDir: boolean): boolean {
  let ignored = false;
  for (const { dir, rules } of stack) {
    const relative = path.relative(dir, target).split(path.sep).join('/');
    if (relative === '' || relative.startsWith('..')) continue;
    const verdict = rules.test(isDir ? `${relative}/` : relative);
    if (verdict.ignored) ignored = true;
    else if (verdict.unignored) ignored = false;
  }
  return ignored;
}

/** The rules in force in `dir`: .git/info/exclude and every .gitignore from the repository root down. */
function rulesAbove(dir: string): IgnoreRules[] {
  const root = gitRoot(dir);
  if (!root) return [readRules(dir, '.gitignore')].filter((r) => r !== undefined);
  const stack = [readRules(root, path.join('.git', 'info', 'exclude'))];
  const parts = path.relative(root, dir).split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) stack.push(readRules(path.join(root, ...parts.slice(0, i)), '.gitignore'));
  return stack.filter((r) => r !== undefined);
}

/**
 * Every checkable file under `paths`, sorted. A file named on the command line is read even when it is
 * ignored (the user asked for it), as long as it is a supported kind; a path that does not exist is an error.
 */
export function findSourceFiles(paths: string[], cwd = process.cwd()): SourceFile[] {
  const found = new Map<string, SourceFile>();
  for (const given of paths) {
    const start = path.resolve(cwd, given);
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
    const walk = (dir: string, stack: IgnoreRules[]) => {
      const own = readRules(dir, '.gitignore');
      const rules = own && !stack.some((r) => r.dir === dir) ? [...stack, own] : stack;
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return; // unreadable folder: nothing in it can be checked, and nothing else should stop
      }
      for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const target = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          if (!NEVER_WALKED.has(entry.name) && !isIgnored(rules, target, true)) walk(target, rules);
        } else if (entry.isFile()) {
          const languageId = languageOf(entry.name);
          if (languageId && !isIgnored(rules, target, false)) found.set(target, { file: target, languageId });
        }
      }
    };
    walk(start, rulesAbove(start));
  }
  return [...found.values()].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

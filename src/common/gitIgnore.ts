/**
 * What git ignores, decided as git does: every .gitignore from the repository's root down to a file's folder
 * (patterns relative to their own folder, a deeper file overriding a higher one, so `!pattern` re-includes),
 * plus .git/info/exclude. Patterns are matched by the `ignore` package, which implements git's rules.
 * Used by `pali alt-text --check` and by the extension's workspace-wide alt text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';

interface Rules {
  dir: string;
  rules: Ignore;
}

export class GitIgnore {
  private readonly byDir = new Map<string, Rules | null>();
  private readonly roots = new Map<string, string | null>();

  /** `tops`: where walks start; outside a repository, their .gitignore files apply from there down. */
  constructor(private readonly tops: string[] = []) {}

  private rulesIn(dir: string, file = '.gitignore'): Rules | null {
    const key = path.join(dir, file);
    let rules = this.byDir.get(key);
    if (rules === undefined) {
      try {
        rules = { dir, rules: ignore().add(fs.readFileSync(key, 'utf8')) };
      } catch {
        rules = null; // no such file, or unreadable: no rules from it
      }
      this.byDir.set(key, rules);
    }
    return rules;
  }

  /** The folder holding .git above `dir`, if any. */
  private rootOf(dir: string): string | null {
    let root = this.roots.get(dir);
    if (root === undefined) {
      root = fs.existsSync(path.join(dir, '.git')) ? dir : path.dirname(dir) === dir ? null : this.rootOf(path.dirname(dir));
      this.roots.set(dir, root);
    }
    return root;
  }

  /** The rules in force for entries of `dir`, highest first. */
  private stackFor(dir: string): Rules[] {
    const gitRoot = this.rootOf(dir);
    const root = gitRoot ?? this.tops.filter((top) => !path.relative(top, dir).startsWith('..')).sort((a, b) => b.length - a.length)[0] ?? dir;
    const stack = gitRoot ? [this.rulesIn(root, path.join('.git', 'info', 'exclude'))] : [];
    const parts = path.relative(root, dir).split(path.sep).filter(Boolean);
    for (let i = 0; i <= parts.length; i++) stack.push(this.rulesIn(path.join(root, ...parts.slice(0, i))));
    return stack.filter((r) => r !== null);
  }

  /** Is this file (or folder, with isDir) ignored? Its parent folders are not checked: walkers skip those. */
  ignores(target: string, isDir = false): boolean {
    let ignored = false;
    for (const { dir, rules } of this.stackFor(path.dirname(target))) {
      const relative = path.relative(dir, target).split(path.sep).join('/');
      if (relative === '' || relative.startsWith('..')) continue;
      const verdict = rules.test(isDir ? `${relative}/` : relative);
      if (verdict.ignored) ignored = true;
      else if (verdict.unignored) ignored = false;
    }
    return ignored;
  }

  /** Like `ignores`, and also true when any folder between `top` and the file is ignored (as git sees it). */
  ignoresUnder(top: string, target: string): boolean {
    const parts = path.relative(top, target).split(path.sep);
    for (let i = 1; i < parts.length; i++) if (this.ignores(path.join(top, ...parts.slice(0, i)), true)) return true;
    return this.ignores(target);
  }
}

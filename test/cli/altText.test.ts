/**
 * `pali alt-text` as CI runs it: the built dist/pali.js in a child process, over a small git repository.
 * Walking (.gitignore at every level, .git/info/exclude, node_modules), the linter-style lines and exit
 * codes, JSON and SARIF, and --fix with the tiny model: a diff first, writes with --yes, files edited
 * meanwhile left alone (that one in process, where the confirmation can wait while the file changes).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { altTextCommand } from '../../src/engine/cli/altTextCommand.js';
import { tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { pali } from '../helpers/pali.js';

/** `pali` in `cwd`: alt-text paths are relative to where it runs. */
function paliIn(args: string[], cwd: string, env: Record<string, string> = {}) {
  return pali(args, env, { cwd, timeoutMs: 300_000 });
}

function write(root: string, files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), content);
  }
}

function repository(): string {
  const root = tempDir('alt-check');
  write(root, {
    '.git/info/exclude': 'private.md\n',
    '.gitignore': 'build/\n*.generated.md\n',
    'README.md': '# Project\n\n![](docs/shot.png)\n',
    'private.md': '![](x.png)\n',
    'notes.generated.md': '![](x.png)\n',
    'build/index.html': '<img src="x.png">\n',
    'node_modules/pkg/README.md': '![](x.png)\n',
    'docs/.gitignore': 'drafts/\n!keep.generated.md\n',
    'docs/guide.md': 'Intro\n\n  ![Alt text](shot.png)\n',
    'docs/keep.generated.md': '![](x.png)\n',
    'docs/drafts/wip.md': '![](x.png)\n',
    'docs/page.html': '<p>\n  <img src="shot.png" alt="The settings page">\n  <input type="image" src="go.png">\n</p>\n',
    'docs/App.tsx': 'export const App = () => (\n  <main>\n    <img src="/logo.png" />\n  </main>\n);\n',
    'docs/clean.md': '![A dog catching a frisbee](dog.png)\n',
  });
  return root;
}

describe('pali alt-text --check', () => {
  test('prints one linter-style line per finding, respecting .gitignore at every level, and exits 1', () => {
    const root = repository();
    const result = paliIn(['alt-text', '--check'], root);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, [
      'README.md:3:1: missing alt text (alt-missing)',
      'docs/App.tsx:3:5: missing alt text (alt-missing)',
      'docs/guide.md:3:3: placeholder alt text "Alt text" (alt-placeholder)',
      'docs/keep.generated.md:1:1: missing alt text (alt-missing)',
      'docs/page.html:3:3: missing alt text (alt-missing)',
      '',
    ].join('\n'));
    // Paths stay relative to the working folder when it is below the repository's root, and the root's
    // .gitignore still applies there.
    write(root, { 'docs/build/old.md': '![](x.png)\n' });
    const below = paliIn(['alt-text', '--check', '.'], path.join(root, 'docs'));
    assert.match(below.stdout, /^App\.tsx:3:5: /m);
    assert.doesNotMatch(below.stdout, /old\.md|drafts/);
  });

  test('exits 0 with no output when nothing is found; a named file is checked even when ignored', () => {
    const root = repository();
    const clean = paliIn(['alt-text', '--check', 'docs/clean.md'], root);
    assert.deepEqual([clean.code, clean.stdout], [0, '']);
    const named = paliIn(['alt-text', '--check', 'private.md'], root);
    assert.deepEqual([named.code, named.stdout], [1, 'private.md:1:1: missing alt text (alt-missing)\n']);
  });

  test('a path that does not exist, or a file it cannot check, exits 2 with one line', () => {
    const root = repository();
    for (const [args, message] of [[['missing'], /missing: no such file or folder/], [['.gitignore'], /not a Markdown, HTML, JSX or TSX file/], [['--format', 'xml'], /unknown --format "xml"/]] as const) {
      const result = paliIn(['alt-text', '--check', ...args], root);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, '');
      assert.match(result.stderr.trim(), message);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    }
  });

  test('--format json gives positions, rule ids and sources', () => {
    const root = repository();
    const findings = JSON.parse(paliIn(['alt-text', '--check', '--format', 'json', 'docs/page.html'], root).stdout);
    assert.deepEqual(findings, [{ path: 'docs/page.html', line: 3, column: 3, endLine: 3, endColumn: 36, ruleId: 'alt-missing', message: 'missing alt text', src: 'go.png' }]);
  });

  test('--format sarif is SARIF 2.1.0 as GitHub code scanning reads it', () => {
    const root = repository();
    const result = paliIn(['alt-text', '--check', '--format', 'sarif'], root);
    assert.equal(result.code, 1);
    const log = JSON.parse(result.stdout);
    assert.equal(log.version, '2.1.0');
    const [run] = log.runs;
    const ruleIds = run.tool.driver.rules.map((r: { id: string }) => r.id);
    assert.deepEqual(ruleIds, ['alt-missing', 'alt-empty', 'alt-placeholder']);
    assert.equal(run.results.length, 5);
    for (const r of run.results) {
      // What GitHub requires of each result: a rule it can find, a message, a relative location and region.
      assert.equal(ruleIds[r.ruleIndex], r.ruleId);
      assert.ok(r.message.text);
      const location = r.locations[0].physicalLocation;
      assert.equal(location.artifactLocation.uriBaseId, '%SRCROOT%');
      assert.ok(!path.isAbsolute(location.artifactLocation.uri));
      assert.ok(location.region.startLine >= 1 && location.region.startColumn >= 1);
    }
    const readme = run.results.find((r: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }) => r.locations[0].physicalLocation.artifactLocation.uri === 'README.md');
    // SARIF's endColumn is the column after the region: `![](docs/shot.png)` is 18 characters.
    assert.deepEqual(readme.locations[0].physicalLocation.region, { startLine: 3, startColumn: 1, endLine: 3, endColumn: 19 });
    assert.equal(readme.level, 'error');
  });
});

describe('pali alt-text --fix', () => {
  const root = tempDir('alt-fix');
  const model = path.join(root, 'model');
  const env = { PALI_CACHE_DIR: path.join(root, 'cache') };

  test('shows a diff and writes nothing without --yes; writes the model\'s text with --yes', async () => {
    assert.equal(paliIn(['forge', '--preset', 'tiny', '--seed', '5', '--out', model], root).code, 0);
    const project = path.join(root, 'project');
    write(project, {
      'docs/guide.md': '# Guide\n\n![](shot.png)\n\n![Alt text](shot.png)\n\n![](https://example.com/remote.png)\n',
      'docs/page.html': '<img src="shot.png">\n<img src="shot.png" alt="">\n',
    });
    await writeGradientPng(path.join(project, 'docs', 'shot.png'), 64, 48, 2);
    const before = fs.readFileSync(path.join(project, 'docs', 'guide.md'), 'utf8');

    const preview = paliIn(['alt-text', '--fix', '--model', model, '--dtype', 'fp32', 'docs'], project, env);
    assert.equal(preview.code, 1, preview.stderr);
    assert.match(preview.stdout, /^--- a\/docs\/guide\.md\n\+\+\+ b\/docs\/guide\.md\n/m);
    assert.match(preview.stdout, /^-!\[\]\(shot\.png\)\n\+!\[.+\]\(shot\.png\)$/m);
    assert.match(preview.stdout, /^-<img src="shot\.png">\n\+<img alt=".+" src="shot\.png">$/m);
    assert.match(preview.stderr, /nothing written: review the diff, then run again with --yes/);
    assert.match(preview.stderr, /docs\/guide\.md:7:1: not a local file \(https:\)/);
    assert.match(preview.stderr, /docs\/page\.html:2:1: empty alt left as it is/);
    assert.equal(fs.readFileSync(path.join(project, 'docs', 'guide.md'), 'utf8'), before);

    const applied = paliIn(['alt-text', '--fix', '--yes', '--model', model, '--dtype', 'fp32', 'docs'], project, env);
    assert.match(applied.stderr, /wrote alt text for 3 images in 2 files/);
    assert.equal(applied.stdout, '', 'no diff with --yes');
    // What is left is what the model cannot fix: the remote image and the empty alt.
    assert.equal(applied.code, 1);
    const check = paliIn(['alt-text', '--check', 'docs'], project);
    assert.deepEqual(check.stdout.trim().split('\n').map((line) => line.replace(/: .*\(/, ' (')), ['docs/guide.md:7:1 (alt-missing)', 'docs/page.html:2:1 (alt-empty)']);
    // The same caption for the same image, written with each syntax's escaping.
    const guide = fs.readFileSync(path.join(project, 'docs', 'guide.md'), 'utf8');
    const [first, second] = [...guide.matchAll(/!\[([^\]]*)\]\(shot\.png\)/g)].map((m) => m[1]);
    assert.ok(first && first === second, guide);
  });

  test('a file edited while the question is on screen is left as the user made it; the others are written', async () => {
    if (!fs.existsSync(path.join(model, 'config.json'))) assert.equal(paliIn(['forge', '--preset', 'tiny', '--seed', '5', '--out', model], root).code, 0);
    const project = path.join(root, 'edited');
    write(project, { 'guide.md': '# Guide\n\n![](shot.png)\n', 'page.html': '<img src="shot.png">\n' });
    await writeGradientPng(path.join(project, 'shot.png'), 64, 48, 2);
    const edited = '# Guide, edited meanwhile\n\n![](shot.png)\n';
    const errors: string[] = [];
    let asked = '';
    const code = await altTextCommand(['--fix', '--model', model, '--dtype', 'fp32', '--cache-dir', env.PALI_CACHE_DIR, project], {
      out: () => {},
      err: (line) => errors.push(line),
      signal: new AbortController().signal,
      interactive: false,
      // The user edits guide.md in their editor while the diff and the question are on screen, then says yes.
      confirm: async (question) => {
        asked = question;
        fs.writeFileSync(path.join(project, 'guide.md'), edited);
        return true;
      },
    });
    assert.match(asked, /write alt text for 2 images in 2 files\?/);
    assert.equal(fs.readFileSync(path.join(project, 'guide.md'), 'utf8'), edited, 'the edit is kept');
    assert.match(fs.readFileSync(path.join(project, 'page.html'), 'utf8'), /^<img alt="[^"]+" src="shot\.png">\n$/);
    assert.ok(errors.some((line) => /guide\.md changed since it was read: left as it is, run again/.test(line)), errors.join('\n'));
    assert.ok(errors.some((line) => /wrote alt text for 1 image in 1 file$/.test(line)), errors.join('\n'));
    assert.equal(code, 1, 'guide.md still has its finding');
  });
});

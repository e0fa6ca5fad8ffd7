/**
 * `pali alt-text --check` against the linters people already run, on the same fixtures: markdownlint's
 * MD045, axe-core's image-alt, input-image-alt and area-alt (in jsdom), and eslint-plugin-jsx-a11y's
 * alt-text (with the TypeScript parser for TSX). On missing alt text our `alt-missing` lines must equal each
 * linter's lines, except for the differences listed here, each with its reason; a difference that is not
 * listed, or a listed one that no longer happens, fails the test.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { ESLint } from 'eslint';
import { JSDOM } from 'jsdom';
import { pali } from '../helpers/pali.js';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'altText');

interface Finding {
  path: string;
  line: number;
  ruleId: string;
}

function ours(file: string): Finding[] {
  const result = pali(['alt-text', '--check', '--format', 'json', file], {}, { cwd: FIXTURES });
  assert.ok(result.code === 0 || result.code === 1, result.stderr);
  return JSON.parse(result.stdout) as Finding[];
}

const oursMissing = (file: string) => new Set(ours(file).filter((f) => f.ruleId === 'alt-missing').map((f) => f.line));

/** The fixture's line that holds `marker`, which must be unique. */
function lineOf(file: string, marker: string): number {
  const lines = fs.readFileSync(path.join(FIXTURES, file), 'utf8').split('\n');
  const found = lines.flatMap((line, i) => (line.includes(marker) ? [i + 1] : []));
  assert.equal(found.length, 1, `marker ${marker} in ${file}`);
  return found[0]!;
}

/** Lines only we report, and lines only the linter reports: each must be one of the explained ones. */
function compare(file: string, linter: Set<number>, explained: { onlyOurs?: Record<string, string>; onlyTheirs?: Record<string, string> }) {
  const mine = oursMissing(file);
  const onlyOurs = [...mine].filter((line) => !linter.has(line)).sort((a, b) => a - b);
  const onlyTheirs = [...linter].filter((line) => !mine.has(line)).sort((a, b) => a - b);
  const expect = (markers: Record<string, string> = {}) => Object.keys(markers).map((marker) => lineOf(file, marker)).sort((a, b) => a - b);
  assert.deepEqual(onlyOurs, expect(explained.onlyOurs), `${file}: lines only we report as missing`);
  assert.deepEqual(onlyTheirs, expect(explained.onlyTheirs), `${file}: lines only the linter reports`);
  assert.ok(mine.size > 0 && linter.size > 0, 'both found something: the fixture exercises the rule');
}

describe('alt-text --check agrees with the linters on missing alt text', () => {
  test('markdownlint MD045 on Markdown, with <img> inside it', async () => {
    const { lint } = await import('markdownlint/sync');
    const results = lint({ files: [path.join(FIXTURES, 'guide.md')], config: { default: false, MD045: true } });
    const lines = new Set(Object.values(results).flat().map((r) => r.lineNumber));
    compare('guide.md', lines, {
      onlyTheirs: {
        // Our <!-- decorative --> marker, which the extension's "Mark as decorative" writes: Markdown has no
        // other way to say so. markdownlint only knows aria-hidden on HTML.
        'divider.png': 'marked decorative with <!-- decorative -->',
      },
    });
  });

  test('axe-core image-alt, input-image-alt and area-alt on HTML', async () => {
    const html = fs.readFileSync(path.join(FIXTURES, 'page.html'), 'utf8');
    const dom = new JSDOM(html, { runScripts: 'outside-only', includeNodeLocations: true, pretendToBeVisual: true });
    const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
    dom.window.eval(axeSource);
    const axe = (dom.window as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: { id: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const { violations } = await axe.run(dom.window.document, { runOnly: { type: 'rule', values: ['image-alt', 'input-image-alt', 'area-alt'] } });
    const lines = new Set<number>();
    for (const violation of violations) {
      for (const node of violation.nodes) {
        const element = dom.window.document.querySelector(node.target[0]!)!;
        lines.add(dom.nodeLocation(element)!.startLine);
      }
    }
    assert.deepEqual(new Set(violations.map((v) => v.id)), new Set(['image-alt', 'input-image-alt', 'area-alt']), 'all three rules fire on the fixture');
    compare('page.html', lines, {
      onlyOurs: {
        // axe accepts role="presentation" without alt; the HTML spec and jsx-a11y ask for alt="" (the ARIA
        // rule of thumb: native HTML first), and so do we.
        'src="a.png" role="presentation"': 'a presentational role without alt',
        // axe takes a title as the name; a title is a tooltip that touch and keyboard users never see.
        'title="Company logo"': 'title only',
        // <template> content is not in the DOM axe reads; it is once the page clones it.
        'in-template.png': 'inside <template>',
      },
    });
  });

  test('eslint-plugin-jsx-a11y alt-text on JSX and TSX', async () => {
    // @ts-expect-error: the plugin ships no types, and ESLint takes it as it is.
    const plugin = (await import('eslint-plugin-jsx-a11y')).default;
    const parser = await import('@typescript-eslint/parser');
    const eslint = new ESLint({
      cwd: FIXTURES,
      overrideConfigFile: true,
      overrideConfig: [{
        files: ['**/*.jsx', '**/*.tsx'],
        languageOptions: { parser, parserOptions: { ecmaFeatures: { jsx: true } } },
        plugins: { 'jsx-a11y': plugin },
        // Next.js's <Image> is an <img>: the rule's own option for components that render one.
        rules: { 'jsx-a11y/alt-text': ['error', { img: ['Image'] }] },
      }],
    });
    const byFile = new Map((await eslint.lintFiles(['App.jsx', 'Card.tsx'])).map((r) => [path.basename(r.filePath), r]));
    for (const result of byFile.values()) assert.deepEqual(result.messages.filter((m) => m.fatal), [], 'parsed');
    const lines = (file: string) => new Set(byFile.get(file)!.messages.filter((m) => m.ruleId === 'jsx-a11y/alt-text').map((m) => m.line));
    compare('App.jsx', lines('App.jsx'), {
      onlyTheirs: {
        // Hidden from assistive technology: nothing reads its alt (axe and markdownlint agree with us).
        'aria-hidden="true"': 'aria-hidden',
        // An expression is judged at run time; we never guess at dynamic alt, undefined included.
        'alt={undefined}': 'a dynamic alt',
      },
    });
    compare('Card.tsx', lines('Card.tsx'), {});
  });
});

describe('alt-text --check goes further than the linters', () => {
  test('placeholders the linters let through are reported, descriptive and decorative alt is not', () => {
    const placeholders = (file: string) => ours(file).filter((f) => f.ruleId === 'alt-placeholder').map((f) => f.line);
    assert.deepEqual(placeholders('guide.md'), [lineOf('guide.md', '![Alt text]'), lineOf('guide.md', '![screenshot]'), lineOf('guide.md', '![shot.png]')]);
    assert.deepEqual(placeholders('page.html'), [lineOf('page.html', 'alt="image"'), lineOf('page.html', 'alt="photo-2024"')]);
    assert.deepEqual(placeholders('App.jsx'), [lineOf('App.jsx', 'alt="picture"')]);
    assert.deepEqual(placeholders('Card.tsx'), [lineOf('Card.tsx', 'alt="card"')]);
    // Nothing on descriptive, decorative, dynamic, commented, fenced, indented or code-span images, nor on
    // reference definitions.
    const reported = new Set(ours('guide.md').map((f) => f.line));
    for (const marker of ['settings page', 'alt="" role="presentation"', 'aria-hidden', 'in-fenced-code', 'in-indented-code', 'in-code-span', 'in-comment', '[logo]: ']) {
      for (const line of fs.readFileSync(path.join(FIXTURES, 'guide.md'), 'utf8').split('\n').flatMap((l, i) => (l.includes(marker) ? [i + 1] : []))) {
        assert.ok(!reported.has(line), `${marker} (line ${line}) is not reported`);
      }
    }
    const jsx = new Set(ours('App.jsx').map((f) => f.line));
    for (const marker of ['alt=""', "alt={t('logo')}", 'A red bicycle', 'commented.png']) assert.ok(!jsx.has(lineOf('App.jsx', marker)), marker);
  });

  test('an empty alt without a presentational role is its own finding in HTML, not in JSX', () => {
    const empty = (file: string) => ours(file).filter((f) => f.ruleId === 'alt-empty').map((f) => f.line);
    assert.deepEqual(empty('page.html'), [lineOf('page.html', '<img src="a.png" alt="">')]);
    assert.deepEqual(empty('guide.md'), [lineOf('guide.md', 'empty.png')]);
    assert.deepEqual(empty('App.jsx'), []);
  });
});

/**
 * Every UI string must reach translators: the extension's strings in l10n/bundle.l10n.json (what
 * `npm run l10n` exports from the vscode.l10n.t calls in src/), the manifest's in package.nls.json.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/fixtures.js';

const repo = path.join(__dirname, '..', '..');
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;

test('l10n/bundle.l10n.json holds exactly the strings of the vscode.l10n.t calls (run `npm run l10n`)', () => {
  const out = tempDir('l10n');
  const cli = path.join(repo, 'node_modules', '@vscode', 'l10n-dev', 'dist', 'cli.js');
  execFileSync(process.execPath, [cli, 'export', '--outDir', out, path.join(repo, 'src')], { stdio: 'pipe' });
  const exported = readJson(path.join(out, 'bundle.l10n.json'));
  assert.ok(Object.keys(exported).length > 50, 'the export found the extension\'s strings');
  assert.deepEqual(readJson(path.join(repo, 'l10n', 'bundle.l10n.json')), exported);
});

test('every %placeholder% in package.json has an English string in package.nls.json, and none is unused', () => {
  const manifest = fs.readFileSync(path.join(repo, 'package.json'), 'utf8');
  const used = new Set([...manifest.matchAll(/"%([^"%]+)%"/g)].map((match) => match[1]!));
  const defined = new Set(Object.keys(readJson(path.join(repo, 'package.nls.json'))));
  assert.ok(used.size > 10);
  assert.deepEqual([...used].filter((key) => !defined.has(key)), [], 'placeholders without a string');
  assert.deepEqual([...defined].filter((key) => !used.has(key)), [], 'strings no placeholder uses');
});

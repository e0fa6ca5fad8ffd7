/**
 * No dead settings: every setting that package.json contributes is read by src/extension/config.ts, and the
 * field it lands in is read by the code where it acts. (paligemma.maxImagePixels was once read and then
 * never passed to the engine: this test is red for such a setting.)
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const repo = path.join(__dirname, '..', '..');
const extensionDir = path.join(repo, 'src', 'extension');
const configFile = path.join(extensionDir, 'config.ts');

function contributedSettings(): string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
  const sections = [manifest.contributes.configuration].flat() as { properties: Record<string, unknown> }[];
  return sections.flatMap((section) => Object.keys(section.properties));
}

/** `field: config.get<...>('key', ...)` in readSettings: setting key (without `paligemma.`) -> field. */
function fieldsBySetting(): Map<string, string> {
  const source = fs.readFileSync(configFile, 'utf8');
  return new Map([...source.matchAll(/(\w+): [^\n]*?config\.get<[^>]+>\('([^']+)'/g)].map((match) => [match[2]!, match[1]!]));
}

function extensionSources(): { file: string; text: string }[] {
  const files = fs.readdirSync(extensionDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  return files.map((f) => path.join(extensionDir, f)).filter((f) => f !== configFile).map((file) => ({ file, text: fs.readFileSync(file, 'utf8') }));
}

/** A read of `field`: `x.field` that is not assigned to, or `{ ..., field, ... } =` destructuring. */
function readsField(text: string, field: string): boolean {
  const access = new RegExp(`\\.${field}\\b(?!\\s*=[^=>])`);
  const destructured = new RegExp(`\\{[^}]*\\b${field}\\b[^}]*\\}\\s*=`);
  return access.test(text) || destructured.test(text);
}

test('every contributed setting is read in config.ts', () => {
  const fields = fieldsBySetting();
  const settings = contributedSettings();
  assert.ok(settings.length >= 12, `found ${settings.length} settings`);
  assert.deepEqual(settings.filter((key) => !fields.has(key.replace(/^paligemma\./, ''))), [], 'settings config.ts never reads');
});

test('every setting\'s field is read outside config.ts, where it acts', () => {
  const sources = extensionSources();
  const dead = [...fieldsBySetting()].filter(([, field]) => !sources.some(({ text }) => readsField(text, field)));
  assert.deepEqual(dead.map(([key]) => `paligemma.${key}`), [], 'settings whose value nothing uses');
  // The check itself can fail: a field nobody has is reported.
  assert.equal(sources.some(({ text }) => readsField(text, 'noSuchSettingField')), false);
});

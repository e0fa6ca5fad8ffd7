/**
 * No dead settings: every setting that package.json contributes is read by src/extension/config.ts, and an
 * end-to-end scenario changes it and checks what changes (paligemma.maxImagePixels was once read and then
 * never passed to the engine; its scenario now fails for that).
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

/** The code of the end-to-end scenarios: their files and the flows they share. */
function scenarioSources(): { file: string; text: string }[] {
  const e2e = path.join(repo, 'test', 'e2e');
  const files = fs.readdirSync(e2e).filter((f) => f.endsWith('.test.ts') || f === 'flows.ts');
  return files.map((f) => ({ file: f, text: fs.readFileSync(path.join(e2e, f), 'utf8') }));
}

/** A scenario that writes the setting: `'paligemma.key': value` in the settings it applies. */
function writesSetting(text: string, key: string): boolean {
  return new RegExp(`'${key.replace(/\./g, '\\.')}'\\s*:`).test(text);
}

test('every contributed setting is read in config.ts', () => {
  const fields = fieldsBySetting();
  const settings = contributedSettings();
  assert.ok(settings.length >= 12, `found ${settings.length} settings`);
  assert.deepEqual(settings.filter((key) => !fields.has(key.replace(/^paligemma\./, ''))), [], 'settings config.ts never reads');
});

// What each setting does is checked where it acts, in a real VS Code: dtype and device in the status bar's
// tooltip, maxImagePixels and engineMemoryLimitGB as refusals that name them, the alt-text settings as
// diagnostics... This test keeps a new setting from arriving without such a scenario.
test('every contributed setting is changed by an end-to-end scenario', () => {
  const sources = scenarioSources();
  const untested = contributedSettings().filter((key) => !sources.some(({ text }) => writesSetting(text, key)));
  assert.deepEqual(untested, [], 'settings no scenario changes');
  // The check itself can fail: a setting nobody writes is reported.
  assert.equal(sources.some(({ text }) => writesSetting(text, 'paligemma.noSuchSetting')), false);
});

/**
 * The vocabularies defined once in src/ and repeated by package.json (which cannot import them): the
 * device setting, the image extensions of the menus' when-clauses, the alt-text languages that activate the
 * extension, and the settings that Restricted Mode ignores.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { SUPPORTED_LANGUAGES } from '../../src/common/altText/findReferences.js';
import { DEVICE_CHOICES } from '../../src/common/devices.js';
import { IMAGE_EXTENSIONS } from '../../src/common/imageFiles.js';
import { RESTRICTED_KEYS } from '../../src/extension/restrictedKeys.js';

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));

test('paligemma.device offers exactly the device choices', () => {
  assert.deepEqual(manifest.contributes.configuration.properties['paligemma.device'].enum, [...DEVICE_CHOICES]);
});

test('every when-clause that matches image files matches exactly the image extensions', () => {
  const items = Object.values(manifest.contributes.menus).flat() as { when?: string }[];
  const clauses = items.map((item) => item.when ?? '').filter((when) => when.includes('resourceExtname =~'));
  assert.ok(clauses.length >= 2, 'the explorer and the image preview menus');
  for (const clause of clauses) {
    const pattern = new RegExp(/resourceExtname =~ \/(.+?)\/i/.exec(clause)![1]!, 'i');
    for (const extension of IMAGE_EXTENSIONS) assert.ok(pattern.test(`.${extension}`), `${clause} misses .${extension}`);
    for (const other of ['md', 'pdf', 'ico', 'heic', 'jpgx', 'xsvg']) assert.ok(!pattern.test(`.${other}`), `${clause} matches .${other}`);
  }
});

test('the extension activates on the languages whose image references it checks', () => {
  const languages = manifest.activationEvents.filter((e: string) => e.startsWith('onLanguage:')).map((e: string) => e.slice('onLanguage:'.length));
  assert.deepEqual(languages.sort(), [...SUPPORTED_LANGUAGES].sort());
});

test('Restricted Mode: the manifest restricts exactly the settings the extension says it ignores', () => {
  assert.deepEqual([...manifest.capabilities.untrustedWorkspaces.restrictedConfigurations].sort(), [...RESTRICTED_KEYS].sort());
});

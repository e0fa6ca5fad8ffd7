import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkAltText, isPlaceholderAlt } from '../../../src/common/altText/altRules.js';
import { findImageReferences } from '../../../src/common/altText/findReferences.js';
import { altTextRequest, toAltText } from '../../../src/common/altText/purpose.js';

const codes = (text: string, language: string) => findImageReferences(text, language).map((r) => checkAltText(r)?.code ?? null);

test('missing, empty and placeholder alt text get their codes; good and decorative alt text pass', () => {
  assert.deepEqual(codes('<img src="a.png"><img src="a.png" alt=""><img src="a.png" alt="" role="none"><img src="a.png" alt="A red barn">', 'html'),
    ['alt-missing', 'alt-empty', null, null]);
  assert.deepEqual(codes('![](a.png) ![Alt text](a.png) ![a.png](a.png) ![my-photo](my_photo.jpg) ![A sunset over the sea](s.png)', 'markdown'),
    ['alt-missing', 'alt-placeholder', 'alt-placeholder', 'alt-placeholder', null]);
  assert.deepEqual(codes('<img src="/a.png" alt={label} />', 'typescriptreact'), [null]);
});

test('placeholders: file names with or without extension, encoded, and generic words', () => {
  assert.ok(isPlaceholderAlt('Screenshot 2024', 'Screenshot%202024.png'));
  assert.ok(isPlaceholderAlt('IMAGE', undefined));
  assert.ok(!isPlaceholderAlt('A cat asleep on a keyboard', 'cat.png'));
});

test('prompts per purpose: functional images say what they do; decorative ones get none', () => {
  assert.deepEqual(altTextRequest('informative'), { task: 'caption', language: 'en' });
  assert.deepEqual(altTextRequest('complex', 'fr'), { task: 'describe', language: 'fr' });
  assert.equal(altTextRequest('functional')!.task, 'answer');
  assert.equal(altTextRequest('decorative'), null);
});

test('model output becomes one clean sentence', () => {
  assert.equal(toAltText('  a cat\n on a mat <loc0001>'), 'A cat on a mat');
  assert.equal(toAltText(''), '');
});

test('the linters\' exemptions: hidden, aria-labelled, JSX alt="", and empty alt on controls', () => {
  assert.deepEqual(codes('<img src="a.png" aria-hidden="true"><img src="a.png" aria-label="Logo"><img src="a.png" aria-labelledby="cap"><img src="a.png" aria-label=" ">', 'html'),
    [null, null, null, 'alt-missing']);
  assert.deepEqual(codes('<input type="image" src="go.png" alt=""><area href="/" alt=""><input type="text"><input type="image" src="go.png" alt="Search">', 'html'),
    ['alt-missing', 'alt-missing', null]);
  assert.deepEqual(codes('<><img src="/a.png" alt="" /><img src="/a.png" aria-label={label} /><input type="image" src="/go.png" /><input type="submit" /><area href="/" alt="" /></>', 'typescriptreact'),
    [null, null, 'alt-missing', 'alt-missing']);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { markDecorativeEdits, setAltTextEdits, type TextEdit } from '../../../src/common/altText/altEdits.js';
import { checkAltText } from '../../../src/common/altText/altRules.js';
import { findImageReferences } from '../../../src/common/altText/findReferences.js';

function apply(text: string, edits: TextEdit[]): string {
  for (const edit of [...edits].sort((a, b) => b.start - a.start)) text = text.slice(0, edit.start) + edit.newText + text.slice(edit.end);
  return text;
}

function fix(text: string, language: string, alt: string): string {
  const reference = findImageReferences(text, language)[0]!;
  return apply(text, setAltTextEdits(reference, alt, text));
}

test('setting alt text in each syntax, escaped for it', () => {
  assert.equal(fix('![](a.png)', 'markdown', 'A [red] car'), '![A \\[red\\] car](a.png)');
  assert.equal(fix('<img src="a.png">', 'html', 'Tom & "Jerry"'), '<img alt="Tom &amp; &quot;Jerry&quot;" src="a.png">');
  assert.equal(fix('<img src="a.png" alt="image">', 'html', 'A dog'), '<img src="a.png" alt="A dog">');
  assert.equal(fix('<img src=a.png alt=x>', 'html', 'A dog'), '<img src=a.png alt="A dog">');
  assert.equal(fix('<img src="a.png" alt>', 'html', 'A dog'), '<img src="a.png" alt="A dog">');
  assert.equal(fix('const a = <img src="a.png" />;', 'typescriptreact', "It's a dog"), 'const a = <img alt="It&#39;s a dog" src="a.png" />;');
});

test('after the fix, the rules find nothing to report', () => {
  for (const [text, language] of [['![Alt text](cat.png)', 'markdown'], ['<img src="cat.png">', 'html'], ['<Image src="/cat.png" alt="" />', 'typescriptreact']] as const) {
    const fixed = fix(text, language, 'A cat asleep in the sun');
    assert.equal(checkAltText(findImageReferences(fixed, language)[0]!), null, fixed);
  }
});

test('marking decorative silences the rules in every syntax', () => {
  for (const [text, language] of [['![](bg.png) text', 'markdown'], ['<img src="bg.png">', 'html'], ['<img src="/bg.png" alt="image" />', 'typescriptreact']] as const) {
    const reference = findImageReferences(text, language)[0]!;
    const marked = apply(text, markDecorativeEdits(reference, text));
    const after = findImageReferences(marked, language)[0]!;
    assert.ok(after.decorative, marked);
    assert.equal(checkAltText(after), null, marked);
  }
});

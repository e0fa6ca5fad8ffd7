/** Image references in all four languages, with the exact ranges the quick fixes edit. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findImageReferences } from '../../../src/common/altText/findReferences.js';
import type { ImageReference } from '../../../src/common/altText/types.js';

/** The text a reference's alt range covers, or where a missing alt would go. */
function altSlice(text: string, reference: ImageReference): string {
  if (reference.alt.kind === 'literal') return text.slice(reference.alt.valueRange.start, reference.alt.valueRange.end);
  if (reference.alt.kind === 'missing') return `@${text.slice(reference.alt.insertAt - 4, reference.alt.insertAt)}|${text.slice(reference.alt.insertAt, reference.alt.insertAt + 4)}`;
  return '<dynamic>';
}

describe('Markdown', () => {
  const text = [
    '# Title',
    '',
    'Inline ![a cat](cat.png "Title") and ![](empty.png) here.',
    '',
    '`![not an image](code.png)` in code, and ![ref image][logo].',
    '',
    '    ![indented code block](block.png)',
    '',
    '![Alt text](pasted.png)<!-- decorative -->',
    '',
    '<p><img src="raw.png"></p>',
    '',
    '[logo]: images/logo.svg',
  ].join('\n');
  const references = findImageReferences(text, 'markdown');

  test('finds inline, empty and reference images, never code', () => {
    assert.deepEqual(references.map((r) => r.src), ['cat.png', 'empty.png', 'images/logo.svg', 'pasted.png', 'raw.png']);
  });

  test('alt ranges cover exactly the text inside the brackets', () => {
    assert.deepEqual(references.map((r) => altSlice(text, r)), ['a cat', '', 'ref image', 'Alt text', '@<img| src']);
    assert.equal(text.slice(references[0]!.range.start, references[0]!.range.end), '![a cat](cat.png "Title")');
  });

  test('<!-- decorative --> right after an image marks it decorative', () => {
    assert.deepEqual(references.map((r) => r.decorative), [false, false, false, true, false]);
  });

  test('the same image twice gets two distinct ranges', () => {
    const twice = findImageReferences('![x](a.png) ![x](a.png)', 'markdown');
    assert.deepEqual(twice.map((r) => r.range.start), [0, 12]);
  });
});

describe('HTML', () => {
  const text = [
    '<!doctype html><html><body>',
    '<img src="a.png" alt="A dog">',
    "<IMG SRC='b.png' alt=''>",
    '<img src="c.png" alt="" role="presentation">',
    '<input type="image" src="go.png">',
    '<input type="text">',
    '<map><area href="/x" alt="Region"></map>',
    '<img src=d.png alt=unquoted>',
    '<img src="e.png" alt>',
    '<template><img src="t.png"></template>',
    '</body></html>',
  ].join('\n');
  const references = findImageReferences(text, 'html');

  test('finds <img>, <input type=image> and <area>, with case-insensitive tags', () => {
    assert.deepEqual(references.map((r) => `${r.tag}:${r.src ?? '-'}`), ['img:a.png', 'img:b.png', 'img:c.png', 'input:go.png', 'area:-', 'img:d.png', 'img:e.png', 'img:t.png']);
  });

  test('alt values and ranges: quoted, single-quoted, unquoted, valueless, missing', () => {
    assert.deepEqual(references.map((r) => altSlice(text, r)), ['A dog', '', '', '@nput| typ', 'Region', 'unquoted', '', '@<img| src']);
    assert.equal(references[3]!.alt.kind, 'missing');
  });

  test('role="presentation" marks decorative', () => {
    assert.deepEqual(references.map((r) => r.decorative), [false, false, true, false, false, false, false, false]);
  });
});

describe('JSX and TSX', () => {
  const text = [
    'import Image from "next/image";',
    'export function Card({ t }: { t: (k: string) => string }) {',
    '  return (<div>',
    '    <img src="/hero.png" />',
    '    <Image src="/logo.svg" alt="Company logo" width={10} />',
    "    <img src={'/q.png'} alt={\"\"} aria-hidden={true} />",
    '    <img src={dynamicSrc} alt={t("alt")} />',
    '    <picture><img src="/p.png" alt={`Alt text`}></img></picture>',
    '    <Avatar src="/not-an-image-tag.png" />',
    '  </div>);',
    '}',
  ].join('\n');
  const references = findImageReferences(text, 'typescriptreact', 'card.tsx');

  test('finds <img> and <Image> only, with literal sources', () => {
    assert.deepEqual(references.map((r) => `${r.tag}:${r.src ?? '(dynamic)'}`), ['img:/hero.png', 'Image:/logo.svg', 'img:/q.png', 'img:(dynamic)', 'img:/p.png']);
  });

  test('alt kinds and ranges', () => {
    assert.deepEqual(references.map((r) => altSlice(text, r)), ['@<img| src', 'Company logo', '', '<dynamic>', 'Alt text']);
    assert.deepEqual(references.map((r) => r.decorative), [false, false, true, false, false]);
  });

  test('plain JSX parses too', () => {
    assert.equal(findImageReferences('const a = <img src="x.png"/>;', 'javascriptreact', 'a.jsx').length, 1);
  });
});

test('other languages have no references', () => {
  assert.deepEqual(findImageReferences('![x](y.png)', 'plaintext'), []);
});

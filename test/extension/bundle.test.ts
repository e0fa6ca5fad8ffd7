/**
 * Activation stays cheap: dist/extension.js (built by `npm test` before the tests run) leaves the
 * TypeScript compiler in its own chunk, which it requires on the first JSX/TSX parse.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type * as TypeScript from 'typescript';

const dist = path.join(__dirname, '..', '..', 'dist');

test('extension.js holds no TypeScript compiler and loads dist/typescript.js by a relative require', () => {
  const bundle = fs.readFileSync(path.join(dist, 'extension.js'), 'utf8');
  assert.ok(bundle.length < 2 * 2 ** 20, `extension.js is ${(bundle.length / 2 ** 20).toFixed(1)} MB`);
  assert.doesNotMatch(bundle, /function createSourceFile\(/);
  assert.match(bundle, /require\("\.\/typescript\.js"\)/);
});

test('the TypeScript chunk parses TSX on its own', () => {
  const ts = require(path.join(dist, 'typescript.js')) as typeof TypeScript;
  const source = ts.createSourceFile('a.tsx', 'export const A = () => <img src="a.png" alt="" />;', ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX);
  assert.equal(source.statements.length, 1);
  assert.equal(source.text.includes('<img'), true);
});

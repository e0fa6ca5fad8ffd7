/** The Describe panel's webview messages are checked field by field before the host uses them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFromWebview } from '../../src/extension/describe/panelMessages.js';

test('well-formed messages pass through unchanged', () => {
  for (const message of [
    { type: 'ready' },
    { type: 'cancel' },
    { type: 'run', action: 'caption' },
    { type: 'run', action: 'ask', text: 'what colour is the car?' },
    { type: 'copy', text: 'a red car' },
    { type: 'insert', text: 'a red car' },
    { type: 'pastedImage', base64: 'iVBORw0KGgo=', mime: 'image/png', name: 'clipboard.png' },
  ]) {
    assert.deepEqual(parseFromWebview(message), message);
  }
});

test('anything else is dropped: unknown types and verbs, wrong field types, paths, oversized text', () => {
  const rejected: unknown[] = [
    null, 'run', 42, [], {}, { type: 'exec', command: 'rm -rf /' },
    { type: 'run', action: 'question' }, { type: 'run', action: 'toString' }, { type: 'run', action: 'ask', text: 7 },
    { type: 'run', action: 'ask', text: 'x'.repeat(10_001) },
    { type: 'copy' }, { type: 'insert', text: { toString: 'x' } },
    { type: 'pastedImage', base64: 'not base64!', mime: 'image/png', name: 'a.png' },
    { type: 'pastedImage', base64: 'AAAA', mime: 'text/html', name: 'a.png' },
    { type: 'pastedImage', base64: 'AAAA', mime: 'image/png', name: '../../etc/passwd' },
    { type: 'pastedImage', base64: 'AAAA', mime: 'image/png', name: 'C:\\\\Users\\\\me\\\\a.png' },
    { type: 'pastedImage', base64: 'AAAA', mime: 'image/png', name: 'a\u0000.png' },
    { type: 'pastedImage', base64: 'AAAA', mime: 'image/png', name: '..' },
  ];
  for (const message of rejected) assert.equal(parseFromWebview(message), undefined, JSON.stringify(message));
});

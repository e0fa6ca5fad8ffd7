import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { normaliseObjectList, requestForVerb, taskPrompt, VERB_TASKS } from '../../src/common/prompts.js';

test('task prompts follow PaliGemma\'s formats', () => {
  assert.equal(taskPrompt({ task: 'caption' }), 'caption en');
  assert.equal(taskPrompt({ task: 'describe', language: 'fr' }), 'describe fr');
  assert.equal(taskPrompt({ task: 'ocr' }), 'ocr');
  assert.equal(taskPrompt({ task: 'answer', text: '  what is\nthis? ' }), 'answer en what is this?');
  assert.equal(taskPrompt({ task: 'detect', text: 'cat;dog , bird' }), 'detect cat ; dog ; bird');
  assert.equal(taskPrompt({ task: 'segment', text: 'car' }), 'segment car');
  assert.throws(() => taskPrompt({ task: 'answer', text: ' ' }), /question/);
  // Separators alone name no object.
  assert.throws(() => taskPrompt({ task: 'detect', text: ' ; , ' }), /at least one object name/);
});

test('object lists drop empty entries', () => {
  assert.equal(normaliseObjectList(' ; cat ;; '), 'cat');
});

test('each verb of the UI and the CLI has one task', () => {
  assert.equal(taskPrompt(requestForVerb('caption', 'de')), 'caption de');
  assert.equal(taskPrompt(requestForVerb('describe', 'fr')), 'describe fr');
  assert.equal(taskPrompt(requestForVerb('ocr', 'fr')), 'ocr');
  assert.equal(taskPrompt(requestForVerb('ask', 'en', 'what is it?')), 'answer en what is it?');
  assert.equal(taskPrompt(requestForVerb('detect', 'en', 'cat, dog')), 'detect cat ; dog');
  assert.equal(taskPrompt(requestForVerb('segment', 'en', 'cat;dog')), 'segment cat ; dog');
  // The Describe panel's buttons send exactly these verbs.
  const webview = fs.readFileSync(path.join(__dirname, '..', '..', 'src', 'webview', 'describe.ts'), 'utf8');
  const sent = new Set([...webview.matchAll(/run\('(\w+)'\)|wire\('\w+', '\w+', '(\w+)'\)/g)].map((m) => m[1] ?? m[2]));
  assert.deepEqual([...sent].sort(), Object.keys(VERB_TASKS).sort());
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseObjectList, taskPrompt } from '../../src/common/prompts.js';

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

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmax, sampleToken } from '../../../src/engine/generate/sampling.js';
import { TextStream } from '../../../src/engine/generate/textStream.js';
import { SeededRandom } from '../../../src/engine/random.js';

test('greedy picks the first maximum', () => {
  assert.equal(argmax(new Float32Array([0.1, 3, -1, 3])), 1);
});

test('top-k 1 is greedy whatever the temperature', () => {
  const random = new SeededRandom(1, 'test');
  for (let i = 0; i < 20; i++) assert.equal(sampleToken(new Float32Array([1, 5, 2]), { temperature: 2, topK: 1, topP: 1 }, random), 1);
});

test('top-p keeps the smallest set reaching p: only the dominant token here', () => {
  const random = new SeededRandom(2, 'test');
  const logits = new Float32Array([10, 0, 0, 0]);
  for (let i = 0; i < 20; i++) assert.equal(sampleToken(logits, { temperature: 1, topK: 0, topP: 0.9 }, random), 0);
});

test('sampling follows the softmax distribution and is reproducible with a seed', () => {
  const logits = new Float32Array([Math.log(1), Math.log(3)]);
  const draw = (seed: number) => {
    const random = new SeededRandom(seed, 'sampling');
    return Array.from({ length: 4000 }, () => sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, random));
  };
  const ids = draw(5);
  const share = ids.filter((id) => id === 1).length / ids.length;
  assert.ok(Math.abs(share - 0.75) < 0.03, `share of token 1: ${share}`);
  assert.deepEqual(draw(5), ids);
  assert.notDeepEqual(draw(6), ids);
});

test('the text stream holds back an incomplete UTF-8 character until it is complete', () => {
  // What a byte-fallback tokenizer decodes: the euro sign's bytes arrive as tokens 2 and 3.
  const decoded: Record<string, string> = { '1': 'a', '1,2': 'a\uFFFD', '1,2,3': 'a€' };
  const stream = new TextStream((ids) => decoded[ids.join(',')]!);
  assert.equal(stream.push([1]), 'a');
  assert.equal(stream.push([1, 2]), '');
  assert.equal(stream.push([1, 2, 3]), '€');
  assert.equal(stream.finish([1, 2, 3]), '');
});

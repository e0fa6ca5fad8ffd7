import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shiftOffset } from '../../src/common/offsetTracking.js';

const insert = (at: number, length: number) => ({ rangeOffset: at, rangeLength: 0, textLength: length });

test('typing before the spot pushes it on; typing after leaves it', () => {
  assert.equal(shiftOffset(10, [insert(2, 5)]), 15);
  assert.equal(shiftOffset(10, [insert(12, 5)]), 10);
});

test('typing at the spot keeps the typed text before the insertion point', () => {
  assert.equal(shiftOffset(10, [insert(10, 3)]), 13);
});

test('deleting before the spot pulls it back; replacing across it moves it past the replacement', () => {
  assert.equal(shiftOffset(10, [{ rangeOffset: 0, rangeLength: 4, textLength: 0 }]), 6);
  assert.equal(shiftOffset(10, [{ rangeOffset: 8, rangeLength: 5, textLength: 2 }]), 10);
  assert.equal(shiftOffset(10, [insert(1, 1), { rangeOffset: 8, rangeLength: 5, textLength: 2 }]), 11);
});

test('several changes in one event add up, in any order', () => {
  assert.equal(shiftOffset(10, [insert(9, 1), insert(0, 2), insert(20, 7)]), 13);
});

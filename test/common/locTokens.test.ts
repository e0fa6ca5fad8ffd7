import assert from 'node:assert/strict';
import { test } from 'node:test';
import { locTokensToBoxes } from '../../src/common/locTokens.js';

test('loc quadruples become boxes in the original image\'s pixels (y_min, x_min, y_max, x_max over 1024 bins)', () => {
  const boxes = locTokensToBoxes('<loc0256><loc0512><loc0768><loc1023> cat ; <loc0000><loc0000><loc0512><loc0512> dog', 2048, 1024);
  assert.deepEqual(boxes, [
    { label: 'cat', yMin: 256, xMin: 1024, yMax: 768, xMax: 2046 },
    { label: 'dog', yMin: 0, xMin: 0, yMax: 512, xMax: 1024 },
  ]);
});

test('incomplete quadruples and text without locs give no boxes', () => {
  assert.deepEqual(locTokensToBoxes('<loc0001><loc0002><loc0003> cat', 100, 100), []);
  assert.deepEqual(locTokensToBoxes('a cat on a mat', 100, 100), []);
});

test('segmentation output keeps its boxes; the seg tokens are not part of the label', () => {
  const boxes = locTokensToBoxes('<loc0100><loc0200><loc0300><loc0400><seg001><seg002> car', 1024, 1024);
  assert.equal(boxes.length, 1);
  assert.equal(boxes[0]!.xMin, 200);
});

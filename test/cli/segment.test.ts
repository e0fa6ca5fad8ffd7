/**
 * Segmentation from the command line, as dist/pali.js runs: `pali parse` turns an answer into boxes and
 * masks without a model (COCO RLE over the whole image, PNGs with --mask-out), `pali segment` runs the tiny
 * model with a forged VQ-VAE beside it, and a missing VQ-VAE offline is one clear line.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { forgeVae } from '../../src/engine/forge/forgeVae.js';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { pali } from '../helpers/pali.js';

const loc = (...values: number[]) => values.map((v) => `<loc${String(v).padStart(4, '0')}>`).join('');
const seg = (start: number) => Array.from({ length: 16 }, (_, i) => `<seg${String((start + i * 5) % 128).padStart(3, '0')}>`).join('');

describe('pali parse and pali segment', () => {
  const root = tempDir('segment-cli');
  const vae = forgeVae(9, path.join(root, 'vae'));

  test('parse: boxes and masks from an answer, COCO RLE over the whole image, one PNG per object', async () => {
    const image = await writeGradientPng(path.join(root, 'image.png'), 120, 80, 1);
    const answer = `${loc(100, 200, 700, 800)}${seg(3)} cat ; ${loc(0, 0, 1023, 512)}${seg(40)} dog ; ${loc(5, 5)} cut off`;
    const result = pali(['parse', '--image', image, '--text', answer, '--vae', vae, '--json', '--mask-out', path.join(root, 'masks')]);
    assert.equal(result.code, 0, result.stderr);
    const parsed = JSON.parse(result.stdout) as { imageWidth: number; imageHeight: number; segments: { label: string; box: Record<string, number>; mask: { size: number[]; counts: number[] } }[] };
    assert.deepEqual([parsed.imageWidth, parsed.imageHeight], [120, 80]);
    assert.deepEqual(parsed.segments.map((s) => s.label), ['cat', 'dog']);
    assert.deepEqual(parsed.segments[0]!.box, { xMin: 23, yMin: 7, xMax: 93, yMax: 54 });
    for (const s of parsed.segments) {
      assert.deepEqual(s.mask.size, [80, 120]);
      assert.equal(s.mask.counts.reduce((a, b) => a + b, 0), 80 * 120, 'the runs cover the image');
      assert.ok(s.mask.counts.length > 2, 'the mask is not empty');
    }
    assert.match(result.stderr, /^pali: skipped object 3: expected 4 <loc> then 16 <seg> tokens/m);
    const pngs = fs.readdirSync(path.join(root, 'masks')).sort();
    assert.deepEqual(pngs, ['1-cat.png', '2-dog.png']);
    const { info, data } = await sharp(path.join(root, 'masks', '1-cat.png')).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [120, 80]);
    // The PNG and the RLE hold the same pixels: count the ones in both.
    const ones = parsed.segments[0]!.mask.counts.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0);
    let white = 0;
    for (let i = 0; i < data.length; i += info.channels) if (data[i]! > 127) white++;
    assert.equal(white, ones);
  });

  test('parse without a VQ-VAE while offline says how to give one, in one line', async () => {
    const image = await writeGradientPng(path.join(root, 'image2.png'), 20, 20, 2);
    const result = pali(['parse', '--image', image, '--text', `${loc(1, 2, 300, 400)}${seg(0)} cat`, '--cache-dir', path.join(root, 'empty-cache')], { HF_HUB_OFFLINE: '1' });
    assert.equal(result.code, 1);
    assert.match(result.stderr.trim(), /^pali: segmentation needs big_vision's vae-oid\.npz, and HF_HUB_OFFLINE=1 forbids downloading it: pass it with --vae FILE/);
    assert.equal(result.stderr.trim().split('\n').length, 1);
  });

  test('segment runs the model and reports its objects (a random model finds none, and says why)', async () => {
    const tiny = forgeTiny(root, 'tiny', 6);
    forgeVae(2, tiny.checkpointDir);
    const image = await writeGradientPng(path.join(root, 'photo.png'), 64, 48, 3);
    const env = { PALI_CACHE_DIR: tiny.cacheRoot, HF_HUB_OFFLINE: '1' };
    const result = pali(['segment', image, 'cat ; dog', '--model', tiny.checkpointDir, '--dtype', 'fp32', '--device', 'cpu', '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as { text: string; segments: unknown[]; prompt_ids: number[] };
    assert.deepEqual(output.segments, []);
    assert.match(output.text, /<seg\d{3}>/, 'the random answer has <seg> tokens, in no well-formed object');
    // Why there is none: each malformed object in one line, what was expected and what came.
    const reasons = result.stderr.trim().split('\n');
    assert.ok(reasons.length >= 1);
    for (const line of reasons) assert.match(line, /^pali: skipped object \d+: expected 4 <loc> then 16 <seg> tokens and a label, got \d+ <loc> and \d+ <seg>/);
    // A checkpoint forged to answer one segmentation drives the whole path: model, VQ-VAE, mask, PNG.
    const forced = path.join(root, 'forced');
    const answer = `${loc(100, 200, 700, 800)}${seg(1)} cat`;
    assert.equal(pali(['forge', '--preset', 'tiny', '--seed', '1', '--out', forced, '--answer', answer]).code, 0);
    forgeVae(2, forced);
    const segmented = pali(['segment', image, 'cat', '--model', forced, '--dtype', 'fp32', '--device', 'cpu', '--json', '--mask-out', path.join(root, 'forced-masks')], env);
    assert.equal(segmented.code, 0, segmented.stderr);
    const forcedResult = JSON.parse(segmented.stdout) as { text: string; segments: { label: string; box: Record<string, number>; mask: { size: number[] } }[] };
    assert.equal(forcedResult.text, answer);
    assert.deepEqual(forcedResult.segments.map((s) => [s.label, s.box, s.mask.size]), [['cat', { xMin: 12, yMin: 4, xMax: 50, yMax: 32 }, [48, 64]]]);
    assert.deepEqual(fs.readdirSync(path.join(root, 'forced-masks')), ['1-cat.png']);
    // The same masks from the same text, without the model.
    const parsed = JSON.parse(pali(['parse', '--image', image, '--text', answer, '--vae', path.join(forced, 'vae-oid.npz'), '--json']).stdout) as { segments: unknown[] };
    assert.deepEqual(parsed.segments, forcedResult.segments);

    const missing = pali(['segment', image, '', '--model', tiny.checkpointDir], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /segment needs objects: pali segment FILE "cat ; dog"/);
  });
});

describe('only a segment task is read for masks', () => {
  const root = tempDir('segment-only');

  for (const [prompt, answer] of [['detect cat', `${loc(100, 200, 300, 400)} cat`], ['ocr', `the red car${loc(7)}`]] as const) {
    test(`generate --prompt "${prompt}" --json: an answer with <loc> tokens prints no segmentation notes`, async () => {
      const model = path.join(root, prompt.replace(/\W+/g, '-'));
      const forged = pali(['forge', '--preset', 'tiny', '--seed', '1', '--out', model, '--answer', answer]);
      assert.equal(forged.code, 0, forged.stderr);
      const image = await writeGradientPng(path.join(root, 'image.png'), 40, 30, 3);
      const result = pali(['generate', '--model', model, '--image', image, '--prompt', prompt, '--json', '--device', 'cpu', '--dtype', 'fp32'], { PALI_CACHE_DIR: path.join(root, 'cache') });
      assert.equal(result.code, 0, result.stderr);
      const output = JSON.parse(result.stdout) as { text: string; segments: unknown[] };
      assert.equal(output.text, answer);
      assert.deepEqual(output.segments, []);
      assert.equal(result.stderr, '');
    });
  }
});

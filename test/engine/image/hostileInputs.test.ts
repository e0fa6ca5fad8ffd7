/**
 * More than 500 hostile or broken image inputs, generated here from real encoded images
 * (test/helpers/hostileImages.ts), through the engine's decoding and preprocessing: each one gives either
 * a usable image or one clear line that names it, never a crash, a hang over 10 s, another kind of error,
 * or a byte of a file that the input points at.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeImageBytes, decodeImageFile, type RgbImage } from '../../../src/engine/image/decode.js';
import { imageToPixelValues, readImageProcessorConfig } from '../../../src/engine/image/preprocess.js';
import { isUserError } from '../../../src/common/errors.js';
import { tempDir } from '../../helpers/fixtures.js';
import { hostileImages, svg, type HostileInput } from '../../helpers/hostileImages.js';

const LIMIT_MS = 10_000;
const processor = readImageProcessorConfig({ do_resize: true, resample: 3, size: { height: 224, width: 224 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], do_rescale: true, rescale_factor: 1 / 255, do_normalize: true }, 224);

type Outcome = { kind: 'image'; image: RgbImage; ms: number } | { kind: 'error'; message: string; ms: number };

/** Fails with the input's name when decoding takes longer than the limit, instead of stalling the suite. */
function withinLimit<T>(work: Promise<T>, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `${name} hung: no answer within ${LIMIT_MS} ms` })), LIMIT_MS);
  });
  return Promise.race([work, hung]).finally(() => clearTimeout(timer));
}

async function attempt(input: HostileInput, maxPixels?: number): Promise<Outcome> {
  const start = performance.now();
  try {
    const image = await withinLimit(decodeImageBytes(input.bytes, input.name, { maxPixels }), input.name);
    // The rest of the engine's preprocessing must cope too (a 1 x 100000 image resized to 224 x 224).
    const pixels = imageToPixelValues(image, processor);
    assert.equal(pixels.length, 3 * 224 * 224);
    assert.ok(pixels.every(Number.isFinite), `${input.name}: non-finite pixel values`);
    return { kind: 'image', image, ms: performance.now() - start };
  } catch (error) {
    // Anything but our one-line user error is a defect (a TypeError, an assertion, a raw libvips dump).
    assert.ok(isUserError(error), `${input.name}: ${error instanceof Error ? error.stack : String(error)}`);
    return { kind: 'error', message: (error as Error).message, ms: performance.now() - start };
  }
}

describe('hostile image inputs', () => {
  const dir = tempDir('hostile');
  let corpus: Awaited<ReturnType<typeof hostileImages>>;
  const outcomes = new Map<string, Outcome>();
  // About 20 s here; a stall anywhere fails the suite rather than CI's job.
  before(async () => {
    corpus = await hostileImages(dir);
    for (const input of corpus.inputs) outcomes.set(input.name, await attempt(input));
  }, { timeout: 5 * 60_000 });
  after(() => outcomes.clear());

  test('at least 500 inputs, each an image or one clear line that names it, none slower than 10 s', (t) => {
    assert.ok(corpus.inputs.length >= 500, `${corpus.inputs.length} inputs`);
    let images = 0;
    let slowestRejection = { name: '', ms: 0 };
    for (const input of corpus.inputs) {
      const outcome = outcomes.get(input.name)!;
      assert.ok(outcome.ms < LIMIT_MS, `${input.name} took ${outcome.ms.toFixed(0)} ms`);
      if (outcome.kind === 'image') {
        images++;
        assert.notEqual(input.expect, 'error', `${input.name} should be refused`);
        assert.ok(outcome.image.width >= 1 && outcome.image.height >= 1);
        assert.equal(outcome.image.rgb.length, outcome.image.width * outcome.image.height * 3);
      } else {
        assert.notEqual(input.expect, 'image', `${input.name}: ${outcome.message}`);
        assert.ok(!outcome.message.includes('\n'), `${input.name}: more than one line: ${outcome.message}`);
        assert.ok(outcome.message.includes(input.name), `${input.name}: the message does not name it: ${outcome.message}`);
        if (outcome.ms > slowestRejection.ms) slowestRejection = { name: input.name, ms: outcome.ms };
      }
    }
    t.diagnostic(`${corpus.inputs.length} inputs: ${images} images, ${corpus.inputs.length - images} clear errors; slowest rejection ${slowestRejection.name} in ${slowestRejection.ms.toFixed(0)} ms`);
  });

  test('bombs are refused by their declared size, before decoding', () => {
    for (const name of ['bomb-100000x100000.png', 'bomb-65500x65500.jpg', 'huge-canvas.svg']) {
      const outcome = outcomes.get(name)!;
      assert.equal(outcome.kind, 'error', name);
      assert.match((outcome as { message: string }).message, /too large/, name);
    }
  });

  test('an animated GIF of 3000 frames gives its first frame', () => {
    const outcome = outcomes.get('animated-3000-frames.gif')!;
    assert.equal(outcome.kind, 'image');
    assert.deepEqual([(outcome as { image: RgbImage }).image.width, (outcome as { image: RgbImage }).image.height], [8, 8]);
  });

  test('an SVG gets no data from the files or URLs it points at', () => {
    // The secret PNG is pure red; the SVGs' own pixels are white.
    const drawsRed = (image: RgbImage) => image.rgb.some((v, i) => i % 3 === 0 && v === 255 && image.rgb[i + 1] === 0 && image.rgb[i + 2] === 0);
    const control = outcomes.get('data-url.svg')!;
    assert.ok(control.kind === 'image' && drawsRed(control.image), 'the same PNG carried in the SVG is drawn');
    for (const name of ['file-href.svg', 'xlink-file-href.svg', 'relative-href.svg']) {
      const outcome = outcomes.get(name)!;
      if (outcome.kind === 'image') assert.ok(!drawsRed(outcome.image), `${name} drew the secret file`);
    }
    // The external entity is not expanded: the text renders as the empty entity would, or the SVG fails;
    // the same text written in the SVG does draw glyphs, so an expanded entity would show.
    const allWhite = (image: RgbImage) => image.rgb.every((v) => v === 255);
    const textControl = outcomes.get('text-control.svg')!;
    assert.ok(textControl.kind === 'image' && !allWhite(textControl.image), 'text renders at this size');
    const withEntity = outcomes.get('xxe.svg')!;
    if (withEntity.kind === 'image') assert.ok(allWhite(withEntity.image), 'xxe.svg rendered text from the secret file');
    // The secret text is CSS that would make the rectangle red; /etc/passwd is no image, so nothing is drawn.
    for (const name of ['css-import.svg', 'passwd-href.svg']) {
      const outcome = outcomes.get(name)!;
      if (outcome.kind === 'image') assert.ok(allWhite(outcome.image), `${name} drew something from a file`);
    }
  });

  test('SVGs read from disk beside the secret, and one pointing at a listening server, fetch nothing', async () => {
    const drawsRed = (image: RgbImage) => image.rgb.some((v, i) => i % 3 === 0 && v === 255 && image.rgb[i + 1] === 0 && image.rgb[i + 2] === 0);
    const secretDir = path.dirname(corpus.secretPng);
    // From a file, a relative href has a base location: the folder that holds the secret.
    const beside = path.join(secretDir, 'beside-the-secret.svg');
    fs.writeFileSync(beside, svg(`<image href="${path.basename(corpus.secretPng)}" width="32" height="32"/>`));
    const control = path.join(secretDir, 'carries-its-own.svg');
    fs.writeFileSync(control, svg(`<image href="data:image/png;base64,${fs.readFileSync(corpus.secretPng).toString('base64')}" width="32" height="32"/>`));
    assert.ok(drawsRed(await decodeImageFile(control)), 'an SVG file that carries the PNG draws it');
    const read = async (decode: () => Promise<RgbImage>) => {
      try {
        return await decode();
      } catch (error) {
        assert.ok(isUserError(error), String(error));
        return null;
      }
    };
    const fromBeside = await read(() => decodeImageFile(beside));
    if (fromBeside) assert.ok(!drawsRed(fromBeside), 'beside-the-secret.svg drew the secret file');
    // A server that serves the secret and counts requests: an SVG's href must never reach it.
    let requests = 0;
    const server = http.createServer((_request, response) => {
      requests++;
      response.writeHead(200, { 'content-type': 'image/png' }).end(fs.readFileSync(corpus.secretPng));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.png`;
      const remote = svg(`<image href="${url}" width="32" height="32"/><image xlink:href="${url}" x="0" width="16" height="16"/>`);
      const remoteFile = path.join(secretDir, 'remote-href.svg');
      fs.writeFileSync(remoteFile, remote);
      for (const image of [await read(() => decodeImageBytes(remote, 'remote-href.svg')), await read(() => decodeImageFile(remoteFile))]) {
        if (image) assert.ok(!drawsRed(image), 'an http href was drawn');
      }
      assert.equal(requests, 0, 'the server was asked for the image');
    } finally {
      server.close();
    }
  });

  test('maxImagePixels is honoured for every format', async () => {
    for (const input of corpus.inputs.filter((i) => i.name.startsWith('valid.'))) {
      const outcome = await attempt(input, 64 * 48 - 1);
      assert.equal(outcome.kind, 'error', input.name);
      assert.match((outcome as { message: string }).message, new RegExp(`${input.name.replace('.', '\\.')} is too large \\(over 3071 pixels\\)`));
      assert.equal((await attempt(input, 64 * 48)).kind, 'image', input.name);
    }
  });
});

/**
 * The model download path with the real @huggingface/hub client against a loopback server that speaks the
 * hub's HTTP API (tree listing, resolve with byte ranges): the hub itself is unreachable from here.
 * Resume, the size and sha256 checks, include filters and cancellation.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DownloadError, downloadRepo } from '../../src/extension/models/modelDownloader.js';
import { MODEL_PRESETS } from '../../src/extension/models/modelPresets.js';
import { tempDir } from '../helpers/fixtures.js';
import { startLoopbackHub, type HubFile, type LoopbackHub } from '../helpers/loopbackHub.js';

describe('model downloads through @huggingface/hub', () => {
  const files = new Map<string, HubFile>();
  let hub: LoopbackHub;
  let hubUrl: string;

  before(async () => {
    const weights = Buffer.alloc(300_000);
    for (let i = 0; i < weights.length; i++) weights[i] = (i * 31) % 251;
    files.set('config.json', { bytes: Buffer.from('{"model_type":"paligemma"}') });
    files.set('model.safetensors', { bytes: weights });
    files.set('README.md', { bytes: Buffer.from('# not wanted') });
    hub = await startLoopbackHub();
    hub.repos.set('google/tiny', files);
    hubUrl = hub.url;
  });
  after(() => hub.close());

  test('downloads the included files, verified, and skips the rest', async () => {
    const destination = tempDir('download');
    const phases: string[] = [];
    await downloadRepo({ repo: 'google/tiny', include: /\.(json|safetensors)$/, destination, hubUrl, onProgress: (p) => phases.push(p.phase) });
    assert.deepEqual(fs.readFileSync(path.join(destination, 'model.safetensors')), files.get('model.safetensors')!.bytes);
    assert.ok(fs.existsSync(path.join(destination, 'config.json')));
    assert.ok(!fs.existsSync(path.join(destination, 'README.md')));
    assert.ok(phases.includes('verifying'));
  });

  test('a revision downloads that branch, not main (PaliGemma 1 presets fetch bfloat16)', async () => {
    const bf16Weights = Buffer.alloc(150_000, 7);
    hub.repos.set('google/tiny@bfloat16', new Map([
      ['config.json', { bytes: Buffer.from('{"model_type":"paligemma","torch_dtype":"bfloat16"}') }],
      ['model.safetensors', { bytes: bf16Weights }],
    ]));
    const destination = tempDir('revision');
    await downloadRepo({ repo: 'google/tiny', revision: 'bfloat16', include: /\.(json|safetensors)$/, destination, hubUrl });
    assert.deepEqual(fs.readFileSync(path.join(destination, 'model.safetensors')), bf16Weights);
    assert.match(fs.readFileSync(path.join(destination, 'config.json'), 'utf8'), /bfloat16/);
    const gemma1 = MODEL_PRESETS.filter((preset) => preset.repo.startsWith('google/paligemma-'));
    assert.ok(gemma1.length > 0 && gemma1.every((preset) => preset.revision === 'bfloat16'));
  });

  test('an interrupted download resumes from its .part file with a byte range', async () => {
    const destination = tempDir('resume');
    const weights = files.get('model.safetensors')!.bytes;
    fs.writeFileSync(path.join(destination, 'model.safetensors.part'), weights.subarray(0, 100_000));
    hub.rangeStarts.length = 0;
    await downloadRepo({ repo: 'google/tiny', destination, hubUrl, include: /\.(json|safetensors)$/ });
    assert.ok(hub.rangeStarts.includes(100_000), `range starts requested: ${hub.rangeStarts.join(', ')}`);
    assert.deepEqual(fs.readFileSync(path.join(destination, 'model.safetensors')), weights);
  });

  test('a full disk is reported as such, nothing half-written is used, and the next attempt completes', { skip: !fs.existsSync('/dev/full') && 'needs /dev/full' }, async () => {
    const destination = tempDir('disk-full');
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    fs.symlinkSync('/dev/full', path.join(destination, 'model.safetensors.part'));
    await assert.rejects(
      downloadRepo({ repo: 'google/tiny', destination, hubUrl, include: /\.(json|safetensors)$/ }),
      (error) => error instanceof DownloadError && error.kind === 'disk-full' && /the disk is full: model\.safetensors needs about 1 MB more/.test(error.message),
    );
    assert.ok(!fs.existsSync(path.join(destination, 'model.safetensors')), 'no model file in use');
    fs.rmSync(path.join(destination, 'model.safetensors.part'));
    await downloadRepo({ repo: 'google/tiny', destination, hubUrl, include: /\.(json|safetensors)$/ });
    assert.deepEqual(fs.readFileSync(path.join(destination, 'model.safetensors')), files.get('model.safetensors')!.bytes);
  });

  test('a file whose sha256 differs from the hub\'s is deleted and reported', async () => {
    const destination = tempDir('checksum');
    files.get('model.safetensors')!.announcedSha = '0'.repeat(64);
    try {
      await assert.rejects(downloadRepo({ repo: 'google/tiny', destination, hubUrl }), (error) => error instanceof DownloadError && error.kind === 'checksum');
      assert.ok(!fs.existsSync(path.join(destination, 'model.safetensors.part')));
      assert.ok(!fs.existsSync(path.join(destination, 'model.safetensors')));
    } finally {
      delete files.get('model.safetensors')!.announcedSha;
    }
  });

  test('cancelling stops the download and keeps the part for next time', async () => {
    const destination = tempDir('cancel');
    const controller = new AbortController();
    hub.slow = true;
    try {
      await assert.rejects(
        downloadRepo({
          repo: 'google/tiny', destination, hubUrl, signal: controller.signal, include: /\.(json|safetensors)$/,
          onProgress: (p) => {
            if (p.file === 'model.safetensors' && p.done - 26 > 20_000) controller.abort();
          },
        }),
        (error) => error instanceof Error && error.name === 'AbortError',
      );
    } finally {
      hub.slow = false;
    }
    const part = path.join(destination, 'model.safetensors.part');
    assert.ok(fs.existsSync(part) && fs.statSync(part).size > 0 && fs.statSync(part).size < 300_000);
  });

  test('a repository without config.json is not a model', async () => {
    await assert.rejects(downloadRepo({ repo: 'google/tiny', destination: tempDir('x'), hubUrl, include: /README/ }), (error) => error instanceof DownloadError && error.kind === 'not-a-model');
  });
});

describe('gated repositories', () => {
  let hub: LoopbackHub;
  before(async () => {
    hub = await startLoopbackHub();
    hub.repos.set('google/gated', new Map([['config.json', { bytes: Buffer.from('{"model_type":"paligemma"}') }]]));
    hub.gated.set('google/gated', 'hf_secret');
  });
  after(() => hub.close());

  test('are refused without the token and downloaded with it', async () => {
    await assert.rejects(downloadRepo({ repo: 'google/gated', destination: tempDir('gated'), hubUrl: hub.url }), /401|restricted|gated/i);
    const destination = tempDir('gated');
    await downloadRepo({ repo: 'google/gated', destination, hubUrl: hub.url, accessToken: 'hf_secret' });
    assert.equal(fs.readFileSync(path.join(destination, 'config.json'), 'utf8'), '{"model_type":"paligemma"}');
  });
});

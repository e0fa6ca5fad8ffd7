/**
 * pali/segmentAnswer: the engine process turns another backend's segmentation answer into masks with the
 * VQ-VAE alone (the remote backend's path), with no model loaded. Spawned as the extension spawns it; the
 * masks must equal what `pali parse` gives for the same text and image size.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ResponseError, StreamMessageReader, StreamMessageWriter, createMessageConnection, type MessageConnection } from 'vscode-jsonrpc/node';
import { SegmentAnswerRequest, StatusRequest, USER_ERROR_CODE } from '../../../src/protocol.js';
import { forgeVae } from '../../../src/engine/forge/forgeVae.js';
import { tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { PALI_CLI as CLI, pali } from '../../helpers/pali.js';

const loc = (...values: number[]) => values.map((v) => `<loc${String(v).padStart(4, '0')}>`).join('');
const seg = (start: number) => Array.from({ length: 16 }, (_, i) => `<seg${String((start + i * 7) % 128).padStart(3, '0')}>`).join('');

describe('pali serve: masks for an answer from elsewhere', () => {
  const root = tempDir('segment-answer');
  const vae = forgeVae(4, path.join(root, 'vae'));
  let child: ChildProcess;
  let connection: MessageConnection;

  before(() => {
    child = spawn(process.execPath, [CLI, 'serve', '--stdio'], {
      env: { ...process.env, PALI_CACHE_DIR: path.join(root, 'cache'), HF_HUB_OFFLINE: '1' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    connection.listen();
  });

  after(() => {
    connection?.dispose();
    child?.kill();
  });

  test('the masks equal `pali parse` on the same answer, and no model is loaded for them', async () => {
    const image = await writeGradientPng(path.join(root, 'image.png'), 90, 70, 1);
    const answer = `${loc(100, 200, 700, 800)}${seg(3)} cat ; ${loc(0, 0, 1023, 1023)}${seg(50)} sky ; ${loc(9, 9)} cut`;
    const result = await connection.sendRequest(SegmentAnswerRequest, { text: answer, imageWidth: 90, imageHeight: 70, vaePath: vae });
    const parsed = pali(['parse', '--image', image, '--text', answer, '--vae', vae, '--json']);
    assert.equal(parsed.code, 0, parsed.stderr);
    assert.deepEqual(result.segments, (JSON.parse(parsed.stdout) as { segments: unknown[] }).segments);
    assert.deepEqual(result.segments.map((s) => s.label), ['cat', 'sky']);
    assert.equal(result.notes.length, 1);
    assert.match(result.notes[0]!, /^object 3: expected 4 <loc> then 16 <seg> tokens/);
    assert.equal((await connection.sendRequest(StatusRequest)).model, null);
  });

  test('an answer without objects needs no VQ-VAE; a missing one offline and a bad size are user errors', async () => {
    const none = await connection.sendRequest(SegmentAnswerRequest, { text: 'no objects here', imageWidth: 10, imageHeight: 10 });
    assert.deepEqual(none, { segments: [], notes: ['object 1: no <loc> or <seg> tokens in "no objects here"'] });
    await assert.rejects(
      connection.sendRequest(SegmentAnswerRequest, { text: `${loc(1, 2, 3, 4)}${seg(0)} cat`, imageWidth: 10, imageHeight: 10 }),
      (error) => error instanceof ResponseError && error.code === USER_ERROR_CODE && /vae-oid\.npz.*HF_HUB_OFFLINE=1/.test(error.message),
    );
    await assert.rejects(
      connection.sendRequest(SegmentAnswerRequest, { text: 'x', imageWidth: 0, imageHeight: 2.5 }),
      (error) => error instanceof ResponseError && error.code === USER_ERROR_CODE && /positive whole pixels, not 0x2\.5/.test(error.message),
    );
  });
});

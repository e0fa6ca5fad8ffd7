/**
 * Finding the mask VQ-VAE: a named file, one beside the model, the cache, else a download that is kept only
 * when its size and sha256 are the pinned ones (here against a loopback server).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { forgeVae } from '../../../src/engine/forge/forgeVae.js';
import { downloadChecked, findVaeFile, VAE_FILE_NAME, VAE_HUB_PATH } from '../../../src/engine/segmentation/vaeFile.js';
import { tempDir } from '../../helpers/fixtures.js';

describe('the mask VQ-VAE file', () => {
  const root = tempDir('vae-file');
  let server: http.Server;
  let url: string;
  let bytes: Buffer;
  let requests = 0;

  before(async () => {
    bytes = fs.readFileSync(forgeVae(4, path.join(root, 'forged')));
    server = http.createServer((request, response) => {
      requests++;
      if (request.url === VAE_HUB_PATH) response.writeHead(200).end(bytes);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server?.close());

  test('a named file wins, then one beside the model, then the cache', async () => {
    const named = path.join(root, 'forged', VAE_FILE_NAME);
    assert.equal(await findVaeFile({ vaeFile: named }), named);
    await assert.rejects(findVaeFile({ vaeFile: path.join(root, 'nope.npz') }), /nope\.npz: no such file/);
    const model = path.join(root, 'model');
    forgeVae(5, model);
    assert.equal(await findVaeFile({ modelDir: model, cacheRoot: path.join(root, 'cache') }), path.join(model, VAE_FILE_NAME));
    const cache = path.join(root, 'cache-with-vae');
    forgeVae(6, path.join(cache, 'vae'));
    assert.equal(await findVaeFile({ modelDir: path.join(root, 'empty-model'), cacheRoot: cache }), path.join(cache, 'vae', VAE_FILE_NAME));
  });

  test('a download is kept only when its size and sha256 match, through a temporary name', async () => {
    const target = path.join(root, 'downloaded', VAE_FILE_NAME);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await downloadChecked({ url: `${url}${VAE_HUB_PATH}`, sha256, size: bytes.length }, target);
    assert.deepEqual(fs.readFileSync(target), bytes);
    const wrong = path.join(root, 'wrong', VAE_FILE_NAME);
    await assert.rejects(downloadChecked({ url: `${url}${VAE_HUB_PATH}`, sha256: '0'.repeat(64), size: bytes.length }, wrong), /not the expected file .* not kept/);
    await assert.rejects(downloadChecked({ url: `${url}${VAE_HUB_PATH}`, sha256, size: 100 }, wrong), /larger than the expected 100 bytes: not kept/);
    assert.deepEqual(fs.existsSync(path.dirname(wrong)) ? fs.readdirSync(path.dirname(wrong)) : [], [], 'nothing left behind');
    await assert.rejects(downloadChecked({ url: `${url}/missing`, sha256, size: 1 }, wrong), /answered 404: pass vae-oid\.npz with --vae FILE/);
  });

  test('with nothing found it downloads from HF_ENDPOINT, refusing a file that is not the pinned one; offline it says what to do', async () => {
    const saved = { endpoint: process.env.HF_ENDPOINT, offline: process.env.HF_HUB_OFFLINE };
    try {
      process.env.HF_ENDPOINT = url;
      const before = requests;
      // The forged file is not Google's: the pinned sha256 refuses it, and the cache stays empty.
      await assert.rejects(findVaeFile({ cacheRoot: path.join(root, 'fresh') }), /not the expected file/);
      assert.equal(requests, before + 1);
      assert.equal(fs.existsSync(path.join(root, 'fresh', 'vae', VAE_FILE_NAME)), false);
      process.env.HF_HUB_OFFLINE = '1';
      await assert.rejects(findVaeFile({ cacheRoot: path.join(root, 'fresh') }), /HF_HUB_OFFLINE=1 forbids downloading it: pass it with --vae FILE/);
    } finally {
      process.env.HF_ENDPOINT = saved.endpoint;
      if (saved.offline === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = saved.offline;
      if (saved.endpoint === undefined) delete process.env.HF_ENDPOINT;
    }
  });
});

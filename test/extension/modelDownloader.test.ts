/**
 * The model download path with the real @huggingface/hub client against a loopback server that speaks the
 * hub's HTTP API (tree listing, resolve with byte ranges): the hub itself is unreachable from here.
 * Resume, the size and sha256 checks, include filters and cancellation.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DownloadError, downloadRepo } from '../../src/extension/models/modelDownloader.js';
import { tempDir } from '../helpers/fixtures.js';

interface HubFile {
  bytes: Buffer;
  /** The sha256 the listing announces (defaults to the real one). */
  announcedSha?: string;
}

describe('model downloads through @huggingface/hub', () => {
  const files = new Map<string, HubFile>();
  const rangeStarts: number[] = [];
  let server: http.Server;
  let hubUrl: string;
  let slowDown = false;

  before(async () => {
    const weights = Buffer.alloc(300_000);
    for (let i = 0; i < weights.length; i++) weights[i] = (i * 31) % 251;
    files.set('config.json', { bytes: Buffer.from('{"model_type":"paligemma"}') });
    files.set('model.safetensors', { bytes: weights });
    files.set('README.md', { bytes: Buffer.from('# not wanted') });
    server = http.createServer((request, response) => {
      const url = new URL(request.url!, 'http://127.0.0.1');
      if (url.pathname === '/api/models/google/tiny/tree/main') {
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify([...files].map(([name, file]) => ({
          type: 'file', path: name, size: file.bytes.length, oid: 'git-oid',
          ...(name.endsWith('.safetensors') ? { lfs: { oid: file.announcedSha ?? createHash('sha256').update(file.bytes).digest('hex'), size: file.bytes.length, pointerSize: 130 } } : {}),
        }))));
        return;
      }
      const prefix = '/google/tiny/resolve/main/';
      const file = url.pathname.startsWith(prefix) ? files.get(url.pathname.slice(prefix.length)) : undefined;
      if (!file) {
        response.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end();
        return;
      }
      const [, from, to] = /bytes=(\d+)-(\d*)/.exec(request.headers.range ?? '') ?? [];
      const start = Number(from ?? 0);
      const end = to ? Number(to) : file.bytes.length - 1;
      if (start > 0 || end > 0) rangeStarts.push(start);
      response.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${file.bytes.length}`, ETag: '"etag"', 'Content-Length': end - start + 1 });
      const body = file.bytes.subarray(start, end + 1);
      if (!slowDown) return void response.end(body);
      // Dribble the body so a test can cancel mid-file.
      let offset = 0;
      const timer = setInterval(() => {
        if (offset >= body.length || response.destroyed) {
          clearInterval(timer);
          response.end();
          return;
        }
        response.write(body.subarray(offset, offset + 4096));
        offset += 4096;
      }, 5);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  test('downloads the included files, verified, and skips the rest', async () => {
    const destination = tempDir('download');
    const phases: string[] = [];
    await downloadRepo({ repo: 'google/tiny', include: /\.(json|safetensors)$/, destination, hubUrl, onProgress: (p) => phases.push(p.phase) });
    assert.deepEqual(fs.readFileSync(path.join(destination, 'model.safetensors')), files.get('model.safetensors')!.bytes);
    assert.ok(fs.existsSync(path.join(destination, 'config.json')));
    assert.ok(!fs.existsSync(path.join(destination, 'README.md')));
    assert.ok(phases.includes('verifying'));
  });

  test('an interrupted download resumes from its .part file with a byte range', async () => {
    const destination = tempDir('resume');
    const weights = files.get('model.safetensors')!.bytes;
    fs.writeFileSync(path.join(destination, 'model.safetensors.part'), weights.subarray(0, 100_000));
    rangeStarts.length = 0;
    await downloadRepo({ repo: 'google/tiny', destination, hubUrl, include: /\.(json|safetensors)$/ });
    assert.ok(rangeStarts.includes(100_000), `range starts requested: ${rangeStarts.join(', ')}`);
    assert.deepEqual(fs.readFileSync(path.join(destination, 'model.safetensors')), weights);
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
    slowDown = true;
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
      slowDown = false;
    }
    const part = path.join(destination, 'model.safetensors.part');
    assert.ok(fs.existsSync(part) && fs.statSync(part).size > 0 && fs.statSync(part).size < 300_000);
  });

  test('a repository without config.json is not a model', async () => {
    await assert.rejects(downloadRepo({ repo: 'google/tiny', destination: tempDir('x'), hubUrl, include: /README/ }), (error) => error instanceof DownloadError && error.kind === 'not-a-model');
  });
});

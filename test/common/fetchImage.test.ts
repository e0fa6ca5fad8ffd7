/**
 * Remote images for alt text, against real local HTTP servers: the image arrives; oversized bodies (with
 * or without a length), slow servers, redirects to file: and to private addresses, and redirect loops are
 * refused with a clear reason.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fetchImage, isPrivateAddress } from '../../src/common/fetchImage.js';

describe('fetching a remote image', () => {
  let server: http.Server;
  let base: string;
  const image = Buffer.from('\x89PNG fake image bytes');
  before(async () => {
    server = http.createServer((request, response) => {
      const url = new URL(request.url!, 'http://x');
      switch (url.pathname) {
        case '/image.png':
          return void response.writeHead(200, { 'content-type': 'image/png' }).end(image);
        case '/huge-declared':
          return void response.writeHead(200, { 'content-length': String(30 * 2 ** 20) }).end();
        case '/huge-streamed': {
          // No length: 64 KB chunks until the client stops reading.
          response.writeHead(200);
          const chunk = Buffer.alloc(64 * 1024);
          const write = () => {
            while (response.write(chunk)) if (response.destroyed) return;
            response.once('drain', write);
          };
          response.on('close', () => response.removeAllListeners('drain'));
          return write();
        }
        case '/slow':
          return; // never answers
        case '/to-file':
          return void response.writeHead(302, { location: 'file:///etc/passwd' }).end();
        case '/to-private':
          return void response.writeHead(302, { location: 'http://10.0.0.7/image.png' }).end();
        case '/to-metadata':
          return void response.writeHead(302, { location: 'http://metadata.internal/latest' }).end();
        case '/to-loopback-v6':
          return void response.writeHead(301, { location: 'http://[::1]:1/image.png' }).end();
        case '/loop':
          return void response.writeHead(302, { location: '/loop' }).end();
        default:
          return void response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('an image arrives whole', async () => {
    assert.deepEqual(Buffer.from(await fetchImage(`${base}/image.png`)), image);
  });

  test('more than the limit is refused, whether the length is declared or not', async () => {
    await assert.rejects(fetchImage(`${base}/huge-declared`, { maxBytes: 2 ** 20 }), /larger than 1 MB/);
    await assert.rejects(fetchImage(`${base}/huge-streamed`, { maxBytes: 2 ** 20 }), /larger than 1 MB/);
  });

  // The test's own timeout is the hang guard: the request must give up long before it.
  test('a server that does not answer is given up on', { timeout: 10_000 }, async () => {
    await assert.rejects(fetchImage(`${base}/slow`, { timeoutMs: 300 }), { message: `${base}/slow did not answer within 0.3 s` });
  });

  test('no redirect to another scheme, a private or local address, or round in circles', async () => {
    await assert.rejects(fetchImage(`${base}/to-file`), /redirects to a file: address/);
    await assert.rejects(fetchImage(`${base}/to-private`), /redirects to a private or local address \(10\.0\.0\.7\)/);
    // A name that resolves to a link-local address (as cloud metadata services do) is refused too.
    await assert.rejects(fetchImage(`${base}/to-metadata`, { resolve: async () => ['169.254.169.254'] }), /private or local address \(metadata\.internal\)/);
    await assert.rejects(fetchImage(`${base}/to-loopback-v6`), /private or local address/);
    await assert.rejects(fetchImage(`${base}/loop`), /redirects more than 3 times/);
    await assert.rejects(fetchImage('ftp://example.com/a.png'), /ftp: addresses, which are not fetched/);
  });

  test('private, loopback and link-local addresses are recognised, public ones are not', () => {
    for (const address of ['10.1.2.3', '127.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:10.0.0.1']) {
      assert.equal(isPrivateAddress(address), true, address);
    }
    for (const address of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(isPrivateAddress(address), false, address);
    }
  });
});

/**
 * Where the shared engine listens (src/engine/shared/endpoint.ts): a socket file on Unix; on Windows a named
 * pipe whose name only the token's reader can know, since pipes share one namespace across users.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { listenPath, sharedEndpoint } from '../../../src/engine/shared/endpoint.js';
import { PROTOCOL_VERSION } from '../../../src/protocol.js';
import { tempDir } from '../../helpers/fixtures.js';

const endpoint = sharedEndpoint(path.join(tempDir('endpoint'), 'cache'));
const token = 'a'.repeat(64);

test('on Unix clients connect to the socket file, whatever the token', () => {
  assert.equal(listenPath(endpoint, token, 'linux'), endpoint.socket);
  assert.equal(listenPath(endpoint, 'b'.repeat(64), 'darwin'), endpoint.socket);
});

test('on Windows the pipe is named from the token: another token, another pipe; the token itself not in the name', () => {
  const pipe = listenPath(endpoint, token, 'win32');
  assert.match(pipe, new RegExp(`^\\\\\\\\\\.\\\\pipe\\\\paligemma-v${PROTOCOL_VERSION}-[0-9a-f]{32}$`));
  assert.equal(listenPath(endpoint, token, 'win32'), pipe, 'the engine and its clients derive the same name');
  assert.notEqual(listenPath(endpoint, 'b'.repeat(64), 'win32'), pipe);
  assert.ok(!pipe.includes(token.slice(0, 16)), 'the name does not give the token away');
});

/** What keeps web pages out of `pali serve` (engine/http/browserGuard.ts), case by case. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { browserGuard, isLoopbackHost } from '../../../src/engine/http/browserGuard.js';

test('loopback names', () => {
  for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.8.9.10', '::1', '[::1]', 'app.localhost']) assert.equal(isLoopbackHost(host), true, host);
  for (const host of ['0.0.0.0', '192.168.1.4', 'localhost.attacker.example', 'attacker.example', '127.0.0.1.nip.io', '']) assert.equal(isLoopbackHost(host), false, host);
});

test('on a loopback bind, only loopback names and IP addresses may be the Host', () => {
  const guard = browserGuard('127.0.0.1', []);
  for (const host of ['localhost:8000', '127.0.0.1:8000', '[::1]:8000', '::1', 'localhost', '10.1.2.3:8000']) assert.equal(guard.refusal(host, undefined), null, host);
  for (const host of ['attacker.example:8000', 'localhost.attacker.example', '127.0.0.1.nip.io:8000', '', undefined]) {
    assert.match(guard.refusal(host, undefined) ?? '', /is not this machine's loopback/, String(host));
  }
  // Bound beyond loopback, a LAN name is the normal Host.
  assert.equal(browserGuard('0.0.0.0', []).refusal('workstation.lan:8000', undefined), null);
});

test('an Origin is served when it is a loopback page or listed, and * lists every page', () => {
  const guard = browserGuard('127.0.0.1', ['https://app.example/']);
  const host = '127.0.0.1:8000';
  for (const origin of ['http://localhost:5173', 'http://127.0.0.1:3000', 'https://[::1]:8443', 'https://app.example', 'HTTPS://APP.EXAMPLE']) assert.equal(guard.refusal(host, origin), null, origin);
  for (const origin of ['https://attacker.example', 'http://localhost.attacker.example', 'null', 'file://', 'https://app.example.attacker.example', 'ftp://localhost']) {
    assert.match(guard.refusal(host, origin) ?? '', /^requests from web pages at .* are refused: start pali serve with --allow-origin/, origin);
  }
  assert.equal(browserGuard('127.0.0.1', ['*']).refusal(host, 'https://anything.example'), null);
  // A listed origin does not lift the Host check: a rebinding page may also be a listed one's name.
  assert.match(browserGuard('127.0.0.1', ['*']).refusal('attacker.example', 'https://attacker.example') ?? '', /not this machine's loopback/);
});

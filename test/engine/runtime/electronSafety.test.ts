/**
 * Electron's V8 memory cage refuses ArrayBuffers that point at native memory (electron/electron#35801).
 * No Electron runs here, so check the property the engine relies on in the native addons we ship: every
 * onnxruntime-node binding creates its output tensors in V8-owned ArrayBuffers (a copy), never external
 * ones, and sharp falls back to a copied Buffer where external buffers are refused. Their imported N-API
 * symbols say which calls each binary can make. An upgrade that changes this turns the test red, and
 * whoever upgrades must then check the engine under Electron (and keep the self test's fallback).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const modules = path.join(__dirname, '..', '..', '..', 'node_modules');

function nativeBinaries(folder: string): string[] {
  if (!fs.existsSync(folder)) return [];
  return fs.readdirSync(folder, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.node')).map((file) => path.join(folder, file));
}

test('every shipped onnxruntime-node binding returns outputs in V8-owned ArrayBuffers', () => {
  const bindings = nativeBinaries(path.join(modules, 'onnxruntime-node', 'bin'));
  assert.ok(bindings.length >= 4, `found bindings: ${bindings.join(', ')}`);
  for (const binding of bindings) {
    const bytes = fs.readFileSync(binding);
    assert.ok(bytes.includes('napi_create_arraybuffer'), `${binding} creates V8-owned ArrayBuffers`);
    assert.ok(!bytes.includes('napi_create_external_arraybuffer'), `${binding} must not wrap native memory in ArrayBuffers`);
  }
});

test('sharp copies its output Buffers where external buffers are refused', () => {
  const binaries = nativeBinaries(path.join(modules, '@img'));
  assert.ok(binaries.length >= 1, 'sharp has a native binary for this platform');
  for (const binary of binaries) {
    assert.ok(fs.readFileSync(binary).includes('napi_create_buffer_copy'), `${binary} has the copying fallback`);
  }
});

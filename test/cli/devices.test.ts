/**
 * Devices as users have them, through the built `pali`: a machine whose Vulkan drivers are only software
 * ones (Mesa's llvmpipe, as mesa-vulkan-drivers installs it) never runs the model on WebGPU under
 * `--device auto`, says why in one plain line, and prints nothing from a native library.
 *
 * The drivers are named to the Vulkan loader by VK_ICD_FILENAMES, as on any machine; `auto` decides from
 * the manifests alone, so it never loads the loader (the one put on LD_LIBRARY_PATH here is an empty
 * file, which would fail loudly if anything loaded it).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { pali } from '../helpers/pali.js';

describe('a machine whose only Vulkan driver is llvmpipe', { skip: process.platform !== 'linux' ? 'Vulkan drivers are read from manifests on Linux' : false }, () => {
  const root = tempDir('devices');
  const loaderDir = path.join(root, 'lib');
  const manifest = path.join(root, 'lvp_icd.x86_64.json');
  let env: Record<string, string>;
  let model: string;
  let image: string;
  before(async () => {
    fs.mkdirSync(loaderDir);
    fs.writeFileSync(path.join(loaderDir, 'libvulkan.so.1'), '');
    fs.writeFileSync(manifest, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: '/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so', api_version: '1.3.0' } }));
    env = { VK_ICD_FILENAMES: manifest, LD_LIBRARY_PATH: loaderDir, PALI_CACHE_DIR: path.join(root, 'cache') };
    model = forgeTiny(root, 'tiny', 3).checkpointDir;
    image = await writeGradientPng(path.join(root, 'image.png'), 40, 30);
  });

  test('pali devices: WebGPU is skipped by auto, its adapter named as software', () => {
    const result = pali(['devices', '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const report = JSON.parse(result.stdout) as { devices: { device: string; usedByAuto: boolean; reason?: string; adapters: { name: string; software: boolean }[]; dtype: string }[]; auto: string };
    const webgpu = report.devices.find((d) => d.device === 'webgpu')!;
    assert.equal(webgpu.usedByAuto, false);
    assert.match(webgpu.reason!, /llvmpipe \(Mesa lavapipe\), a software one that runs on the CPU/);
    assert.deepEqual(webgpu.adapters, [{ name: 'llvmpipe (Mesa lavapipe)', software: true }]);
    assert.equal(report.auto, 'cpu', 'CUDA is not installed here, WebGPU is software: the CPU');
    const cpu = report.devices.find((d) => d.device === 'cpu')!;
    assert.ok(cpu.usedByAuto);
    assert.match(cpu.dtype, /^int(4|8)$/);
  });

  test('pali devices (text): one line per fact, no native output', () => {
    const result = pali(['devices'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^webgpu: auto skips it: its only adapter here is llvmpipe/m);
    assert.match(result.stdout, /^ {2}adapter: llvmpipe \(Mesa lavapipe\) \(software\)$/m);
    assert.match(result.stdout, /^auto: tries cpu$/m);
  });

  test('generate --device auto runs on the CPU and stderr holds nothing', () => {
    const result = pali(['generate', '--model', model, '--image', image, '--prompt', 'caption en', '--max-new-tokens', '2', '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).device, 'cpu');
    assert.equal(result.stderr, '', 'no Dawn or Vulkan line, no fallback line in --json mode');
  });

  test('generate --device webgpu: refused in one plain line, nothing from Dawn', () => {
    const result = pali(['generate', '--model', model, '--image', image, '--prompt', 'caption en', '--max-new-tokens', '2', '--device', 'webgpu'], env);
    assert.equal(result.code, 1);
    assert.deepEqual(result.stderr.trim().split('\n'), [
      'pali: no device could run the model (webgpu: no adapter that WebGPU accepts was found: the only Vulkan driver with a device here is llvmpipe (Mesa lavapipe), a software one, and no GPU driver has a GPU to drive)',
    ]);
  });

  test('no Vulkan driver at all: WebGPU is skipped with what to install', () => {
    const result = pali(['devices', '--json'], { ...env, VK_ICD_FILENAMES: path.join(root, 'missing.json') });
    const webgpu = (JSON.parse(result.stdout) as { devices: { device: string; reason?: string }[] }).devices.find((d) => d.device === 'webgpu')!;
    assert.match(webgpu.reason!, /needs a Vulkan driver on Linux and none is installed \(mesa-vulkan-drivers/);
  });
});

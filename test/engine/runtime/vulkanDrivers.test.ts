/**
 * The Vulkan manifests tell a software rasterizer (llvmpipe, SwiftShader) from a GPU driver before any
 * native library runs, and a machine with only software drivers never gets WebGPU from `auto`.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { quietVulkanLayers, vulkanDrivers } from '../../../src/engine/runtime/vulkanDrivers.js';
import { plainWebGpuError, softwareOnlyVulkan } from '../../../src/engine/runtime/webgpuProbe.js';
import { tempDir } from '../../helpers/fixtures.js';

/** Manifests as Mesa, Chromium and NVIDIA install them. */
function manifests(dir: string): Record<string, string> {
  const write = (name: string, library: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library, api_version: '1.3.0' } }));
    return file;
  };
  return {
    lvp: write('lvp_icd.x86_64.json', '/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so'),
    swiftshader: write('vk_swiftshader_icd.json', './libvk_swiftshader.so'),
    intel: write('intel_icd.x86_64.json', '/usr/lib/x86_64-linux-gnu/libvulkan_intel.so'),
    nvidia: write('nvidia_icd.json', 'libGLX_nvidia.so.0'),
  };
}

describe('Vulkan drivers from their manifests', { skip: process.platform !== 'linux' ? 'Vulkan manifests are read on Linux only' : false }, () => {
  const files = manifests(tempDir('vulkan'));

  test('VK_ICD_FILENAMES names the drivers; software ones are told apart', () => {
    const drivers = vulkanDrivers({ VK_ICD_FILENAMES: [files.lvp, files.swiftshader, files.intel, files.nvidia].join(':') });
    assert.deepEqual(drivers.map((d) => [d.name, d.software]), [
      ['llvmpipe (Mesa lavapipe)', true],
      ['SwiftShader', true],
      ['Intel', false],
      ['NVIDIA', false],
    ]);
  });

  test('only software drivers: named; any GPU driver beside them: not software-only', () => {
    const gpu = ['/dev/dri/renderD128'];
    assert.equal(softwareOnlyVulkan(vulkanDrivers({ VK_ICD_FILENAMES: files.lvp }), gpu), 'llvmpipe (Mesa lavapipe)');
    assert.equal(softwareOnlyVulkan(vulkanDrivers({ VK_DRIVER_FILES: `${files.swiftshader}:${files.lvp}` }), gpu), 'SwiftShader and llvmpipe (Mesa lavapipe)');
    assert.equal(softwareOnlyVulkan(vulkanDrivers({ VK_ICD_FILENAMES: `${files.lvp}:${files.intel}` }), gpu), null);
    assert.equal(softwareOnlyVulkan([], gpu), null, 'no driver at all is not a software adapter: WebGPU simply has none');
  });

  test("Debian's mesa-vulkan-drivers on a machine without a GPU: Intel's manifest has nothing to drive", () => {
    const mesa = vulkanDrivers({ VK_ICD_FILENAMES: `${files.intel}:${files.lvp}` });
    assert.equal(softwareOnlyVulkan(mesa, []), 'llvmpipe (Mesa lavapipe)');
    assert.equal(softwareOnlyVulkan(mesa, ['/dev/dri/renderD128']), null, 'with a render node the GPU may be real: the probe measures it');
  });

  test('the search path: XDG_DATA_DIRS/vulkan/icd.d', () => {
    const data = tempDir('vulkan-data');
    fs.mkdirSync(path.join(data, 'vulkan', 'icd.d'), { recursive: true });
    fs.copyFileSync(files.lvp, path.join(data, 'vulkan', 'icd.d', 'lvp_icd.x86_64.json'));
    fs.writeFileSync(path.join(data, 'vulkan', 'icd.d', 'broken.json'), '{ not json');
    const empty = tempDir('vulkan-empty');
    const drivers = vulkanDrivers({ XDG_DATA_DIRS: data, XDG_DATA_HOME: empty, XDG_CONFIG_HOME: empty, XDG_CONFIG_DIRS: empty });
    // /etc/vulkan/icd.d is searched too: whatever this machine has there comes after ours.
    assert.equal(drivers[0]?.name, 'llvmpipe (Mesa lavapipe)');
    assert.ok(!drivers.some((d) => d.manifest.endsWith('broken.json')));
  });

  test("Mesa's device-selection layer is switched off only where it cannot work (no XDG_RUNTIME_DIR)", () => {
    const headless: NodeJS.ProcessEnv = {};
    quietVulkanLayers(headless);
    assert.equal(headless.NODEVICE_SELECT, '1');
    const stale: NodeJS.ProcessEnv = { XDG_RUNTIME_DIR: path.join(tempDir('runtime'), 'gone') };
    quietVulkanLayers(stale);
    assert.equal(stale.NODEVICE_SELECT, '1');
    const desktop: NodeJS.ProcessEnv = { XDG_RUNTIME_DIR: tempDir('runtime') };
    quietVulkanLayers(desktop);
    assert.equal(desktop.NODEVICE_SELECT, undefined);
    const chosen: NodeJS.ProcessEnv = { NODEVICE_SELECT: '0' };
    quietVulkanLayers(chosen);
    assert.equal(chosen.NODEVICE_SELECT, '0', "the user's own setting stays");
  });
});

describe('WebGPU errors in plain words', () => {
  test('no adapter: what to install, no source path or C++ frame', () => {
    const native = "/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 void onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuBufferCacheConfig&, int, bool)::<lambda()> [ONNXRuntimeError] : 1 : FAIL : Failed to get a WebGPU adapter: No supported adapters";
    const plain = plainWebGpuError(native, null);
    assert.match(plain, process.platform === 'linux' ? /^no GPU that WebGPU can use was found: on Linux it runs on Vulkan, so install your GPU's Vulkan driver/ : /^no GPU that WebGPU can use was found/);
    assert.doesNotMatch(plain, /onnxruntime_src|\.cc|lambda|ONNXRuntimeError/);
    // With Mesa's drivers installed and no GPU, installing drivers is not the answer.
    assert.equal(plainWebGpuError(native, 'llvmpipe (Mesa lavapipe)'), 'no adapter that WebGPU accepts was found: the only Vulkan driver with a device here is llvmpipe (Mesa lavapipe), a software one, and no GPU driver has a GPU to drive');
  });

  test('another failure keeps its words, not its source location', () => {
    const plain = plainWebGpuError('[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : /onnxruntime_src/onnxruntime/core/providers/webgpu/program_manager.cc:88 shader compilation failed\nmore detail', null);
    assert.equal(plain, 'WebGPU failed: shader compilation failed');
  });
});

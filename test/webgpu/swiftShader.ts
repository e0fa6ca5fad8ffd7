/**
 * SwiftShader, the software Vulkan driver inside Debian's Chromium package (scripts/e2e-setup.sh installs
 * it): with its folder on LD_LIBRARY_PATH (Chromium ships the Vulkan loader there too) and its manifest in
 * VK_ICD_FILENAMES, Dawn finds one adapter, on the CPU. That runs the WebGPU path for correctness on any
 * machine, not for speed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The environment that makes SwiftShader the only Vulkan driver; throws with what to install if absent. */
export function swiftShaderEnv(): Record<string, string> {
  const listed = spawnSync('dpkg', ['-L', 'chromium-common', 'chromium'], { encoding: 'utf8' }).stdout ?? '';
  const manifest = listed.split('\n').find((line) => line.endsWith('/vk_swiftshader_icd.json')) ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
  const dir = path.dirname(manifest);
  if (!fs.existsSync(manifest) || !fs.existsSync(path.join(dir, 'libvulkan.so.1'))) {
    throw new Error("SwiftShader was not found: the WebGPU tests run on the one in Debian's Chromium package (bash scripts/e2e-setup.sh installs it, or apt-get install chromium)");
  }
  return {
    LD_LIBRARY_PATH: [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    VK_ICD_FILENAMES: manifest,
  };
}

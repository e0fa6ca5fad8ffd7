/**
 * Which Vulkan drivers the loader would offer Dawn (onnxruntime-node's WebGPU on Linux), read from the
 * same manifests the loader reads, so that a software rasterizer is known before any native library runs:
 * Mesa's llvmpipe (lavapipe, in mesa-vulkan-drivers), Google's SwiftShader (shipped inside Chromium) and
 * the Vulkan SDK's mock driver all run on the CPU.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface VulkanDriver {
  /** The manifest (icd.d/*.json). */
  manifest: string;
  /** The driver library it names. */
  library: string;
  /** A name a user recognizes. */
  name: string;
  software: boolean;
}

const SOFTWARE_DRIVERS: [RegExp, string][] = [
  [/lvp|lavapipe|llvmpipe/i, 'llvmpipe (Mesa lavapipe)'],
  [/swiftshader/i, 'SwiftShader'],
  [/mock_icd/i, 'the Vulkan mock driver'],
];

const HARDWARE_DRIVERS: [RegExp, string][] = [
  [/nvidia/i, 'NVIDIA'],
  [/radeon|amdvlk|amd/i, 'AMD'],
  [/intel|anv|hasvk/i, 'Intel'],
  [/freedreno|adreno/i, 'Qualcomm Adreno'],
  [/panfrost|mali/i, 'Arm Mali'],
  [/broadcom|v3dv/i, 'Broadcom'],
  [/dzn|dozen/i, 'Direct3D 12 (WSL)'],
  [/asahi|honeykrisp/i, 'Apple (Asahi)'],
];

/** The manifests the Vulkan loader reads: VK_DRIVER_FILES / VK_ICD_FILENAMES if set, else its search path. */
function manifestFiles(env: NodeJS.ProcessEnv): string[] {
  const explicit = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  if (explicit) return explicit.split(':').filter(Boolean);
  const home = os.homedir();
  const configDirs = [env.XDG_CONFIG_HOME || path.join(home, '.config'), ...(env.XDG_CONFIG_DIRS || '/etc/xdg').split(':'), '/etc'];
  const dataDirs = [env.XDG_DATA_HOME || path.join(home, '.local', 'share'), ...(env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':')];
  const files: string[] = [];
  for (const dir of [...configDirs, ...dataDirs].map((d) => path.join(d, 'vulkan', 'icd.d'))) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) if (name.endsWith('.json')) files.push(path.join(dir, name));
  }
  return files;
}

function describe(manifest: string, library: string): VulkanDriver {
  const label = `${path.basename(manifest)} ${path.basename(library)}`;
  const software = SOFTWARE_DRIVERS.find(([pattern]) => pattern.test(label));
  if (software) return { manifest, library, name: software[1], software: true };
  const hardware = HARDWARE_DRIVERS.find(([pattern]) => pattern.test(label));
  return { manifest, library, name: hardware?.[1] ?? path.basename(library), software: false };
}

/** The Vulkan drivers installed for this process (Linux; empty elsewhere or when none is installed). */
export function vulkanDrivers(env: NodeJS.ProcessEnv = process.env): VulkanDriver[] {
  if (process.platform !== 'linux') return [];
  const drivers: VulkanDriver[] = [];
  for (const manifest of manifestFiles(env)) {
    try {
      const parsed = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { ICD?: { library_path?: unknown } };
      const library = parsed.ICD?.library_path;
      if (typeof library === 'string') drivers.push(describe(manifest, library));
    } catch {
      // An unreadable manifest is one the loader skips too.
    }
  }
  return drivers;
}

/**
 * The GPU device nodes a Vulkan driver needs (Linux): Mesa's and others' render nodes, NVIDIA's, and WSL's
 * /dev/dxg. Without any, a GPU driver's manifest is installed but has nothing to drive (Debian's
 * mesa-vulkan-drivers installs Intel's and AMD's manifests beside llvmpipe's on every machine).
 */
export function gpuDeviceNodes(): string[] {
  if (process.platform !== 'linux') return [];
  const nodes: string[] = [];
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const name of list('/dev/dri')) if (name.startsWith('renderD')) nodes.push(`/dev/dri/${name}`);
  for (const name of list('/dev')) if (/^nvidia\d+$/.test(name) || name === 'dxg') nodes.push(`/dev/${name}`);
  return nodes;
}

/**
 * Mesa's device-selection layer (an implicit layer that mesa-vulkan-drivers installs) asks the Wayland
 * compositor which GPU is the default, and without a session (SSH, a container, CI: no XDG_RUNTIME_DIR)
 * prints `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` from inside Dawn, once per
 * instance. There it has no compositor to ask anyway, so switch it off (its own NODEVICE_SELECT) before
 * WebGPU starts; in a desktop session it stays, and DRI_PRIME keeps choosing the GPU.
 */
export function quietVulkanLayers(env: NodeJS.ProcessEnv = process.env): void {
  if (process.platform !== 'linux' || env.NODEVICE_SELECT !== undefined) return;
  const runtimeDir = env.XDG_RUNTIME_DIR;
  let valid = false;
  try {
    valid = Boolean(runtimeDir) && fs.statSync(runtimeDir!).isDirectory();
  } catch {
    valid = false;
  }
  if (!valid) env.NODEVICE_SELECT = '1';
}

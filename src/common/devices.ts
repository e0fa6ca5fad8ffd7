/** The devices a user can choose, in one place: the setting (package.json), the CLI's --device, the engine. */
export const DEVICE_CHOICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;

/** `auto` tries CUDA, then WebGPU, then the CPU (runtime/device.ts). */
export type DeviceChoice = (typeof DEVICE_CHOICES)[number];

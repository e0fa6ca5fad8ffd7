/**
 * A random-weight mask VQ-VAE in exactly the file layout of big_vision's vae-oid.npz (PyTorch names and
 * shapes, float32), for tests and for running segmentation where the real file cannot be downloaded. The
 * decoder's shapes are the reference's; the encoder's (which the engine never reads) mirror them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SeededRandom } from '../random.js';
import { writeNpz, type NpyArray } from '../segmentation/npz.js';

export const VAE_FILE = 'vae-oid.npz';

/** [name, shape] of every array, in the order np.savez would list a PyTorch state dict. */
function layout(): [string, number[]][] {
  const conv = (name: string, out: number, input: number, k: number): [string, number[]][] => [[`${name}.weight`, [out, input, k, k]], [`${name}.bias`, [out]]];
  // ConvTranspose2d weights are [in, out, k, k].
  const transposed = (name: string, input: number, out: number): [string, number[]][] => [[`${name}.weight`, [input, out, 4, 4]], [`${name}.bias`, [out]]];
  const resblock = (name: string): [string, number[]][] => [...conv(`${name}.0`, 128, 128, 3), ...conv(`${name}.2`, 128, 128, 3), ...conv(`${name}.4`, 128, 128, 1)];
  return [
    ['_vq_vae._embedding', [128, 512]],
    ...conv('encoder.0', 16, 1, 4), ...conv('encoder.2', 32, 16, 4), ...conv('encoder.4', 64, 32, 4), ...conv('encoder.6', 128, 64, 4),
    ...resblock('encoder.8.net'), ...resblock('encoder.9.net'), ...conv('encoder.10', 512, 128, 1),
    ...conv('decoder.0', 128, 512, 1), ...resblock('decoder.2.net'), ...resblock('decoder.3.net'),
    ...transposed('decoder.4', 128, 128), ...transposed('decoder.6', 128, 64), ...transposed('decoder.8', 64, 32), ...transposed('decoder.10', 32, 16),
    ...conv('decoder.12', 1, 16, 1),
  ];
}

/** Weights scaled by fan-in, so that every layer's output stays near unit size and masks have both signs. */
export function forgeVaeArrays(seed: number): Map<string, NpyArray> {
  const random = new SeededRandom(seed, 'vae');
  const arrays = new Map<string, NpyArray>();
  for (const [name, shape] of layout()) {
    const count = shape.reduce((a, b) => a * b, 1);
    const fanIn = name === '_vq_vae._embedding' ? 1 : name.endsWith('.bias') ? 16 : shape.slice(1).reduce((a, b) => a * b, 1);
    const scale = Math.sqrt(2 / fanIn);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = random.uniform(0, scale);
    arrays.set(name, { shape, data });
  }
  return arrays;
}

export function forgeVae(seed: number, outDir: string): string {
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, VAE_FILE);
  const partial = `${file}.${process.pid}.partial`;
  fs.writeFileSync(partial, writeNpz(forgeVaeArrays(seed)));
  fs.renameSync(partial, file);
  return file;
}

/**
 * The cache key of a checkpoint: a hash of its config and every weight file's bytes. Hashing gigabytes
 * takes seconds, so each file's digest is remembered against its path, size and modification time.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Bump when the graphs we write change, so old conversions are not reused (2: MatMulNBits accuracy_level 4;
 * 3: Gemma 2's sliding window no longer splits the prefix, and the masked decoder takes its own mask for it;
 * 4: the masked decoder returns the chunk's keys and values instead of the whole cache;
 * 5: RoPE's cos and sin come from correctly rounded tables instead of each provider's Cos and Sin;
 * 6: int8 layers quantize their input once per input with QuantizeLinear and run MatMulIntegerToFloat;
 * 7: int8 SigLIP MLPs divide fc2's input by migration scales where fc1's rows show outlier channels;
 * 8: int8 graphs run ONNX Runtime's fused norm, RoPE and GELU kernels, onnx/fusedLayers.ts).
 */
export const CONVERTER_VERSION = '8';

function fileDigest(file: string, stampDir: string): string {
  const stat = fs.statSync(file);
  const real = fs.realpathSync(file);
  const stampFile = path.join(stampDir, createHash('sha256').update(real).digest('hex').slice(0, 32) + '.json');
  const identity = { path: real, size: stat.size, mtimeMs: stat.mtimeMs };
  try {
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
    if (stamp.path === identity.path && stamp.size === identity.size && stamp.mtimeMs === identity.mtimeMs) return stamp.sha256;
  } catch {
    // No stamp yet, or an unreadable one: hash the file.
  }
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.alloc(16 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  const sha256 = hash.digest('hex');
  fs.mkdirSync(stampDir, { recursive: true });
  fs.writeFileSync(stampFile, JSON.stringify({ ...identity, sha256 }));
  return sha256;
}

export function checkpointKey(dir: string, weightFiles: string[], cacheRoot: string): string {
  const hash = createHash('sha256').update(`converter ${CONVERTER_VERSION}\n`);
  const stampDir = path.join(cacheRoot, 'stamps');
  for (const name of ['config.json', 'model.safetensors.index.json']) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) hash.update(`${name}\n`).update(fs.readFileSync(file));
  }
  for (const file of [...weightFiles].sort()) hash.update(`${path.basename(file)} ${fileDigest(file, stampDir)}\n`);
  return hash.digest('hex').slice(0, 24);
}

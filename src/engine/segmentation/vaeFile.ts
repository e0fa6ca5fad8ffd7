/**
 * Where the mask VQ-VAE's weights come from. Hugging Face checkpoints do not include big_vision's
 * vae-oid.npz, so it is found, in order: a file the user names (--vae, paligemma.segmentation.vaePath),
 * one beside the model, one in the cache; else it is downloaded once into the cache from the hub copy that
 * Google's PaliGemma demo loads, checked against a pinned sha256 before it is kept. HF_ENDPOINT names a
 * mirror, as for the models; HF_HUB_OFFLINE=1 forbids the download.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../common/errors.js';
import { defaultCacheRoot } from '../convert/convert.js';

export const VAE_FILE_NAME = 'vae-oid.npz';
/** The demo's copy (the space's Git LFS object): its sha256 and size, from the LFS pointer. */
export const VAE_HUB_PATH = '/spaces/big-vision/paligemma-hf/resolve/main/vae-oid.npz';
export const VAE_SHA256 = '5586010257b8536dddefab65e7755077f21d5672d5674dacf911f73ae95a4447';
export const VAE_SIZE = 8_479_556;

export interface VaeSource {
  /** A file the user named: used as it is, or an error. */
  vaeFile?: string;
  modelDir?: string;
  cacheRoot?: string;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
}

export interface Download {
  url: string;
  sha256: string;
  size: number;
}

export function hubDownload(): Download {
  const endpoint = (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  return { url: `${endpoint}${VAE_HUB_PATH}`, sha256: VAE_SHA256, size: VAE_SIZE };
}

/** Downloads to `file` through a temporary name, keeping it only if its size and sha256 are the expected ones. */
export async function downloadChecked(download: Download, file: string, signal?: AbortSignal, onProgress?: (message: string) => void): Promise<void> {
  const token = process.env.HF_TOKEN;
  let response: Response;
  try {
    response = await fetch(download.url, { signal, headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new UserError(`cannot download the mask VQ-VAE from ${download.url} (${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}): download vae-oid.npz yourself and pass it with --vae FILE (paligemma.segmentation.vaePath)`);
  }
  if (!response.ok || !response.body) throw new UserError(`cannot download the mask VQ-VAE: ${download.url} answered ${response.status}: pass vae-oid.npz with --vae FILE`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  const hash = createHash('sha256');
  const out = fs.openSync(partial, 'w');
  let received = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      fs.writeSync(out, chunk);
      received += chunk.length;
      if (received > download.size) throw new UserError(`the mask VQ-VAE at ${download.url} is larger than the expected ${download.size} bytes: not kept`);
    }
    fs.closeSync(out);
    const digest = hash.digest('hex');
    if (received !== download.size || digest !== download.sha256) {
      throw new UserError(`the mask VQ-VAE at ${download.url} is not the expected file (${received} bytes, sha256 ${digest.slice(0, 12)}…; expected ${download.size} bytes, ${download.sha256.slice(0, 12)}…): not kept`);
    }
    fs.renameSync(partial, file);
    onProgress?.(`downloaded the mask VQ-VAE (${(received / 2 ** 20).toFixed(1)} MB, sha256 checked)`);
  } finally {
    try {
      fs.closeSync(out);
    } catch {
      // closed above
    }
    fs.rmSync(partial, { force: true });
  }
}

/** The vae-oid.npz to use, downloading it into the cache the first time segmentation needs it. */
export async function findVaeFile(source: VaeSource): Promise<string> {
  if (source.vaeFile) {
    if (!fs.existsSync(source.vaeFile)) throw new UserError(`${source.vaeFile}: no such file (the mask VQ-VAE, vae-oid.npz)`);
    return source.vaeFile;
  }
  const beside = source.modelDir ? path.join(source.modelDir, VAE_FILE_NAME) : undefined;
  if (beside && fs.existsSync(beside)) return beside;
  const cached = path.join(source.cacheRoot ?? defaultCacheRoot(), 'vae', VAE_FILE_NAME);
  if (fs.existsSync(cached)) return cached;
  if (process.env.HF_HUB_OFFLINE === '1') {
    throw new UserError('segmentation needs big_vision\'s vae-oid.npz, and HF_HUB_OFFLINE=1 forbids downloading it: pass it with --vae FILE (paligemma.segmentation.vaePath)');
  }
  source.onProgress?.('downloading the mask VQ-VAE (vae-oid.npz, 8.5 MB) once');
  await downloadChecked(hubDownload(), cached, source.signal, source.onProgress);
  return cached;
}

/**
 * CPU sessions spend most of their creation time pre-packing weights into the layout their kernels read:
 * on PaliGemma 3B int4, 4.9 s of a 5.3 s load. ORT can save the optimized graph together with those packed
 * weights in an external data file, and a later session maps that file instead of packing again (2.7 s,
 * the same outputs and decode speed; the mapped pages are the page cache's, which the OS can reclaim).
 *
 * The packed layout depends on the CPU's instruction set and on ORT's version, so each copy is keyed by
 * both, and by the source graph's identity. The copy costs disk (about the source's size again), so it
 * is only written where plenty of space is left. A copy that fails to load is deleted and rebuilt.
 *
 * Graphs with MatMulNBits get no copy: in onnxruntime 1.30 a MatMulNBits restored from saved packed
 * weights computes NaN (its scales and zero points are packed into the weight's buffer by later PrePack
 * calls, which a restored session skips). test/engine/runtime/prepackedGraphs.test.ts would see it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type * as ort from 'onnxruntime-node';
import { onnxRuntime } from './onnxRuntime.js';

/** Write a copy only when at least this much disk stays free after it. */
const KEEP_FREE_BYTES = 8 * 2 ** 30;
const COMPLETE = '.complete';

export interface PrepackedSession {
  session: ort.InferenceSession;
  /** `mapped`: loaded from the packed copy; `saved`: packed now and saved for next time; `packed`: neither. */
  source: 'mapped' | 'saved' | 'packed';
}

/** What the packed layout depends on: the CPU's model and flags, and ORT's version. */
function cpuSignature(): string {
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '';
  } catch {
    // Not Linux: the model name and architecture stand in.
  }
  const version = (onnxRuntime().env.versions as Record<string, string> | undefined)?.node ?? 'unknown';
  return `${os.arch()} ${os.cpus()[0]?.model ?? ''} ${flags} onnxruntime ${version}`;
}

/** Graphs parsed to find their operators; a larger graph (weights inline) gets no copy. */
const LARGEST_PARSED_GRAPH_BYTES = 64 << 20;

/** True when the graph is small enough to inspect and has no MatMulNBits (see above). */
function copySupported(file: string): boolean {
  if (fs.statSync(file).size > LARGEST_PARSED_GRAPH_BYTES) return false;
  const nodes = onnx.ModelProto.decode(fs.readFileSync(file)).graph?.node ?? [];
  return !nodes.some((node) => node.opType === 'MatMulNBits');
}

function graphBytes(file: string): number {
  const data = `${file}_data`;
  return fs.statSync(file).size + (fs.existsSync(data) ? fs.statSync(data).size : 0);
}

export function prepackedFolder(file: string, cacheRoot: string): string {
  const stat = fs.statSync(file);
  const identity = `${fs.realpathSync(file)} ${stat.size} ${stat.mtimeMs}\n${cpuSignature()}`;
  return path.join(cacheRoot, 'prepacked', createHash('sha256').update(identity).digest('hex').slice(0, 24));
}

function hasRoomFor(folder: string, bytes: number): boolean {
  try {
    fs.mkdirSync(folder, { recursive: true });
    const stats = fs.statfsSync(folder);
    return stats.bavail * stats.bsize - 2 * bytes > KEEP_FREE_BYTES;
  } catch {
    return false;
  }
}

/**
 * A CPU session for `file`: from its packed copy when one exists, else packed now, and saved as a copy
 * for the next load when the disk has room.
 */
export async function createCpuSession(file: string, options: ort.InferenceSession.SessionOptions, cacheRoot: string): Promise<PrepackedSession> {
  const Session = onnxRuntime().InferenceSession;
  const folder = prepackedFolder(file, cacheRoot);
  const copy = path.join(folder, path.basename(file));
  if (fs.existsSync(path.join(folder, COMPLETE))) {
    try {
      // The copy is the optimized graph already: optimizing it again would only cost time.
      return { session: await Session.create(copy, { ...options, graphOptimizationLevel: 'disabled' }), source: 'mapped' };
    } catch {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  }
  if (!copySupported(file) || !hasRoomFor(path.dirname(folder), graphBytes(file))) {
    return { session: await Session.create(file, options), source: 'packed' };
  }

  const temporary = `${folder}.${process.pid}.partial`;
  fs.rmSync(temporary, { recursive: true, force: true });
  fs.mkdirSync(temporary, { recursive: true });
  let session: ort.InferenceSession;
  try {
    session = await Session.create(file, {
      ...options,
      optimizedModelFilePath: path.join(temporary, path.basename(file)),
      extra: {
        session: {
          optimized_model_external_initializers_file_name: `${path.basename(file)}.data`,
          optimized_model_external_initializers_min_size_in_bytes: '1024',
          save_external_prepacked_constant_initializers: '1',
        },
      },
    });
  } catch {
    // Saving failed (a full disk, an unwritable cache): load as usual; a graph that cannot load at all
    // fails again here with its own error.
    fs.rmSync(temporary, { recursive: true, force: true });
    return { session: await Session.create(file, options), source: 'packed' };
  }
  try {
    fs.writeFileSync(path.join(temporary, COMPLETE), `${file}\n`);
    fs.rmSync(folder, { recursive: true, force: true });
    fs.renameSync(temporary, folder);
    return { session, source: 'saved' };
  } catch {
    // Another process saved the same copy first, or the disk filled up: this session works regardless.
    fs.rmSync(temporary, { recursive: true, force: true });
    return { session, source: 'packed' };
  }
}

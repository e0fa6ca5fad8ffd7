/**
 * CPU sessions from graphs prepared once for this machine. Creating a session repacks every quantized
 * weight into the layout of the GEMM kernel that MLAS picked for this CPU: on the int8 3B that is about 7
 * of the decoder's 9 s of load. ONNX Runtime can save the optimized graph with those packed weights in an
 * external data file (`session.save_external_prepacked_constant_initializers`) and map that file on the
 * next load: measured on the int8 3B (2 cores, AMX), the decoder then loads in 2.7 s and the vision tower
 * in 0.36 s (from 1.1 s), and the packed weights are file pages the OS can share and drop, not heap.
 *
 * The packed layout depends on the CPU's instructions and on the ONNX Runtime build, so a prepared graph
 * is keyed by both and by the source graph's identity (path, size, modification time). One prepared copy
 * is kept per source graph: preparing a new one removes the others. It costs disk, the source's data
 * again plus its packed copy, so it is made only where it pays (the caller decides: quantized graphs).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { isAlive } from '../processes.js';
import { thisCpu } from './cpuFeatures.js';
import { onnxRuntime } from './onnxRuntime.js';
import { describeError } from '../../common/errors.js';

/** Bump when what a prepared folder holds changes. */
const PREPARED_VERSION = '1';
const GRAPH = 'model.onnx';
const DATA = 'model.onnx.data';
const SOURCE = 'source.json';

interface SourceIdentity {
  file: string;
  graph: { size: number; mtimeMs: number };
  data: { size: number; mtimeMs: number } | null;
}

function sourceIdentity(file: string): SourceIdentity {
  const real = fs.realpathSync(file);
  const stamp = (name: string) => {
    const stat = fs.statSync(name);
    return { size: stat.size, mtimeMs: stat.mtimeMs };
  };
  const dataFile = `${file}_data`;
  return { file: real, graph: stamp(file), data: fs.existsSync(dataFile) ? stamp(dataFile) : null };
}

function preparedRoot(cacheRoot: string): string {
  return path.join(cacheRoot, 'prepared');
}

/** The folder a prepared copy of `file` lives in on this machine, with this ONNX Runtime. */
export function preparedDirFor(file: string, cacheRoot: string): string {
  const cpu = thisCpu();
  const key = createHash('sha256')
    .update(JSON.stringify({ version: PREPARED_VERSION, ort: onnxRuntime().env.versions.common, cpu: cpu.model, flags: cpu.flags, source: sourceIdentity(file) }))
    .digest('hex')
    .slice(0, 24);
  return path.join(preparedRoot(cacheRoot), key);
}

export interface PreparedSession {
  session: ort.InferenceSession;
  /** What happened: loaded from a prepared copy, prepared now, or a plain load (and why). */
  how: 'prepared' | 'prepared now' | `plain: ${string}`;
}

/**
 * A CPU session for `file` with `options`: from its prepared copy when there is one, else created while
 * the copy is written (once: about 2.5x a plain load, 23 s for the int8 3B decoder). A copy that does not
 * load is removed and made again; when it cannot be written (disk full), the load is a plain one.
 */
export async function createPreparedSession(
  file: string,
  options: ort.InferenceSession.SessionOptions,
  cacheRoot: string,
  onPreparing?: () => void,
): Promise<PreparedSession> {
  const Session = onnxRuntime().InferenceSession;
  const dir = preparedDirFor(file, cacheRoot);
  if (fs.existsSync(path.join(dir, GRAPH))) {
    try {
      // The copy is already optimized at the level it was saved with: optimizing it again only costs time.
      return { session: await Session.create(path.join(dir, GRAPH), { ...options, graphOptimizationLevel: 'disabled' }), how: 'prepared' };
    } catch {
      removeQuietly(dir);
    }
  }
  onPreparing?.();
  const partial = `${dir}.${process.pid}.partial`;
  try {
    removeAbandonedCopies(path.dirname(dir));
    fs.rmSync(partial, { recursive: true, force: true });
    fs.mkdirSync(partial, { recursive: true });
    const session = await Session.create(file, savingOptions(options, partial));
    try {
      publish(partial, dir, sourceIdentity(file));
      return { session, how: 'prepared now' };
    } catch (error) {
      return { session, how: `plain: the prepared copy could not be kept (${firstLine(error)})` };
    }
  } catch (error) {
    // Saving failed (most likely the disk is full, or the cache cannot be written): the graph itself may
    // still load.
    removeQuietly(partial);
    return { session: await Session.create(file, options), how: `plain: the prepared copy could not be written (${firstLine(error)})` };
  } finally {
    removeQuietly(partial);
  }
}

function savingOptions(options: ort.InferenceSession.SessionOptions, dir: string): ort.InferenceSession.SessionOptions {
  const extra = (options.extra ?? {}) as { session?: Record<string, string> };
  return {
    ...options,
    optimizedModelFilePath: path.join(dir, GRAPH),
    extra: {
      ...extra,
      session: {
        ...extra.session,
        optimized_model_external_initializers_file_name: DATA,
        optimized_model_external_initializers_min_size_in_bytes: '1024',
        save_external_prepacked_constant_initializers: '1',
      },
    },
  };
}

/**
 * Moves a written copy into place: its files are flushed first, so that a power cut cannot leave a
 * complete-looking copy whose data never reached the disk. Other copies of the same source (another CPU,
 * ONNX Runtime or version of the graph) go. Two processes preparing at once: the first rename wins.
 */
function publish(partial: string, dir: string, source: SourceIdentity): void {
  fs.writeFileSync(path.join(partial, SOURCE), JSON.stringify(source));
  // A graph with no initializer large enough to go outside has no data file.
  for (const name of [GRAPH, DATA, SOURCE].filter((name) => fs.existsSync(path.join(partial, name)))) {
    const fd = fs.openSync(path.join(partial, name), 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  try {
    fs.renameSync(partial, dir);
  } catch (error) {
    if (!fs.existsSync(path.join(dir, GRAPH))) throw error;
  }
  removeOtherCopies(dir, source.file);
}

function removeOtherCopies(keep: string, sourceFile: string): void {
  const root = path.dirname(keep);
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    if (dir === keep || name.endsWith('.partial')) continue;
    try {
      if ((JSON.parse(fs.readFileSync(path.join(dir, SOURCE), 'utf8')) as SourceIdentity).file === sourceFile) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // Not a prepared copy, or one being removed by another process.
    }
  }
}

/** Half-written copies of processes that died (killed, out of memory, power cut): gigabytes each. */
function removeAbandonedCopies(root: string): void {
  if (!fs.existsSync(root)) return;
  for (const name of fs.readdirSync(root)) {
    const pid = Number(/\.(\d+)\.partial$/.exec(name)?.[1]);
    if (pid && !isAlive(pid)) fs.rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

function removeQuietly(target: string): void {
  try {
    fs.rmSync(target, { recursive: true, force: true });
  } catch {
    // Under a path that is not a folder: nothing of ours is there.
  }
}

function firstLine(error: unknown): string {
  return describeError(error).split('\n')[0]!;
}

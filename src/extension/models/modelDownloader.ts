/**
 * Downloads a model repository with @huggingface/hub: each file to a .part file that a later attempt resumes
 * from its size, checked against the size and sha256 the hub lists, then renamed into place. No `vscode`
 * import: the caller turns progress into a notification, and tests run it against a loopback server.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { downloadFile, listFiles, type ListFileEntry } from '@huggingface/hub';
import { abortError } from '../../common/errors.js';

export interface DownloadProgress {
  file: string;
  phase: 'present' | 'downloading' | 'verifying';
  /** Bytes of the whole repository done so far, and in all. */
  done: number;
  total: number;
  /** Bytes this report adds (for progress bars that take increments). */
  increment: number;
  secondsLeft?: number;
}

export class DownloadError extends Error {
  constructor(message: string, readonly kind: 'not-a-model' | 'missing' | 'size' | 'checksum' | 'disk-full') {
    super(message);
  }
}

export interface DownloadOptions {
  repo: string;
  /** A branch, tag or commit; the main branch when absent. */
  revision?: string;
  /** Which repository paths to fetch; all when absent. */
  include?: RegExp;
  destination: string;
  accessToken?: string;
  hubUrl?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
}

/**
 * A full disk as the user can act on it: what was being written, where, and that what arrived is kept
 * (as a .part file, never used as the model) and resumes once there is room.
 */
function diskFullOr(error: Error, file: string, destination: string, bytesLeft: number): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return error;
  const megabytes = Math.max(1, Math.ceil(bytesLeft / 2 ** 20));
  return new DownloadError(`the disk is full: ${file} needs about ${megabytes} MB more in ${destination}. Free some space and download again; what arrived is kept and resumes`, 'disk-full');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function downloadRepo(options: DownloadOptions): Promise<void> {
  const { repo, revision, include, destination, accessToken, hubUrl, signal } = options;
  const report = options.onProgress ?? (() => {});
  const files: ListFileEntry[] = [];
  for await (const entry of listFiles({ repo, revision, recursive: true, expand: true, accessToken, hubUrl })) {
    if (entry.type === 'file' && (!include || include.test(entry.path))) files.push(entry);
  }
  if (!files.some((f) => f.path === 'config.json')) throw new DownloadError(`${repo} has no config.json: it is not a model repository`, 'not-a-model');
  const total = files.reduce((sum, f) => sum + f.size, 0);
  let done = 0;
  let doneAtStart = 0;
  const started = Date.now();
  for (const entry of files) {
    if (signal?.aborted) throw abortError('download cancelled');
    const target = path.join(destination, entry.path);
    const part = `${target}.part`;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (fs.existsSync(target) && fs.statSync(target).size === entry.size) {
      done += entry.size;
      doneAtStart += entry.size;
      report({ file: entry.path, phase: 'present', done, total, increment: entry.size });
      continue;
    }
    const resumeFrom = fs.existsSync(part) ? Math.min(fs.statSync(part).size, entry.size) : 0;
    done += resumeFrom;
    doneAtStart += resumeFrom;
    report({ file: entry.path, phase: 'downloading', done, total, increment: resumeFrom });
    const blob = await downloadFile({ repo, revision, path: entry.path, accessToken, hubUrl });
    if (!blob) throw new DownloadError(`${entry.path} is missing from ${repo}`, 'missing');
    // The hub's blob fetches byte ranges on demand: slicing it resumes an interrupted download.
    const reader = blob.slice(resumeFrom).stream().getReader();
    const out = fs.createWriteStream(part, { flags: resumeFrom > 0 ? 'a' : 'w' });
    // Write errors reach each write's callback below; without a listener the stream's 'error' event would
    // also be thrown as an uncaught exception in the extension host.
    out.on('error', () => {});
    let written = resumeFrom;
    try {
      for (;;) {
        if (signal?.aborted) throw abortError('download cancelled');
        const { done: finished, value } = await reader.read();
        if (finished) break;
        await new Promise<void>((resolve, reject) => out.write(value, (error) => (error ? reject(diskFullOr(error, entry.path, destination, entry.size - written)) : resolve())));
        written += value.byteLength;
        done += value.byteLength;
        const rate = (done - doneAtStart) / Math.max(0.001, (Date.now() - started) / 1000);
        report({ file: entry.path, phase: 'downloading', done, total, increment: value.byteLength, secondsLeft: rate > 0 ? Math.round((total - done) / rate) : undefined });
      }
    } finally {
      await new Promise<void>((resolve) => out.end(resolve));
      await reader.cancel().catch(() => undefined);
    }
    const size = fs.statSync(part).size;
    if (size !== entry.size) throw new DownloadError(`${entry.path}: ${size} bytes received, ${entry.size} expected`, 'size');
    if (entry.lfs?.oid) {
      report({ file: entry.path, phase: 'verifying', done, total, increment: 0 });
      if ((await sha256Of(part)) !== entry.lfs.oid) {
        fs.rmSync(part);
        throw new DownloadError(`${entry.path} does not match its sha256 on the hub; it was deleted, download again`, 'checksum');
      }
    }
    fs.renameSync(part, target);
  }
}

/**
 * Downloads a model repository with @huggingface/hub into globalStorage: each file to a .part file that a
 * later attempt resumes from its size, checked against the size and sha256 the hub lists, then renamed into
 * place. Progress shows bytes and time left; cancelling keeps the .part files for the next attempt.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { downloadFile, listFiles, type ListFileEntry } from '@huggingface/hub';
import * as vscode from 'vscode';

export interface DownloadReport {
  file: string;
  received: number;
  total: number;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function downloadRepo(
  repo: string,
  include: RegExp | undefined,
  destination: string,
  accessToken: string | undefined,
  token: vscode.CancellationToken,
  report: (message: string, increment: number) => void,
): Promise<void> {
  const files: ListFileEntry[] = [];
  for await (const entry of listFiles({ repo, recursive: true, expand: true, accessToken })) {
    if (entry.type === 'file' && (!include || include.test(entry.path))) files.push(entry);
  }
  if (!files.some((f) => f.path === 'config.json')) throw new Error(vscode.l10n.t('{0} has no config.json: it is not a model repository', repo));
  const total = files.reduce((sum, f) => sum + f.size, 0);
  let done = 0;
  const started = Date.now();
  let startedBytes = 0;
  for (const entry of files) {
    const target = path.join(destination, entry.path);
    const part = `${target}.part`;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (fs.existsSync(target) && fs.statSync(target).size === entry.size) {
      done += entry.size;
      startedBytes += entry.size;
      report(vscode.l10n.t('{0} already here', entry.path), (entry.size / total) * 100);
      continue;
    }
    const resumeFrom = fs.existsSync(part) ? Math.min(fs.statSync(part).size, entry.size) : 0;
    done += resumeFrom;
    startedBytes += resumeFrom;
    report(entry.path, (resumeFrom / total) * 100);
    const blob = await downloadFile({ repo, path: entry.path, accessToken });
    if (!blob) throw new Error(vscode.l10n.t('{0} is missing from {1}', entry.path, repo));
    // The hub's blob fetches byte ranges on demand: slicing it resumes an interrupted download.
    const reader = blob.slice(resumeFrom).stream().getReader();
    const out = fs.createWriteStream(part, { flags: resumeFrom > 0 ? 'a' : 'w' });
    try {
      for (;;) {
        if (token.isCancellationRequested) throw new vscode.CancellationError();
        const { done: finished, value } = await reader.read();
        if (finished) break;
        await new Promise<void>((resolve, reject) => out.write(value, (error) => (error ? reject(error) : resolve())));
        done += value.byteLength;
        const rate = (done - startedBytes) / Math.max(1, (Date.now() - started) / 1000);
        const left = rate > 0 ? Math.round((total - done) / rate) : 0;
        report(`${entry.path} — ${formatBytes(done)} / ${formatBytes(total)}, ${vscode.l10n.t('{0} s left', String(left))}`, (value.byteLength / total) * 100);
      }
    } finally {
      await new Promise<void>((resolve) => out.end(resolve));
      await reader.cancel().catch(() => undefined);
    }
    const size = fs.statSync(part).size;
    if (size !== entry.size) throw new Error(vscode.l10n.t('{0}: {1} bytes received, {2} expected', entry.path, String(size), String(entry.size)));
    if (entry.lfs?.oid) {
      report(vscode.l10n.t('checking {0}', entry.path), 0);
      const digest = await sha256Of(part);
      if (digest !== entry.lfs.oid) {
        fs.rmSync(part);
        throw new Error(vscode.l10n.t('{0} does not match its sha256 on the hub; it was deleted, download again', entry.path));
      }
    }
    fs.renameSync(part, target);
  }
}

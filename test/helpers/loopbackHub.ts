/**
 * A loopback server that speaks the part of the Hugging Face Hub's HTTP API that @huggingface/hub uses to
 * download a repository: the tree listing (sizes, LFS sha256) and `resolve` with byte ranges. The hub
 * itself is unreachable from our machines; the client code under test is the real one.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubFile {
  bytes: Buffer;
  /** The sha256 the listing announces (defaults to the real one). */
  announcedSha?: string;
}

export interface LoopbackHub {
  url: string;
  /** repo ("owner/name" for the main branch, "owner/name@revision" for another) -> its files by path. */
  repos: Map<string, Map<string, HubFile>>;
  /** Repos that answer 401 unless the request carries `Authorization: Bearer <token>`. */
  gated: Map<string, string>;
  /** The start offsets of ranged requests after the first byte, in order. */
  rangeStarts: number[];
  /** Dribble bodies in 4 KiB pieces so a test can cancel mid-file. */
  slow: boolean;
  close(): Promise<void>;
}

export async function startLoopbackHub(): Promise<LoopbackHub> {
  const server = http.createServer((request, response) => {
    const url = new URL(request.url!, 'http://127.0.0.1');
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repo = tree?.[1] ?? resolve?.[1];
    const revision = decodeURIComponent(tree?.[2] ?? resolve?.[2] ?? 'main');
    const files = repo ? hub.repos.get(revision === 'main' ? repo : `${repo}@${revision}`) : undefined;
    if (!repo || !files) return void response.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end();
    const token = hub.gated.get(repo);
    if (token && request.headers.authorization !== `Bearer ${token}`) {
      return void response.writeHead(401, { 'X-Error-Code': 'GatedRepo', 'X-Error-Message': `Access to ${repo} is restricted` }).end();
    }
    if (tree) {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify([...files].map(([name, file]) => ({
        type: 'file', path: name, size: file.bytes.length, oid: 'git-oid',
        ...(name.endsWith('.safetensors') ? { lfs: { oid: file.announcedSha ?? createHash('sha256').update(file.bytes).digest('hex'), size: file.bytes.length, pointerSize: 130 } } : {}),
      }))));
      return;
    }
    const file = files.get(decodeURIComponent(resolve![3]!));
    if (!file) return void response.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end();
    const [, from, to] = /bytes=(\d+)-(\d*)/.exec(request.headers.range ?? '') ?? [];
    const start = Number(from ?? 0);
    const end = to ? Number(to) : file.bytes.length - 1;
    if (start > 0 || end > 0) hub.rangeStarts.push(start);
    response.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${file.bytes.length}`, ETag: '"etag"', 'Content-Length': end - start + 1 });
    const body = file.bytes.subarray(start, end + 1);
    if (!hub.slow) return void response.end(body);
    let offset = 0;
    const timer = setInterval(() => {
      if (offset >= body.length || response.destroyed) {
        clearInterval(timer);
        response.end();
        return;
      }
      response.write(body.subarray(offset, offset + 4096));
      offset += 4096;
    }, 5);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const hub: LoopbackHub = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    repos: new Map(),
    gated: new Map(),
    rangeStarts: [],
    slow: false,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return hub;
}

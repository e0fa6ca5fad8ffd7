/**
 * Fetches a remote image (alt text in the extension, image_url in `pali serve`), defensively: http(s) only, at most 20 MB, a time limit, and
 * redirects followed by hand so that none leads to another scheme (file:, data:) or, away from the server
 * the address named, to a private, loopback or link-local address (a page's image URL must not reach the
 * machine's own services or a cloud metadata endpoint).
 * No vscode import: tested in plain Node against local servers.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface FetchImageOptions {
  signal?: AbortSignal;
  maxBytes?: number;
  timeoutMs?: number;
  maxRedirects?: number;
  /** Resolves a host name to its addresses (tests pass their own). */
  resolve?: (host: string) => Promise<string[]>;
}

export class RemoteImageError extends Error {}

const DEFAULTS = { maxBytes: 20 * 1024 * 1024, timeoutMs: 15_000, maxRedirects: 3 };

async function resolveHost(host: string): Promise<string[]> {
  return (await lookup(host, { all: true })).map((entry) => entry.address);
}

/** Loopback, private (RFC 1918, unique local), link-local, unspecified and mapped forms of them. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return isPrivateAddress(mapped);
  if (isIP(address) === 4) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    return a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  const lower = address.toLowerCase();
  return lower === '::1' || lower === '::' || /^f[cd][0-9a-f]{2}:/.test(lower) || /^fe[89ab][0-9a-f]:/.test(lower);
}

export async function fetchImage(url: string, options: FetchImageOptions = {}): Promise<Uint8Array> {
  const { maxBytes, timeoutMs, maxRedirects } = { ...DEFAULTS, ...options };
  // One controller for the caller's cancellation and the time limit (Node 20's AbortSignal.any can lose
  // a timeout signal to garbage collection, so the timer is held here).
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const cancel = () => controller.abort();
  options.signal?.addEventListener('abort', cancel, { once: true });
  try {
    return await fetchWithin(url, controller.signal, options, { maxBytes, timeoutMs, maxRedirects });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', cancel);
  }
}

async function fetchWithin(url: string, signal: AbortSignal, options: FetchImageOptions, limits: typeof DEFAULTS): Promise<Uint8Array> {
  const { maxBytes, timeoutMs, maxRedirects } = limits;
  const resolve = options.resolve ?? resolveHost;
  let current = new URL(url);
  for (let redirects = 0; ; redirects++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new RemoteImageError(`${url} leads to ${current.protocol} addresses, which are not fetched`);
    let response: Response;
    try {
      response = await fetch(current, { signal, redirect: 'manual' });
    } catch (error) {
      if (signal.aborted && !options.signal?.aborted) throw new RemoteImageError(`${url} did not answer within ${Number((timeoutMs / 1000).toFixed(1))} s`);
      throw error;
    }
    if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
      await response.body?.cancel();
      if (redirects >= maxRedirects) throw new RemoteImageError(`${url} redirects more than ${maxRedirects} times`);
      const previous = current;
      current = new URL(response.headers.get('location')!, current);
      if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new RemoteImageError(`${url} redirects to a ${current.protocol} address, which is not fetched`);
      // Within the server the address named, a redirect reaches nothing new; elsewhere the target is checked.
      if (current.origin === previous.origin) continue;
      const host = current.hostname.replace(/^\[|\]$/g, '');
      const addresses = isIP(host) ? [host] : await resolve(host);
      if (addresses.some(isPrivateAddress)) throw new RemoteImageError(`${url} redirects to a private or local address (${current.host}), which is not fetched`);
      continue;
    }
    if (!response.ok) throw new RemoteImageError(`${url} answered ${response.status}`);
    const tooLarge = () => new RemoteImageError(`${url} is larger than ${Math.round(maxBytes / 2 ** 20)} MB`);
    if (Number(response.headers.get('content-length')) > maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    // Read in chunks and stop at the limit: a server may send more than its length said, or no length.
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = response.body?.getReader();
    try {
      for (let read = await reader?.read(); read && !read.done; read = await reader!.read()) {
        total += read.value.byteLength;
        if (total > maxBytes) throw tooLarge();
        chunks.push(read.value);
      }
    } catch (error) {
      await reader?.cancel().catch(() => {});
      if (signal.aborted && !options.signal?.aborted) throw new RemoteImageError(`${url} did not finish within ${Math.round(timeoutMs / 1000)} s`);
      throw error;
    }
    return Buffer.concat(chunks);
  }
}

/**
 * What keeps web pages out of `pali serve`. A server on loopback is reachable from every page the user
 * visits: a page can POST work to it (a text/plain body needs no CORS preflight), and through DNS
 * rebinding (a name of the attacker's that resolves to 127.0.0.1) it can read the answers too. Ollama
 * closed the same hole this way, and so does this:
 * - On a loopback bind, the Host header must name this machine's loopback: an IP address, `localhost` or
 *   a `.localhost` name. A rebinding page sends its own name, and is refused.
 * - A request with an Origin header (browsers send one on every cross-origin POST) is served only for a
 *   loopback origin or one given with `--allow-origin`; those also get CORS headers, so that a page the
 *   user chose can read the answer. Clients outside a browser send no Origin and are not affected.
 */
import { isIP } from 'node:net';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return LOOPBACK_NAMES.has(bare) || bare.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(bare);
}

/** The host name of a Host header, without its port ("[::1]:8000" -> "::1"). */
function hostName(hostHeader: string): string {
  const bracketed = /^\[([^\]]+)\](:\d+)?$/.exec(hostHeader);
  if (bracketed) return bracketed[1]!;
  // An IPv6 address without brackets has no port.
  if (isIP(hostHeader) === 6) return hostHeader;
  return hostHeader.replace(/:\d+$/, '');
}

export interface BrowserGuard {
  /** Why the request is refused (for a 403), or null. */
  refusal(hostHeader: string | undefined, origin: string | undefined): string | null;
}

/**
 * `bindHost` is what the server listens on; `allowedOrigins` are the `--allow-origin` values: exact
 * origins (`https://example.com`) or `*` for any.
 */
export function browserGuard(bindHost: string, allowedOrigins: readonly string[]): BrowserGuard {
  const loopbackBind = isLoopbackHost(bindHost);
  const anyOrigin = allowedOrigins.includes('*');
  const listed = new Set(allowedOrigins.map((origin) => origin.replace(/\/$/, '').toLowerCase()));
  const originAllowed = (origin: string): boolean => {
    if (anyOrigin || listed.has(origin.toLowerCase())) return true;
    try {
      const url = new URL(origin);
      return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.hostname);
    } catch {
      // "null" (a sandboxed frame, a file: page) and anything unparsable.
      return false;
    }
  };
  return {
    refusal(hostHeader, origin) {
      if (loopbackBind) {
        const name = hostName(hostHeader ?? '');
        if (!isIP(name) && !isLoopbackHost(name)) {
          return `the Host header "${hostHeader ?? ''}" is not this machine's loopback: a server on ${bindHost} answers only localhost and IP addresses`;
        }
      }
      if (origin !== undefined && !originAllowed(origin)) {
        return `requests from web pages at ${origin} are refused: start pali serve with --allow-origin ${origin} to allow that page`;
      }
      return null;
    },
  };
}

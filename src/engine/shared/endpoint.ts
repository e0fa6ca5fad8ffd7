/**
 * Where the per-user shared engine listens (issue #21): a Unix domain socket in a folder only this user
 * may enter, named with the protocol version (an engine of another version is never reached) and the
 * cache folder it serves, and
 * a random token in a file only this user may read, which a client must present before anything else.
 * A second OS user can neither enter the folder nor read the token.
 *
 * The folder is $XDG_RUNTIME_DIR/paligemma (a per-user tmpfs that the session manager removes at logout),
 * else `run` in our cache folder. Unix socket paths are limited to about 104 bytes; a longer one moves to
 * a private folder under the system's temporary folder.
 *
 * On Windows the engine listens on a named pipe. Pipes share one namespace across the machine's users and
 * Node cannot give one an access list, so the pipe's name is a secret: it is derived from the token, which
 * only this user can read (the folder is in the user's LOCALAPPDATA, whose access list admits the user alone).
 * Another user can then neither find the pipe to connect, nor create it first to pose as the engine; and
 * Windows' default access list for a pipe gives other users no write access, which a client needs.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROTOCOL_VERSION } from '../../protocol.js';
import { UserError } from '../../common/errors.js';

export interface SharedEndpoint {
  dir: string;
  socket: string;
  tokenFile: string;
  /** Held (created exclusively, with the holder's pid) by the engine that is starting or running. */
  lockFile: string;
}

/** sun_path is 108 bytes on Linux and 104 on macOS, the terminating NUL included. */
const SOCKET_PATH_LIMIT = 100;

export function sharedEndpoint(cacheRoot: string, platform: NodeJS.Platform = process.platform): SharedEndpoint {
  // One engine per cache folder: its conversions live there, and a test's own cache never meets the
  // engine a user has running.
  const name = `engine-v${PROTOCOL_VERSION}-${createHash('sha256').update(path.resolve(cacheRoot)).digest('hex').slice(0, 12)}`;
  if (platform === 'win32') {
    // The token names the pipe: it stays in the user's own profile (LOCALAPPDATA), wherever the cache is.
    const local = process.env.LOCALAPPDATA;
    const dir = local && path.isAbsolute(local) ? path.join(local, 'paligemma', 'run') : path.join(cacheRoot, 'run');
    return { dir, socket: path.join(dir, `${name}.sock`), tokenFile: path.join(dir, `${name}.token`), lockFile: path.join(dir, `${name}.lock`) };
  }
  const runtime = process.env.XDG_RUNTIME_DIR;
  let dir = runtime && path.isAbsolute(runtime) && fs.existsSync(runtime) ? path.join(runtime, 'paligemma') : path.join(cacheRoot, 'run');
  if (Buffer.byteLength(path.join(dir, `${name}.sock`)) > SOCKET_PATH_LIMIT) dir = path.join(os.tmpdir(), `paligemma-${os.userInfo().uid}`);
  return { dir, socket: path.join(dir, `${name}.sock`), tokenFile: path.join(dir, `${name}.token`), lockFile: path.join(dir, `${name}.lock`) };
}

/** Where the engine listens and clients connect: the socket, or on Windows the pipe that `token` names. */
export function listenPath(endpoint: SharedEndpoint, token: string, platform: NodeJS.Platform = process.platform): string {
  if (platform !== 'win32') return endpoint.socket;
  return `\\\\.\\pipe\\paligemma-v${PROTOCOL_VERSION}-${createHash('sha256').update(token).digest('hex').slice(0, 32)}`;
}

/**
 * Creates the folder (0700) or checks that an existing one is this user's and closed to others: a folder
 * someone else made, or one others may enter, could hand a client a stranger's socket. (Windows has no
 * modes: there the folder sits in the user's own profile, and the pipe's name is the secret.)
 */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = fs.lstatSync(dir);
  if (!stat.isDirectory()) throw new UserError(`${dir} is not a folder: the shared engine's socket cannot be made there`);
  if (process.platform === 'win32') return;
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) throw new UserError(`${dir} belongs to another user: the shared engine will not use it`);
  if ((stat.mode & 0o077) !== 0) throw new UserError(`${dir} can be entered by other users (mode ${(stat.mode & 0o777).toString(8)}): run chmod 700 on it, or remove it`);
}

/** A new token, written so that only this user can read it (0600, replacing any earlier one atomically). */
export function writeToken(endpoint: SharedEndpoint): string {
  const token = randomBytes(32).toString('hex');
  const partial = `${endpoint.tokenFile}.${process.pid}`;
  fs.writeFileSync(partial, token, { mode: 0o600 });
  fs.renameSync(partial, endpoint.tokenFile);
  return token;
}

export function readToken(endpoint: SharedEndpoint): string | null {
  try {
    return fs.readFileSync(endpoint.tokenFile, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

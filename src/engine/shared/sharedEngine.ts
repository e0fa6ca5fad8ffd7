/**
 * `pali serve --shared`: one engine per user, which every client shares (issue #21), as Ollama runs one
 * server per machine. It listens on the private socket of endpoint.ts, welcomes clients that present the
 * token (handshake.ts), and serves each over JSON-RPC with the same requests as the per-window engine.
 * Requests of every client share one fair queue; each client's requests run on the model it chose, and
 * a request for another model swaps it in when its turn comes. A client's cancellation, or its going
 * away, cancels only its own requests.
 *
 * It unloads the model after keepAlive minutes without a request (0 keeps it), and exits once it has
 * no client and no model: a few seconds after its last client leaves with nothing loaded, or after the
 * unload. Only one runs per user and protocol version: the lock file holds its pid while it runs.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { createMessageConnection, SocketMessageReader, SocketMessageWriter } from 'vscode-jsonrpc/node';
import { ShutdownRequest, StatusRequest } from '../../protocol.js';
import { UserError } from '../../common/errors.js';
import { isAlive } from '../processes.js';
import { EngineService } from '../server/engineService.js';
import { serveRequests, toSignal } from '../server/server.js';
import { acceptHello } from './handshake.js';
import { ensurePrivateDir, sharedEndpoint, sharedEngineSupported, writeToken, type SharedEndpoint } from './endpoint.js';

export interface SharedEngineOptions {
  cacheRoot: string;
  /** Minutes without a request before the model is unloaded; 0 keeps it loaded. */
  keepAliveMinutes: number;
  log: (line: string) => void;
  /** How long it waits, with no client and nothing loaded, before it exits. */
  lonelyExitMs?: number;
}

const DEFAULT_LONELY_EXIT_MS = 10_000;
const IDLE_CHECK_MS = 1000;

/**
 * Takes the lock, or says who holds it. A lock whose process is gone (killed, power cut) is taken over;
 * of two engines starting at once, the one whose exclusive create succeeds wins.
 */
function takeLock(endpoint: SharedEndpoint): { taken: true } | { taken: false; pid: number } {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(endpoint.lockFile, 'wx', 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return { taken: true };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number(fs.readFileSync(endpoint.lockFile, 'utf8'));
      // A lock being written has no pid yet: its writer is alive.
      if (!pid || isAlive(pid)) return { taken: false, pid };
      fs.rmSync(endpoint.lockFile, { force: true });
    }
  }
  return { taken: false, pid: Number(fs.readFileSync(endpoint.lockFile, 'utf8')) };
}

function removeQuietly(file: string): void {
  fs.rmSync(file, { force: true });
}

/** Serves until it has no client and no model, or `pali stop` asks; resolves with how it ended. */
export async function runSharedEngine(options: SharedEngineOptions): Promise<'stopped' | 'idle' | 'already running'> {
  if (!sharedEngineSupported()) throw new UserError('a shared engine needs Unix domain sockets; on Windows each window runs its own engine');
  const endpoint = sharedEndpoint(options.cacheRoot);
  ensurePrivateDir(endpoint.dir);
  const lock = takeLock(endpoint);
  if (!lock.taken) {
    options.log(`pali: a shared engine is already running (pid ${lock.pid})`);
    return 'already running';
  }
  const service = new EngineService({ cacheRoot: options.cacheRoot });
  const server = net.createServer();
  let clients = 0;
  const sockets = new Set<net.Socket>();
  let ended: (how: 'stopped' | 'idle') => void = () => {};
  const done = new Promise<'stopped' | 'idle'>((resolve) => (ended = resolve));
  // Set when the last client leaves (or the model is unloaded): an engine started by hand waits for its
  // first client however long that takes.
  let lonelySince: number | null = null;
  try {
    // The lock is ours, so a socket file left behind belongs to a dead engine.
    removeQuietly(endpoint.socket);
    const token = writeToken(endpoint);
    server.on('connection', (socket) => void welcome(socket));
    async function welcome(socket: net.Socket): Promise<void> {
      socket.on('error', () => undefined);
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      if (!(await acceptHello(socket, token))) return;
      clients++;
      const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
      const gone = new AbortController();
      serveRequests(connection, service, { signal: (t) => AbortSignal.any([toSignal(t), gone.signal]), perClientModel: true });
      connection.onRequest(StatusRequest, () => ({ ...service.status(), clients }));
      connection.onRequest(ShutdownRequest, async () => {
        options.log('pali: stopping: asked to by a client');
        server.close();
        // The answer goes once the requests in flight are answered; the end comes after it has been sent.
        await service.drain();
        setTimeout(() => ended('stopped'), 50);
      });
      connection.onClose(() => {
        gone.abort();
        clients--;
        if (clients === 0) lonelySince = Date.now();
      });
      connection.listen();
      socket.resume();
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(endpoint.socket, () => resolve());
    });
    fs.chmodSync(endpoint.socket, 0o600);
    options.log(`pali: shared engine ${process.pid} listening on ${endpoint.socket}`);
    const lonelyExitMs = options.lonelyExitMs ?? DEFAULT_LONELY_EXIT_MS;
    const keepAliveMs = options.keepAliveMinutes * 60_000;
    const check = setInterval(() => {
      if (!service.idleNow) return;
      if (keepAliveMs > 0 && service.loaded && Date.now() - service.lastActiveAt >= keepAliveMs) {
        options.log(`pali: no request for ${options.keepAliveMinutes} minute(s): unloading the model`);
        lonelySince = Date.now();
        void service.unload();
        return;
      }
      if (clients === 0 && sockets.size === 0 && !service.loaded && lonelySince !== null && Date.now() - Math.max(lonelySince, service.lastActiveAt) >= lonelyExitMs) ended('idle');
    }, Math.min(IDLE_CHECK_MS, lonelyExitMs));
    const how = await done;
    clearInterval(check);
    return how;
  } finally {
    server.close();
    // Clients get the end of the stream (and any answer still being written), then the sockets go.
    for (const socket of sockets) socket.end();
    if (sockets.size) await new Promise((resolve) => setTimeout(resolve, 200));
    for (const socket of sockets) socket.destroy();
    await service.unload();
    removeQuietly(endpoint.socket);
    removeQuietly(endpoint.tokenFile);
    removeQuietly(endpoint.lockFile);
  }
}

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
import { EngineEventNotification, ShutdownRequest, StatusRequest, type EngineEventParams } from '../../protocol.js';
import type { MessageConnection } from 'vscode-jsonrpc/node';
import { describeError } from '../../common/errors.js';
import { isAlive } from '../processes.js';
import { EngineService } from '../service/engineService.js';
import { serveRequests, toSignal } from '../service/jsonRpcServer.js';
import { acceptHello } from './handshake.js';
import { ensurePrivateDir, listenPath, sharedEndpoint, writeToken, type SharedEndpoint } from './endpoint.js';

export interface SharedEngineOptions {
  cacheRoot: string;
  /** Minutes without a request before the model is unloaded; 0 keeps it loaded. */
  keepAliveMinutes: number;
  log: (line: string) => void;
  /** How long it waits, with no client and nothing loaded, before it exits. */
  lonelyExitMs?: number;
  /**
   * Started by a client (startSharedEngine.ts) rather than by hand: the wait for a client starts when it
   * listens, so that one whose client gave up waiting for it (a slow start) does not run for ever.
   */
  startedByClient?: boolean;
  /** Ctrl+C or SIGTERM: it stops as `pali stop` asks, once the requests in flight are answered. */
  signal?: AbortSignal;
}

/** Minutes an idle model stays loaded: a warm load of the int8 3B takes 3-5 s, a conversion much more. */
export const DEFAULT_KEEP_ALIVE_MINUTES = 10;
const DEFAULT_LONELY_EXIT_MS = 10_000;
const IDLE_CHECK_MS = 1000;

/** A lock or takeover file with no pid this long after it was made lost its writer (killed between the two steps). */
const UNWRITTEN_LOCK_MS = 5000;

/** Creates `file` holding this pid, unless it exists. */
function createExclusive(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeSync(fd, String(process.pid));
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Who holds `file`: its pid (0 while being written), whether that holder is gone, or that there is no file. */
function holderOf(file: string): { pid: number; gone: boolean; missing?: true } {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8'));
    if (pid) return { pid, gone: !isAlive(pid) };
    return { pid: 0, gone: Date.now() - fs.statSync(file).mtimeMs > UNWRITTEN_LOCK_MS };
  } catch {
    return { pid: 0, gone: true, missing: true }; // removed meanwhile
  }
}

/**
 * Takes the lock, or says who holds it. Of two engines starting at once, the one whose exclusive create
 * succeeds wins. A lock whose holder is gone (killed, power cut) is taken over, and only by whoever
 * first creates the takeover file: two engines that find the same dead lock must not both remove it,
 * or the second would remove the first one's new lock and both would serve.
 */
async function takeLock(endpoint: SharedEndpoint): Promise<{ taken: true } | { taken: false; pid: number }> {
  const takeover = `${endpoint.lockFile}.takeover`;
  for (let attempt = 0; attempt < 20; attempt++) {
    if (createExclusive(endpoint.lockFile)) return { taken: true };
    const holder = holderOf(endpoint.lockFile);
    if (!holder.gone) return { taken: false, pid: holder.pid };
    if (createExclusive(takeover)) {
      try {
        // Still the dead holder's lock (not one taken meanwhile), and the takeover still ours (not removed
        // as stale by another): remove it, then take it.
        const again = holderOf(endpoint.lockFile);
        const stillOurs = holderOf(takeover).pid === process.pid;
        if (stillOurs && again.gone && !again.missing && again.pid === holder.pid) fs.rmSync(endpoint.lockFile, { force: true });
        if (createExclusive(endpoint.lockFile)) return { taken: true };
      } finally {
        fs.rmSync(takeover, { force: true });
      }
    } else if (holderOf(takeover).gone) {
      fs.rmSync(takeover, { force: true });
    }
    // Another engine is taking the lock over: see who holds it in a moment.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { taken: false, pid: holderOf(endpoint.lockFile).pid };
}

function removeQuietly(file: string): void {
  fs.rmSync(file, { force: true });
}

/** Serves until it has no client and no model, or `pali stop` asks; resolves with how it ended. */
export async function runSharedEngine(options: SharedEngineOptions): Promise<'stopped' | 'idle' | 'already running'> {
  const endpoint = sharedEndpoint(options.cacheRoot);
  ensurePrivateDir(endpoint.dir);
  const lock = await takeLock(endpoint);
  if (!lock.taken) {
    options.log(lock.pid ? `pali: a shared engine is already running (pid ${lock.pid})` : 'pali: a shared engine is already starting');
    return 'already running';
  }
  // Every client hears of an unload over one client's memory limit: the model has gone for all of them.
  const service = new EngineService({ cacheRoot: options.cacheRoot, log: options.log, onUnloadedOverLimit: (why) => tellClients({ event: 'model-unloaded', why }) });
  // The latest request's keepAlive holds (Ollama's keep_alive): a window whose setting changed is heard at once.
  let keepAliveMinutes = options.keepAliveMinutes;
  const setKeepAlive = (minutes: number) => {
    if (!Number.isFinite(minutes) || minutes < 0 || minutes === keepAliveMinutes) return;
    keepAliveMinutes = minutes;
    options.log(`pali: keeping an idle model loaded for ${minutes} minute(s)${minutes === 0 ? ' (0: always)' : ''}, as the latest request asks`);
  };
  const server = net.createServer();
  const connections = new Set<MessageConnection>();
  const sockets = new Set<net.Socket>();
  // Every client hears it; one that has gone meanwhile is skipped (vscode-jsonrpc throws or rejects).
  const tellClients = (event: EngineEventParams) => {
    for (const connection of connections) {
      try {
        void connection.sendNotification(EngineEventNotification, event).catch(() => undefined);
      } catch {
        // Closed: that client has gone.
      }
    }
  };
  let ended: (how: 'stopped' | 'idle') => void = () => {};
  const done = new Promise<'stopped' | 'idle'>((resolve) => (ended = resolve));
  // Set when the last client leaves (or the model is unloaded): an engine started by hand waits for its
  // first client however long that takes.
  let lonelySince: number | null = null;
  let stopping: Promise<void> | undefined;
  // No new connection, no new request; the answer to a shutdown request goes once those in flight are
  // answered, and the end comes after it has been sent.
  const stop = (why: string) => (stopping ??= (async () => {
    options.log(`pali: stopping: ${why}; answering the requests in flight first`);
    tellClients({ event: 'stopping', why });
    server.close();
    await service.stopIntake();
    setTimeout(() => ended('stopped'), 50);
  })());
  const interrupted = () => void stop('interrupted');
  options.signal?.addEventListener('abort', interrupted, { once: true });
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
      const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
      const gone = new AbortController();
      serveRequests(connection, service, { signal: (t) => AbortSignal.any([toSignal(t), gone.signal]), perClientModel: true, onKeepAlive: setKeepAlive });
      connections.add(connection);
      connection.onRequest(StatusRequest, () => ({ ...service.status(), clients: connections.size }));
      connection.onRequest(ShutdownRequest, () => stop('asked to by a client'));
      connection.onClose(() => {
        gone.abort();
        connections.delete(connection);
        if (connections.size === 0) lonelySince = Date.now();
      });
      connection.listen();
      socket.resume();
    }
    const address = listenPath(endpoint, token);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address, () => resolve());
    });
    if (process.platform !== 'win32') fs.chmodSync(address, 0o600);
    // A pipe's name is a secret (endpoint.ts): the log, which other users may read, names the folder only.
    if (options.startedByClient) lonelySince = Date.now();
    options.log(`pali: shared engine ${process.pid} listening on ${process.platform === 'win32' ? `a named pipe (its name in ${endpoint.tokenFile})` : address}`);
    const lonelyExitMs = options.lonelyExitMs ?? DEFAULT_LONELY_EXIT_MS;
    const check = setInterval(() => {
      if (!service.idleNow) return;
      if (keepAliveMinutes > 0 && service.loaded && Date.now() - service.lastActiveAt >= keepAliveMinutes * 60_000) {
        options.log(`pali: no request for ${keepAliveMinutes} minute(s): unloading the model`);
        lonelySince = Date.now();
        if (!stopping) {
          service.unloadWhenIdle().then(
            () => tellClients({ event: 'model-unloaded', why: `no request for ${keepAliveMinutes} minute(s) (paligemma.keepAlive)` }),
            (error: unknown) => options.log(`pali: the idle unload failed: ${describeError(error)}`),
          );
        }
        return;
      }
      if (connections.size === 0 && sockets.size === 0 && !service.loaded && lonelySince !== null && Date.now() - Math.max(lonelySince, service.lastActiveAt) >= lonelyExitMs) ended('idle');
    }, Math.min(IDLE_CHECK_MS, lonelyExitMs));
    if (options.signal?.aborted) interrupted();
    const how = await done;
    clearInterval(check);
    return how;
  } finally {
    options.signal?.removeEventListener('abort', interrupted);
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

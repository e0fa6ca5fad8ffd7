/**
 * The shared engine from the command line (engine/shared/): `pali serve --shared` runs it, `pali ps`
 * says what it holds, `pali stop` ends it, as Ollama's `ps` and `stop` do.
 */
import * as path from 'node:path';
import { ShutdownRequest, StatusRequest, type EngineStatus } from '../../protocol.js';
import { defaultCacheRoot } from '../convert/convert.js';
import { isAlive } from '../processes.js';
import { connectToSharedEngine } from '../shared/sharedClient.js';
import { DEFAULT_KEEP_ALIVE_MINUTES, runSharedEngine } from '../shared/sharedEngine.js';
import { decimal, parse, text } from './args.js';
import type { Io } from './modelArgs.js';


// Resolved once: the engine and its clients must name the same folder whatever their working folders.
const cacheRootOf = (value: string | boolean | string[] | undefined) => path.resolve(text(value) ?? defaultCacheRoot());

export async function serveSharedCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, {
    shared: { type: 'boolean' }, 'keep-alive': { type: 'string' }, linger: { type: 'string' }, 'cache-dir': { type: 'string' }, 'started-by-client': { type: 'boolean' },
  });
  // Ctrl+C reaches io.signal; SIGTERM (a service manager, `kill`) would end the process at once and leave
  // the lock, the token and the socket behind.
  const stop = new AbortController();
  const terminate = () => stop.abort();
  io.signal.addEventListener('abort', terminate, { once: true });
  process.once('SIGTERM', terminate);
  try {
    await runSharedEngine({
      cacheRoot: cacheRootOf(values['cache-dir']),
      keepAliveMinutes: decimal(values['keep-alive'], 'keep-alive', DEFAULT_KEEP_ALIVE_MINUTES),
      lonelyExitMs: values.linger === undefined ? undefined : decimal(values.linger, 'linger', 10) * 1000,
      startedByClient: values['started-by-client'] === true,
      log: (line) => io.err(line),
      signal: stop.signal,
    });
  } finally {
    io.signal.removeEventListener('abort', terminate);
    process.removeListener('SIGTERM', terminate);
  }
}

function describeStatus(status: EngineStatus): string {
  const model = status.model ? `${path.basename(status.model.modelDir)} (${status.model.dtype} on ${status.model.device})` : 'no model loaded';
  // The engine counts every connection, this one of `pali ps` included.
  const clients = Math.max(0, (status.clients ?? 1) - 1);
  return `pid ${status.pid}, ${clients} client${clients === 1 ? '' : 's'}, ${model}, ${status.state}${status.queued ? ` (${status.queued} queued)` : ''}, ${status.memory.residentMB} MB resident`;
}

export async function psCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, { json: { type: 'boolean' }, 'cache-dir': { type: 'string' } });
  const engine = await connectToSharedEngine(cacheRootOf(values['cache-dir']));
  if (!engine) {
    io.out(values.json ? 'null\n' : 'no shared engine is running\n');
    return;
  }
  try {
    const status = await engine.connection.sendRequest(StatusRequest);
    io.out(values.json ? `${JSON.stringify(status)}\n` : `${describeStatus(status)}\n`);
  } finally {
    engine.close();
  }
}

export async function stopCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, { 'cache-dir': { type: 'string' } });
  const engine = await connectToSharedEngine(cacheRootOf(values['cache-dir']));
  if (!engine) {
    io.err('pali: no shared engine is running');
    return;
  }
  try {
    // The engine may close the connection before its answer arrives: either means it is stopping.
    const closed = new Promise<void>((resolve) => engine.connection.onClose(() => resolve()));
    await Promise.race([engine.connection.sendRequest(ShutdownRequest), closed]);
  } finally {
    engine.close();
  }
  // It answers the requests in flight first, then unloads and exits.
  for (let waited = 0; waited < 60_000 && isAlive(engine.pid); waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
  io.err(isAlive(engine.pid) ? `pali: the shared engine (pid ${engine.pid}) is still finishing its requests` : `pali: stopped the shared engine (pid ${engine.pid})`);
}

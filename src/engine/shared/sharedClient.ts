/**
 * A client's way into the shared engine (sharedEngine.ts): connect to its socket (a named pipe on Windows,
 * endpoint.ts), present the token, then speak the engine's JSON-RPC protocol. Null when none is running, so that a front door can run in
 * process instead; never starts one.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { createMessageConnection, SocketMessageReader, SocketMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { ensurePrivateDir, listenPath, readToken, sharedEndpoint } from './endpoint.js';
import { sayHello } from './handshake.js';
import { describeError, UserError } from '../../common/errors.js';

export interface SharedEngineConnection {
  connection: MessageConnection;
  pid: number;
  close(): void;
}

function connectSocket(file: string): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const socket = net.connect(file);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    // ENOENT or ECONNREFUSED: the engine has gone (or is going) away.
    socket.once('error', () => resolve(null));
  });
}

/** A shared engine is there but would not take us: it refused the handshake or did not answer it. */
export class SharedEngineUnreachable extends UserError {}

export async function connectToSharedEngine(cacheRoot: string): Promise<SharedEngineConnection | null> {
  const endpoint = sharedEndpoint(cacheRoot);
  // A running engine has written its token (and then listens): no token, no engine.
  if (!fs.existsSync(endpoint.tokenFile)) return null;
  // Only a folder that is ours alone can hold a socket we trust.
  ensurePrivateDir(endpoint.dir);
  const token = readToken(endpoint);
  if (!token) return null;
  const socket = await connectSocket(listenPath(endpoint, token));
  if (!socket) return null;
  socket.on('error', () => undefined);
  let pid: number;
  try {
    ({ pid } = await sayHello(socket, token));
  } catch (error) {
    socket.destroy();
    throw new SharedEngineUnreachable(`the shared engine of ${endpoint.dir} did not take this client: ${describeError(error)}`);
  }
  const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
  // vscode-jsonrpc rejects the requests in flight only on dispose: an engine that dies must not leave the
  // client waiting for ever.
  connection.onClose(() => connection.dispose());
  connection.listen();
  socket.resume();
  return {
    connection,
    pid,
    close: () => {
      connection.dispose();
      socket.end();
    },
  };
}

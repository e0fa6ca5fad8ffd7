/**
 * The first line on a shared engine's socket, before any JSON-RPC: the client presents the protocol
 * version and the token from the engine's 0600 token file; the engine answers with its own version and
 * pid, or says why it refuses and closes. Only then do both sides speak JSON-RPC (vscode-jsonrpc) on it.
 */
import { timingSafeEqual } from 'node:crypto';
import type * as net from 'node:net';
import { PROTOCOL_VERSION } from '../../protocol.js';
import { describeError } from '../../common/errors.js';

const LINE_LIMIT = 4096;
/**
 * How long either side waits for the other's first line. Long, because creating an ONNX Runtime session
 * blocks the engine's event loop (about 6 s for the int8 3B's decoder on 2 cores, 23 s while its prepared
 * copy is written): the engine's timer would fire before it read a hello that arrived meanwhile, and a
 * client that gave up would load a second copy of the model in its own process.
 */
const TIMEOUT_MS = 60_000;

interface Hello {
  hello: 'pali';
  protocol: number;
  token: string;
}

type Answer = { welcome: 'pali'; protocol: number; pid: number } | { refused: string };

/** One newline-ended JSON line; bytes after it are put back for whoever reads next. */
function readLine(socket: net.Socket, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error: Error | null, value?: unknown) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.pause();
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf(0x0a);
      if (end < 0) {
        if (buffered.length > LINE_LIMIT) finish(new Error('the first line is too long'));
        return;
      }
      const rest = buffered.subarray(end + 1);
      try {
        const value: unknown = JSON.parse(buffered.subarray(0, end).toString('utf8'));
        finish(null, value);
      } catch {
        finish(new Error('the first line is not JSON'));
      }
      if (rest.length) socket.unshift(rest);
    };
    const onClose = () => finish(new Error('the connection closed'));
    const onError = (error: Error) => finish(error);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}

function sameToken(given: unknown, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The engine's side: true when the client presented this version and the token (the socket is then paused). */
export async function acceptHello(socket: net.Socket, token: string, timeoutMs = TIMEOUT_MS): Promise<boolean> {
  let refusal: string | null;
  try {
    const hello = (await readLine(socket, timeoutMs)) as Partial<Hello> | null;
    refusal = hello?.hello !== 'pali' ? 'not a PaliGemma client'
      : hello.protocol !== PROTOCOL_VERSION ? `this engine speaks protocol ${PROTOCOL_VERSION}, not ${String(hello.protocol)}`
      : !sameToken(hello.token, token) ? 'wrong token'
      : null;
  } catch (error) {
    refusal = describeError(error);
  }
  const answer: Answer = refusal === null ? { welcome: 'pali', protocol: PROTOCOL_VERSION, pid: process.pid } : { refused: refusal };
  if (socket.writable) socket.write(`${JSON.stringify(answer)}\n`);
  if (refusal !== null) socket.end();
  return refusal === null;
}

/** The client's side: the engine's pid once it has welcomed us; an error saying why otherwise. */
export async function sayHello(socket: net.Socket, token: string, timeoutMs = TIMEOUT_MS): Promise<{ pid: number }> {
  const hello: Hello = { hello: 'pali', protocol: PROTOCOL_VERSION, token };
  socket.write(`${JSON.stringify(hello)}\n`);
  const answer = (await readLine(socket, timeoutMs)) as Partial<Answer> | null;
  if (answer && 'welcome' in answer && answer.protocol === PROTOCOL_VERSION && typeof answer.pid === 'number') return { pid: answer.pid };
  throw new Error(answer && 'refused' in answer ? `the shared engine refused the connection: ${String(answer.refused)}` : 'the shared engine answered something else');
}

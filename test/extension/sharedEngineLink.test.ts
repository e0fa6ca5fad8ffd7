/**
 * SharedEngineLink, the extension's way into the user's shared engine, against the real built CLI: windows
 * that start at once end with one engine, detached from them, which both use; it tells them when it
 * unloads an idle model; a crash reaches every window as one and the next start brings a new engine;
 * `pali stop` is an end, not a crash; a window that lets go leaves the engine to the others.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GenerateRequest, LoadModelRequest, StatusRequest } from '../../src/protocol.js';
import { isAlive } from '../../src/engine/processes.js';
import type { ExitCause } from '../../src/extension/engine/engineLink.js';
import { sharedEngineLogFile } from '../../src/engine/shared/startSharedEngine.js';
import { SharedEngineLink, type SharedEngineOptions } from '../../src/extension/engine/sharedEngineLink.js';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { PALI_CLI } from '../helpers/pali.js';

function stopCommand(cacheDir: string): Promise<string> {
  return new Promise((resolve) => execFile(process.execPath, [PALI_CLI, 'stop', '--cache-dir', cacheDir], { encoding: 'utf8' }, (_, __, stderr) => resolve(stderr)));
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('SharedEngineLink on the real shared engine', { skip: process.platform === 'win32' ? 'Unix paths, signals and file modes' : false }, () => {
  const root = tempDir('shared-link');
  // A short private folder of the test's own: the engine and this process find the socket there.
  const runtimeDir = fs.mkdtempSync('/tmp/pali-link-');
  const savedRuntimeDir = process.env.XDG_RUNTIME_DIR;
  process.env.XDG_RUNTIME_DIR = runtimeDir;
  const links: SharedEngineLink[] = [];
  const pids = new Set<number>();
  let modelDir: string;
  let image: string;
  let cacheCount = 0;
  // Each test has its own cache folder, hence its own engine.
  const optionsFor = (keepAliveMinutes = 10): SharedEngineOptions => ({
    enginePath: PALI_CLI, command: process.execPath, env: {}, cacheDir: path.join(root, `cache-${++cacheCount}`), keepAliveMinutes,
  });
  const connect = async (options: SharedEngineOptions) => {
    const link = await SharedEngineLink.connectOrStart(options);
    links.push(link);
    pids.add(link.pid);
    return link;
  };
  const caption = async (link: SharedEngineLink, keepAliveMinutes?: number) => {
    await link.connection.sendRequest(LoadModelRequest, { modelDir, dtype: 'fp32', device: 'cpu', keepAliveMinutes });
    const pieces: string[] = [];
    const stop = link.onTextPieces('s', (piece) => pieces.push(piece));
    const result = await link.connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 6, streamId: 's', keepAliveMinutes });
    stop();
    assert.equal(pieces.join(''), result.text, 'the pieces streamed to this window make its answer');
    return result;
  };

  before(async () => {
    modelDir = forgeTiny(root, 'tiny', 3).checkpointDir;
    image = await writeGradientPng(path.join(root, 'image.png'), 48, 32);
  });
  after(() => {
    for (const link of links) link.kill();
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(runtimeDir, { recursive: true, force: true });
    if (savedRuntimeDir === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = savedRuntimeDir;
  });

  test('two windows starting at once end with one engine, which both use and which outlives them', { timeout: 120_000 }, async () => {
    const options = optionsFor();
    const [a, b] = await Promise.all([connect(options), connect(options)]);
    assert.equal(a.pid, b.pid, 'one engine serves both');
    assert.equal([a, b].filter((link) => link.startedHere).length >= 1, true);
    assert.equal(a.selfTest.node, process.version);
    const first = await caption(a);
    const second = await caption(b);
    assert.equal(second.text, first.text);
    assert.equal(second.cachedImage, true, 'the second window\'s request found the first one\'s image features: one model');
    assert.equal((await a.connection.sendRequest(StatusRequest)).clients, 2);
    assert.match(fs.readFileSync(sharedEngineLogFile(options.cacheDir), 'utf8'), new RegExp(`shared engine ${a.pid} listening`), 'the engine logs to the cache folder');
    // A window that lets go (closed, or restarting its engine) leaves the engine to the other one.
    a.kill();
    const third = await caption(b);
    assert.equal(third.text, first.text);
    assert.equal(isAlive(b.pid), true);
  });

  test('the engine tells its windows when it unloads an idle model', { timeout: 120_000 }, async () => {
    // 0.02 minutes: 1.2 s without a request.
    const link = await connect(optionsFor(0.02));
    const unloaded = new Promise<string>((resolve) => link.onModelUnloaded(resolve));
    await caption(link);
    assert.match(await unloaded, /no request for 0\.02 minute/);
    assert.equal((await link.connection.sendRequest(StatusRequest)).model, null);
    // The next request loads it again, on the same engine.
    await caption(link);
    assert.equal(link.gone, false);
  });

  test('a request\'s keepAlive holds from then on: a window whose setting changed is heard at once', { timeout: 120_000 }, async () => {
    // Started with 10 minutes; the request asks for 0.02 (1.2 s), as Ollama's keep_alive does.
    const link = await connect(optionsFor(10));
    const unloaded = new Promise<string>((resolve) => link.onModelUnloaded(resolve));
    await caption(link, 0.02);
    assert.match(await unloaded, /no request for 0\.02 minute/);
  });

  test('an engine killed with SIGKILL (as the out-of-memory killer does) is reported as killed to every window; their next requests, at once, bring one new engine', { timeout: 120_000 }, async () => {
    const options = optionsFor();
    const a = await connect(options);
    const b = await connect(options);
    await caption(a);
    const exits = [a, b].map((link) => new Promise<[NodeJS.Signals | null, ExitCause]>((resolve) => link.onExit((_, signal, cause) => resolve([signal, cause]))));
    process.kill(a.pid, 'SIGKILL');
    assert.deepEqual(await Promise.all(exits), [['SIGKILL', 'killed'], ['SIGKILL', 'killed']]);
    assert.equal(a.gone && b.gone, true);
    // Both windows' next requests come at once: one new engine serves both.
    const [again, alsoAgain] = await Promise.all([connect(options), connect(options)]);
    assert.notEqual(again.pid, a.pid);
    assert.equal(alsoAgain.pid, again.pid, 'one engine after the crash, not one per window');
    await caption(again);
    await caption(alsoAgain);
  });

  test('an engine that crashes otherwise is a crash, with the signal that ended it', { timeout: 120_000 }, async () => {
    // The engine aborts while loading the model (the fault the e2e runtime-fallback test injects).
    const link = await connect({ ...optionsFor(), env: { PALI_FAULT: 'abort-native-load' } });
    const exit = new Promise<[NodeJS.Signals | null, ExitCause]>((resolve) => link.onExit((_, signal, cause) => resolve([signal, cause])));
    await assert.rejects(link.connection.sendRequest(LoadModelRequest, { modelDir, dtype: 'fp32', device: 'cpu' }));
    assert.deepEqual(await exit, ['SIGABRT', 'crashed']);
  });

  test('an engine that runs out of memory is reported as such, from its log', { timeout: 120_000 }, async () => {
    // A small heap, then a message too large for it: V8 writes "heap out of memory" to the log and aborts.
    const link = await connect({ ...optionsFor(), env: { NODE_OPTIONS: '--max-old-space-size=64' } });
    const exit = new Promise<ExitCause>((resolve) => link.onExit((_, __, cause) => resolve(cause)));
    const huge = 'A'.repeat(200 * 2 ** 20);
    await assert.rejects(link.connection.sendRequest(GenerateRequest, { image: { base64: huge, name: 'huge.png' }, task: { task: 'ocr' } }));
    assert.equal(await exit, 'out-of-memory');
  });

  test('`pali stop` ends the engine as a stop, not a crash', { timeout: 120_000 }, async () => {
    const options = optionsFor();
    const link = await connect(options);
    const exit = new Promise<ExitCause>((resolve) => link.onExit((_, __, cause) => resolve(cause)));
    assert.match(await stopCommand(options.cacheDir), new RegExp(`stopped the shared engine \\(pid ${link.pid}\\)`));
    assert.equal(await exit, 'stopped');
    await until(() => !isAlive(link.pid), 10_000, 'the engine to exit');
  });

  test('an engine that cannot start says why, in its own words', { timeout: 60_000 }, async () => {
    const options = { ...optionsFor(), enginePath: path.join(root, 'missing-pali.js') };
    await assert.rejects(SharedEngineLink.connectOrStart(options), /the shared engine exited with code 1 before it listened: .*missing-pali\.js/);
  });
});

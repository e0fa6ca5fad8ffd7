/**
 * EngineProcess against a real `pali serve --ipc` (dist/pali.js) on this Node: the self test, a model load
 * and a streamed generation, a crash seen as one (and counted by CrashPolicy on an injected clock), an
 * intentional stop that is not, and engines that cannot start, each with the reason.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CrashPolicy } from '../../src/extension/engine/crashPolicy.js';
import { engineEnvironment } from '../../src/common/engineEnvironment.js';
import { EngineProcess, type EngineProcessOptions, type ExitCause } from '../../src/extension/engine/engineProcess.js';
import { GenerateRequest, LoadModelRequest } from '../../src/protocol.js';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { PALI_CLI as ENGINE } from '../helpers/pali.js';

describe('EngineProcess on a real engine', () => {
  const root = tempDir('engine-process');
  const options: EngineProcessOptions = { enginePath: ENGINE, command: process.execPath, env: {}, cacheDir: path.join(root, 'cache') };
  const started: EngineProcess[] = [];
  const start = async (overrides: Partial<EngineProcessOptions> = {}) => {
    const engine = await EngineProcess.start({ ...options, ...overrides });
    started.push(engine);
    return engine;
  };
  let checkpointDir: string;
  let image: string;
  before(async () => {
    checkpointDir = forgeTiny(root, 'tiny', 3).checkpointDir;
    image = await writeGradientPng(path.join(root, 'image.png'), 48, 32);
  });
  after(() => started.forEach((engine) => engine.kill()));

  test('passes its self test, loads a model and streams a generation', async () => {
    const stderr: string[] = [];
    const engine = await start({ onStderrLine: (line) => stderr.push(line) });
    assert.equal(engine.selfTest.node, process.version);
    assert.ok(engine.selfTest.backends.includes('cpu'), engine.selfTest.backends.join(', '));
    assert.equal(typeof engine.pid, 'number');
    await engine.connection.sendRequest(LoadModelRequest, { modelDir: checkpointDir, dtype: 'fp32', device: 'cpu' });
    const pieces: string[] = [];
    const stop = engine.onTextPieces('s', (piece) => pieces.push(piece));
    const result = await engine.connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 8, streamId: 's' });
    stop();
    assert.ok(result.text.length > 0);
    assert.equal(pieces.join(''), result.text);
    assert.equal(engine.gone, false);
  });

  test('a killed engine is reported once, with its signal, as killed', async () => {
    const engine = await start();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => engine.onExit((code, signal) => resolve({ code, signal })));
    process.kill(engine.pid!, 'SIGKILL');
    const { code, signal } = await exited;
    assert.equal(signal, 'SIGKILL');
    assert.equal(await engine.whyStopped(1000), 'killed');
    assert.equal(code, null);
    assert.equal(engine.gone, true);
  });

  // The policy alone, on a clock of its own; engineFaults.test.ts (e2e) drives it with five real crashes
  // of the extension's engine.
  test('the crash policy restarts until N crashes fall within its window, and again once the window has passed', () => {
    let clock = 1_000_000;
    const policy = new CrashPolicy(2, 60_000, () => clock);
    assert.equal(policy.shouldRestart(), true, 'first crash: restart');
    clock += 30_000;
    assert.equal(policy.shouldRestart(), false, 'second crash within the window: stop');
    clock += 61_000;
    assert.equal(policy.shouldRestart(), true, 'the window has passed: restart again');
  });

  test('kill() stops the engine without reporting a crash', async () => {
    const engine = await start();
    let reported = false;
    engine.onExit(() => (reported = true));
    const pid = engine.pid!;
    engine.kill();
    for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(isAlive(pid), false);
    assert.equal(reported, false);
  });

  test('an engine that runs out of memory says so when it stops', async () => {
    // A small heap, then a message too large for it: V8 reports "heap out of memory" and aborts.
    const engine = await start({ env: { NODE_OPTIONS: '--max-old-space-size=64' } });
    const stopped = new Promise<ExitCause>((resolve) => engine.onExit((_code, _signal, cause) => resolve(cause)));
    const huge = 'A'.repeat(200 * 2 ** 20);
    await assert.rejects(engine.connection.sendRequest(GenerateRequest, { image: { base64: huge, name: 'huge.png' }, task: { task: 'ocr' } }));
    assert.equal(await stopped, 'out-of-memory');
    assert.equal(await engine.whyStopped(0), 'out-of-memory');
  });

  test('an engine that cannot start says why: no program, an early exit, no answer', async () => {
    await assert.rejects(start({ command: path.join(root, 'no-such-node') }), /ENOENT/);
    const exits = path.join(root, 'exits.js');
    fs.writeFileSync(exits, 'process.exit(3);\n');
    await assert.rejects(start({ enginePath: exits }), /exited with code 3/);
    const silent = path.join(root, 'silent.js');
    fs.writeFileSync(silent, 'setInterval(() => {}, 1000);\n');
    await assert.rejects(start({ enginePath: silent, selfTestTimeoutMs: 500 }), /no answer to its self test within 500 ms/);
  });

  test('runs in the engine environment: two malloc arenas and huge pages, added to the tunables already set', async (t) => {
    assert.deepEqual(
      [undefined, 'glibc.malloc.tcache_count=0', 'glibc.malloc.hugetlb=0'].map((tunables) => engineEnvironment({ PATH: '/bin', GLIBC_TUNABLES: tunables }).GLIBC_TUNABLES),
      ['glibc.malloc.hugetlb=1', 'glibc.malloc.tcache_count=0:glibc.malloc.hugetlb=1', 'glibc.malloc.hugetlb=0'],
      "a person's own hugetlb setting wins",
    );
    if (process.platform !== 'linux') return t.skip('reads the engine\'s environment from /proc');
    // The engine inherits this process's tunables: without any, it must get the huge pages.
    const inherited = process.env.GLIBC_TUNABLES;
    delete process.env.GLIBC_TUNABLES;
    const engine = await start().finally(() => {
      if (inherited !== undefined) process.env.GLIBC_TUNABLES = inherited;
    });
    const environ = fs.readFileSync(`/proc/${engine.pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('MALLOC_ARENA_MAX=2'));
    assert.ok(environ.some((entry) => /^GLIBC_TUNABLES=(.*:)?glibc\.malloc\.hugetlb=1(:|$)/.test(entry)), environ.filter((e) => e.startsWith('GLIBC')).join(', '));
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

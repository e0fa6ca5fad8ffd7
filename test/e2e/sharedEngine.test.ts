/**
 * End to end: one shared engine for every window (paligemma.sharedEngine at its default): two windows and a
 * terminal's `pali` answered by one engine holding one model; `pali stop`; the idle unload.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sharedEndpoint } from '../../src/engine/shared/endpoint.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { pali as runPali } from '../helpers/pali.js';
import { pidsMapping } from '../helpers/sharedEngines.js';
import type { VsCode } from './vscodeHarness.js';
import { crashFiveTimes, killEngineMidRequest } from './flows.js';
import { applyWorkspaceSettings, cliCaption, keepScreenshot, launch, makeWorkspace, modelDir, pali, scenario, tinyModelSettings, useE2eSuite, waitForNewestCaption, writeWorkspaceSettings } from './suite.js';
import { describeFrame, notificationTexts, runCommand, runCommandAndPick, waitUntil } from './workbench.js';
import { describeError } from '../../src/common/errors.js';

useE2eSuite('shared-engine');

describe('One engine for every window', () => {
  let vscode: VsCode;
  let workspace: string;
  /** The extension's cache folder (PALI_CACHE_DIR, as ~/.cache/paligemma-local for a user), which names its shared engine. */
  let extensionCache: string;
  const engineLog = () => fs.readFileSync(path.join(extensionCache, 'shared-engine.log'), 'utf8');
  before(async () => {
    workspace = await makeWorkspace('shared-engine');
    // paligemma.sharedEngine at its default.
    vscode = await launch(workspace, { ...tinyModelSettings(), 'paligemma.sharedEngine': undefined });
    extensionCache = vscode.cacheDir;
  });
  after(() => vscode?.close());

  test('two windows answer from one engine holding one model: the second window finds it loaded', () =>
    scenario(vscode, 'shared-engine', async () => {
      const expected = cliCaption(workspace, 'photo.png');
      await runCommandAndPick(vscode.page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(vscode.page, expected, 'the first window');
      const engines = vscode.sharedEnginePids();
      assert.equal(engines.length, 1, `one shared engine: ${engines.join(', ')}`);
      assert.deepEqual(vscode.enginePids(), [], 'and no engine of the window\'s own');
      const second = await vscode.openWindow();
      // A tab of the same browser shares the first one's storage, so it may restore the first window's
      // Describe panel beside the new one: one panel, so that the test reads the one that answers.
      await runCommand(second, 'View: Close All Editors');
      await runCommandAndPick(second, 'PaliGemma: Describe Image', 'photo.png');
      // Once in CI (at b0c9815) the second window showed no caption within a minute: keep what it showed.
      await waitForNewestCaption(second, expected, 'the second window').catch(async (error: unknown) => {
        await keepScreenshot(second, 'shared-engine-second-window');
        const results = await describeFrame(second).locator('article.result').allTextContents().catch(() => ['(no Describe panel)']);
        throw new Error(`${describeError(error)}\nits Describe panel: ${JSON.stringify(results)}\nthe windows' log:\n${vscode.extensionLog(80)}\nthe engine's log:\n${engineLog()}`);
      });
      await second.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cpu · tiny-model' }).waitFor({ timeout: 30_000 });
      assert.deepEqual(vscode.sharedEnginePids(), engines, 'the second window used the same engine');
      const logged = vscode.extensionLog(Infinity);
      assert.match(logged, new RegExp(`shared engine pid ${engines[0]} \\(started on`), 'the first window started it');
      assert.match(logged, new RegExp(`shared engine pid ${engines[0]} \\(already running`), 'the second window found it running');
      // `pali caption` in a terminal with the same cache (as ~/.cache/paligemma-local is for a user): answered
      // by the windows' engine, with no load of its own.
      const cli = runPali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--json'], { PALI_CACHE_DIR: extensionCache });
      assert.equal(cli.code, 0, cli.stderr);
      const answered = JSON.parse(cli.stdout) as { text: string; shared_engine_pid?: number };
      assert.equal(answered.text.trim(), expected);
      assert.equal(answered.shared_engine_pid, engines[0], 'answered by the windows\' engine');
      // The MCP server VS Code offers agents (`pali mcp --shared`, from the installed extension): the same engine.
      const mcp = new Client({ name: 'e2e-agent', version: '1.0.0' });
      await mcp.connect(new StdioClientTransport({
        command: process.execPath,
        args: [path.join(vscode.extensionDir, 'dist', 'pali.js'), 'mcp', '--shared', '--model', modelDir, '--device', 'cpu', '--root', workspace],
        env: { ...process.env, PALI_CACHE_DIR: extensionCache } as Record<string, string>,
        stderr: 'ignore',
      }));
      try {
        const described = (await mcp.callTool({ name: 'describe_image', arguments: { image: { path: path.join(workspace, 'photo.png') } } })) as CallToolResult;
        assert.equal((described.content[0] as { text: string }).text, expected, 'the agent\'s answer');
        assert.deepEqual(vscode.sharedEnginePids(), engines, 'the MCP server used the same engine');
        // One process holds the model: only the engine has ONNX Runtime in memory, not the two windows'
        // extension hosts, not the MCP server (each would map the VSIX's onnxruntime-node libraries).
        assert.deepEqual(pidsMapping(path.join(vscode.extensionDir, 'node_modules', 'onnxruntime-node')), engines, 'only the shared engine maps ONNX Runtime');
      } finally {
        await mcp.close();
      }
      const loads = engineLog().split('\n').filter((line) => line.startsWith('pali: loaded '));
      assert.equal(loads.length, 1, `the model was loaded once, for both windows, the CLI and the MCP server:\n${engineLog()}`);
      await second.close();
    }));

  test('`pali stop` ends the shared engine without a crash warning; the next request starts one, which unloads the model after keepAlive and says so', () =>
    scenario(vscode, 'shared-engine-stop', async () => {
      const page = vscode.page;
      if (!vscode.sharedEnginePids().length) {
        // Run alone: a request starts the shared engine that the scenario before left running.
        await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
        await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'before the stop');
      }
      const [engine] = vscode.sharedEnginePids();
      assert.ok(engine, 'a shared engine runs');
      pali(['stop', '--cache-dir', extensionCache]);
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: off' }).waitFor({ timeout: 30_000 });
      assert.ok(await waitUntil(page, () => vscode.sharedEnginePids().length === 0, 15_000), 'the engine has exited');
      assert.deepEqual(await notificationTexts(page), [], 'a stop is no crash: no warning');
      // 0.05 minutes: 3 s without a request. The engine the next request starts takes this window's keepAlive.
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.keepAlive': 0.05 }, 'keepAliveMinutes=0.05');
      let reset: () => Promise<void>;
      try {
        await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
        await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'after the stop');
        const [again] = vscode.sharedEnginePids();
        assert.ok(again !== undefined && again !== engine, 'a new engine answered');
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: unloaded (idle)' }).waitFor({ timeout: 30_000 });
        assert.match(engineLog(), /pali: unloaded /);
        // The window is still connected: the engine keeps running, without a model.
        assert.deepEqual(vscode.sharedEnginePids(), [again]);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'keepAliveMinutes=10');
      }
      await reset();
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'after the unload');
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cpu · tiny-model' }).waitFor({ timeout: 30_000 });
    }));

  test('the shared engine killed mid-request: the request says so, and the next one starts a new engine', () =>
    scenario(vscode, 'shared-engine-killed', async () => {
      const page = vscode.page;
      const killed = await killEngineMidRequest(vscode, workspace, 'chart.png', {}, () => vscode.sharedEnginePids());
      await describeFrame(page).locator('#caption').click();
      await waitForNewestCaption(page, cliCaption(workspace, 'chart.png'), 'after the kill');
      const [again] = vscode.sharedEnginePids();
      assert.ok(again !== undefined && again !== killed, 'a new shared engine answered');
      assert.deepEqual(vscode.enginePids(), [], 'and no engine of the window\'s own');
    }));

  test('paligemma.engineMemoryLimitGB holds for the shared engine: over it, the model is unloaded and the request refused', () =>
    scenario(vscode, 'shared-engine-memory-limit', async () => {
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'within the limit');
      const [engine] = vscode.sharedEnginePids();
      assert.ok(engine, 'the shared engine answered');
      let reset: () => Promise<void>;
      try {
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.engineMemoryLimitGB': 0.01 }, 'engineMemoryLimitGB=0.01');
        await describeFrame(page).locator('#caption').click();
        await describeFrame(page).locator('article.result.error', { hasText: /the engine used \d+ MB on this request, over its limit of 10 MB/ }).first().waitFor({ timeout: 60_000 });
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: unloaded (idle)' }).waitFor({ timeout: 30_000 });
        assert.match(engineLog(), /pali: unloaded /);
        assert.deepEqual(vscode.sharedEnginePids(), [engine], 'the engine lives on, without the model');
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'engineMemoryLimitGB=0');
      }
      await reset();
      await describeFrame(page).locator('#caption').click();
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'with no limit');
    }));

  test('five crashes of the shared engine in three minutes stop it in the window, requests then say so, and "Restart Engine" brings one back', () =>
    scenario(vscode, 'shared-engine-crash-limit', () => crashFiveTimes(vscode, workspace, () => vscode.sharedEnginePids())));

  test('a shared engine that cannot be used (its folder open to other users) leaves the window on an engine of its own, and the tooltip says why', () =>
    scenario(vscode, 'shared-engine-fallback', async () => {
      const page = vscode.page;
      if (vscode.sharedEnginePids().length) {
        pali(['stop', '--cache-dir', extensionCache]);
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: off' }).waitFor({ timeout: 30_000 });
        assert.ok(await waitUntil(page, () => vscode.sharedEnginePids().length === 0, 15_000), 'the engine has exited');
      }
      const { dir } = sharedEndpoint(extensionCache);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.chmodSync(dir, 0o755);
      try {
        await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
        await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'on the window\'s own engine');
        assert.deepEqual(vscode.sharedEnginePids(), [], 'no shared engine started');
        assert.equal(vscode.enginePids().length, 1, 'the window runs its own');
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).first().hover();
        const tooltip = page.locator('.monaco-hover-content', { hasText: 'shared engine could not be used' }).first();
        await tooltip.waitFor();
        assert.match((await tooltip.textContent()) ?? '', /can be entered by other users[\s\S]*this window runs its own/);
      } finally {
        fs.chmodSync(dir, 0o700);
      }
    }));
});

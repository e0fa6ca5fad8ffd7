/**
 * End to end: an engine killed mid-request, five crashes in three minutes, an engine that dies loading on one
 * runtime (the next one takes over) and one killed while loading (a crash, not a broken runtime).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { VsCode } from './vscodeHarness.js';
import { crashFiveTimes, killEngineMidRequest } from './flows.js';
import { launch, makeWorkspace, modelDir, pali, scenario, tinyModelSettings, useE2eSuite } from './suite.js';
import { describeFrame, runCommandAndPick, statusBarText } from './workbench.js';

useE2eSuite('engine-faults');

describe('Engine faults', () => {
  let vscode: VsCode;
  let workspace: string;

  before(async () => {
    workspace = await makeWorkspace('faults');
    vscode = await launch(workspace, tinyModelSettings());
  });
  after(() => vscode?.close());

  test('killing the engine mid-request shows a clear message, and the next request succeeds', () =>
    scenario(vscode, 'engine-crash', async () => {
      const killed = await killEngineMidRequest(vscode, workspace, 'chart.png');
      const frame = describeFrame(vscode.page);
      await frame.locator('#caption').click();
      await frame.locator('article.result[data-action="caption"]:not(.error) vscode-button', { hasText: 'Copy' }).first().waitFor({ timeout: 120_000 });
      assert.notEqual(vscode.enginePids()[0], killed);
    }));

  test('five crashes in three minutes stop the engine, requests then say so, and "Restart Engine" on the error brings it back', () =>
    scenario(vscode, 'crash-limit', async () => {
      await crashFiveTimes(vscode, workspace, () => vscode.enginePids());
    }));
});

describe('Runtime fallback', () => {
  let vscode: VsCode;
  let workspace: string;
  // paligemma.nodePath: a node of the user's, which notes that it ran (it is tried after VS Code's own).
  let configuredNode: string;
  let configuredNodeRan: string;
  before(async () => {
    workspace = await makeWorkspace('fallback');
    configuredNode = path.join(workspace, '..', 'fallback-node.sh');
    configuredNodeRan = `${configuredNode}.ran`;
    fs.writeFileSync(configuredNode, `#!/bin/sh\ntouch '${configuredNodeRan}'\nexec '${process.execPath}' "$@"\n`, { mode: 0o755 });
    // Every engine on onnxruntime-node dies loading the model, as onnxruntime#29763 reports under Electron.
    vscode = await launch(workspace, { ...tinyModelSettings(), 'paligemma.nodePath': configuredNode }, { env: { PALI_FAULT: 'abort-native-load' } });
  });
  after(() => vscode?.close());

  test('an engine that dies loading the model moves on to the next runtime, down to WebAssembly, and says why', () =>
    scenario(vscode, 'runtime-fallback', async () => {
      const page = vscode.page;
      // int4 (auto on a CPU) differs a little between runtimes: onnxruntime-node's MatMulNBits rounds
      // activations to int8 (accuracy_level 4), WebAssembly's computes in float32. At fp32 they agree
      // exactly (test/cli). So the caption is the CLI's on the same WebAssembly runtime.
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--runtime', 'wasm', '--quiet']).trim();
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const caption = describeFrame(page).locator('article.result[data-action="caption"]').first();
      await caption.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 180_000 });
      assert.equal((await caption.locator('p.text').textContent())?.trim(), expected);
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · wasm' }).waitFor();
      await page.locator('.statusbar-item', { hasText: 'PaliGemma' }).first().hover();
      const tooltip = page.locator('.monaco-hover-content', { hasText: 'Runtime: WebAssembly' }).first();
      await tooltip.waitFor();
      const notes = (await tooltip.textContent()) ?? '';
      assert.match(notes, /stopped while loading the model; moving to WebAssembly/);
      assert.ok(notes.includes(`configured node (${configuredNode}) stopped while loading the model`), `the configured node was tried: ${notes}`);
      assert.ok(fs.existsSync(configuredNodeRan), 'paligemma.nodePath\'s program ran');
    }));
});

describe('Killed while loading', () => {
  let vscode: VsCode;
  before(async () => {
    const workspace = await makeWorkspace('killed-loading');
    // Every engine on onnxruntime-node is killed (SIGKILL, as the out-of-memory killer does) loading the model.
    vscode = await launch(workspace, tinyModelSettings(), { env: { PALI_FAULT: 'kill-native-load' } });
  });
  after(() => vscode?.close());

  test('an engine killed while loading is a crash, not a broken runtime: the error says so and the runtime stays', () =>
    scenario(vscode, 'killed-loading', async () => {
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const frame = describeFrame(page);
      await frame.locator('article.result.error', { hasText: 'was killed while working on this request' }).first().waitFor({ timeout: 60_000 });
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: off' }).waitFor({ timeout: 15_000 }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\nstatus: ${await statusBarText(page)}\n${vscode.extensionLog()}`);
      });
      await page.locator('.notifications-toasts', { hasText: 'stopped unexpectedly' }).waitFor({ timeout: 15_000 });
      const logged = vscode.extensionLog(Infinity);
      assert.doesNotMatch(logged, /moving to/, 'a kill does not move the engine to another runtime');
      assert.match(logged, /engine stopped unexpectedly \(signal SIGKILL\)/);
    }));
});

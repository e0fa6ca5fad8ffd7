/**
 * End to end: Restricted Mode: in an untrusted folder the workspace's model and node paths and remote
 * server are ignored, none of its code runs, remote images are not fetched, and the UI says why.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { VsCode } from './vscodeHarness.js';
import { hubModelDir, imageServer, launch, makeWorkspace, modelDir, pali, root, scenario, setWorkspaceSettings, tinyModelSettings, useE2eSuite } from './suite.js';
import { describeFrame, hoverText, notificationTexts, openFile, runCommandAndPick } from './workbench.js';

useE2eSuite('restricted-mode');

describe('Restricted Mode', () => {
  let vscode: VsCode;
  let workspace: string;
  const marker = () => path.join(root, 'workspace-code-ran');
  let serverRequests = 0;
  before(async () => {
    workspace = await makeWorkspace('untrusted');
    // A node path that, if it ever ran, would leave a marker (and then work as Node, hiding nothing else).
    const evilNode = path.join(workspace, '.vscode', 'node.sh');
    fs.writeFileSync(evilNode, `#!/bin/sh\ntouch '${marker()}'\nexec node "$@"\n`, { mode: 0o755 });
    // The workspace also points the extension at a "server" (the loopback image server, which counts
    // requests): an untrusted folder must not choose where images are sent.
    setWorkspaceSettings(workspace, { 'paligemma.modelPath': hubModelDir, 'paligemma.nodePath': evilNode, 'paligemma.backend': 'remote', 'paligemma.remote.url': imageServer.url });
    serverRequests = imageServer.requests;
    fs.writeFileSync(path.join(workspace, 'remote.md'), `![](${imageServer.url}/banner.png)\n`);
    // The user's own model; remote images allowed by the user, yet an untrusted folder must not make the
    // editor fetch anything. Engines on onnxruntime-node die loading the model (as in engineFaults.test.ts), so
    // every runtime would be tried, the workspace's node path among them if it were honoured.
    vscode = await launch(workspace, { ...tinyModelSettings(), 'paligemma.allowRemoteImages': true }, { trust: true, env: { PALI_FAULT: 'abort-native-load' } });
  });
  after(() => vscode?.close());

  test('in an untrusted folder the workspace\'s model and node paths and remote server are ignored, none of its code runs, and the UI says why', () =>
    scenario(vscode, 'untrusted', async () => {
      const page = vscode.page;
      await page.locator('.notifications-toasts', { hasText: 'Restricted Mode' }).waitFor({ timeout: 30_000 });
      const notice = (await notificationTexts(page)).find((t) => t.includes('Restricted Mode')) ?? '';
      assert.match(notice, /paligemma\.modelPath/);
      assert.match(notice, /paligemma\.nodePath/);
      assert.match(notice, /paligemma\.backend/);
      assert.match(notice, /paligemma\.remote\.url/);
      // The user's model answers (the workspace's is another seed), on the last runtime in line, and
      // nothing reaches the workspace's server.
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--runtime', 'wasm', '--quiet']).trim();
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const caption = describeFrame(page).locator('article.result[data-action="caption"]').first();
      await caption.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 180_000 });
      assert.equal((await caption.locator('p.text').textContent())?.trim(), expected);
      assert.equal(fs.existsSync(marker()), false, 'the workspace\'s node path ran');
      assert.equal(imageServer.requests, serverRequests, 'the workspace\'s remote server was asked');
    }));

  test('in an untrusted folder remote images are not fetched, even when the user allows them', () =>
    scenario(vscode, 'untrusted-remote', async () => {
      const page = vscode.page;
      const before = imageServer.requests;
      await page.keyboard.press('Escape');
      await openFile(page, 'remote.md');
      assert.match(await hoverText(page, '![](http', 4), /not fetched in an untrusted workspace/);
      assert.equal(imageServer.requests, before);
    }));
});

describe('Restricted Mode, with the shared engine', () => {
  let vscode: VsCode;
  let workspace: string;
  let serverRequests = 0;
  before(async () => {
    workspace = await makeWorkspace('untrusted-shared');
    setWorkspaceSettings(workspace, { 'paligemma.modelPath': hubModelDir, 'paligemma.backend': 'remote', 'paligemma.remote.url': imageServer.url });
    serverRequests = imageServer.requests;
    // paligemma.sharedEngine at its default: the engine that other windows and tools share.
    vscode = await launch(workspace, { ...tinyModelSettings(), 'paligemma.sharedEngine': undefined }, { trust: true });
  });
  after(() => vscode?.close());

  test('an untrusted window\'s requests reach the shared engine with the user\'s model, never the workspace\'s, and never its server', () =>
    scenario(vscode, 'untrusted-shared', async () => {
      const page = vscode.page;
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const caption = describeFrame(page).locator('article.result[data-action="caption"]').first();
      await caption.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
      assert.equal((await caption.locator('p.text').textContent())?.trim(), expected);
      const engines = vscode.sharedEnginePids();
      assert.equal(engines.length, 1, 'the shared engine answered');
      assert.deepEqual(vscode.enginePids(), [], 'not an engine of the window\'s own');
      const engineLog = fs.readFileSync(path.join(vscode.cacheDir, 'shared-engine.log'), 'utf8');
      assert.ok(engineLog.includes(`pali: loaded ${modelDir} `), `the engine loaded the user's model:\n${engineLog}`);
      assert.ok(!engineLog.includes(hubModelDir), 'the engine never heard of the workspace\'s model');
      assert.equal(imageServer.requests, serverRequests, 'the workspace\'s remote server was asked');
    }));
});


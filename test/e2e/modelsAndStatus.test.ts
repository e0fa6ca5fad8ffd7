/**
 * End to end: the model and the engine as the status bar shows them: a load ahead of the first hover, busy and
 * ready, a new model path, the idle unload (keepAlive), Select Model's gated download, and the status menu
 * and walkthrough commands.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { VsCode } from './vscodeHarness.js';
import { downloadGatedModel } from './flows.js';
import { GATED_REPO, HUB_TOKEN, applyWorkspaceSettings, cliCaption, hubModelDir, launch, logLines, makeWorkspace, modelDir, newestResultId, pali, repo, scenario, setWorkspaceSettings, tinyModelSettings, useE2eSuite, waitForNewestCaption, writeWorkspaceSettings } from './suite.js';
import { describeFrame, openFile, pickQuickItem, runCommand, runCommandAndPick, saveActiveEditor, statusBarText, waitUntil } from './workbench.js';

useE2eSuite('models-and-status');

describe('Models and the status bar', () => {
  let vscode: VsCode;
  let workspace: string;

  before(async () => {
    workspace = await makeWorkspace('models');
    vscode = await launch(workspace, tinyModelSettings());
  });
  after(() => vscode?.close());

  test('opening a Markdown file with images loads the model ahead of the first hover, shown in the status bar', () =>
    scenario(vscode, 'warm-up', async () => {
      const page = vscode.page;
      // Activation alone starts nothing.
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: off' }).waitFor();
      const seen: string[] = [];
      const watcher = setInterval(() => void statusBarText(page).then((t) => seen.push(t)).catch(() => undefined), 20);
      try {
        await openFile(page, 'notes.md');
        // No request has been made: the model is loaded because the document has images.
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cpu · tiny-model' }).waitFor({ timeout: 120_000 });
      } finally {
        clearInterval(watcher);
      }
      assert.ok(seen.some((t) => /loading|starting/.test(t)), `status texts seen: ${[...new Set(seen)].join(' | ')}`);
    }));

  test('the status bar goes ready -> busy -> ready around a request', () =>
    scenario(vscode, 'status-bar', async () => {
      const page = vscode.page;
      // State, device and model.
      // Its own panel, so that the scenario does not depend on another one having opened it.
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const frame = describeFrame(page);
      await frame.locator('article.result[data-action="caption"] vscode-button', { hasText: 'Copy' }).first().waitFor({ timeout: 120_000 });
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cpu · tiny-model' }).waitFor();
      const seen: string[] = [];
      const watcher = setInterval(() => void statusBarText(page).then((t) => seen.push(t)).catch(() => undefined), 20);
      await frame.locator('#describe').click();
      await frame.locator('article.result[data-action="describe"] vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).waitFor();
      clearInterval(watcher);
      assert.ok(seen.some((t) => t.includes('busy')), `status texts seen: ${[...new Set(seen)].join(' | ')}`);
    }));

  test('a new model path takes effect at once: the engine restarts and the status bar names the model', () =>
    scenario(vscode, 'settings-restart', async () => {
      const page = vscode.page;
      const enginePids = () => vscode.enginePids();
      // A document with images loads the model (the first scenario's warm-up), also when this one runs alone.
      await openFile(page, 'notes.md');
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cpu · tiny-model' }).waitFor({ timeout: 60_000 });
      const [before] = enginePids();
      assert.ok(before, 'the engine that holds the model runs');
      try {
        // Workspace settings files are watched: VS Code applies the change without a reload.
        setWorkspaceSettings(workspace, { 'paligemma.modelPath': hubModelDir });
        await page.locator('.statusbar-item', { hasText: 'hub-model' }).waitFor({ timeout: 30_000 });
        for (let attempt = 0; attempt < 50 && enginePids().includes(before!); attempt++) await page.waitForTimeout(200);
        assert.ok(!enginePids().includes(before!), 'the engine that held the old model has exited');
      } finally {
        setWorkspaceSettings(workspace, {});
      }
      await page.locator('.statusbar-item', { hasText: 'tiny-model' }).waitFor({ timeout: 30_000 });
    }));

  test('after paligemma.keepAlive minutes without a request the engine stops, the status bar says "unloaded (idle)", and the next request loads the model again', () =>
    scenario(vscode, 'keep-alive', async () => {
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'before the idle stop');
      // 0.05 minutes: 3 s without a request.
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.keepAlive': 0.05 }, 'keepAliveMinutes=0.05');
      let reset: () => Promise<void>;
      try {
        const frame = describeFrame(page);
        await frame.locator('#caption').click();
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).waitFor({ timeout: 60_000 });
        const [engine] = vscode.enginePids();
        assert.ok(engine, 'an engine holds the model');
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: unloaded (idle)' }).waitFor({ timeout: 30_000 });
        assert.ok(await waitUntil(page, () => vscode.enginePids().length === 0, 10_000), 'the engine process has ended, and its memory with it');
        // Editing a Markdown file with images (diagnostics warm up on every edit) does not bring it back.
        await openFile(page, 'notes.md');
        await page.keyboard.press('End');
        await page.keyboard.type(' ');
        const restarted = await waitUntil(page, () => vscode.enginePids().length > 0, 3000);
        assert.equal(restarted, false, 'a background warm-up does not restart an idle-stopped engine');
        await page.keyboard.press('Backspace');
        await saveActiveEditor(page);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'keepAliveMinutes=10');
      }
      await reset();
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'after the idle stop');
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cpu · tiny-model' }).waitFor({ timeout: 30_000 });
      assert.equal(vscode.enginePids().length, 1, 'the request started one engine');
    }));

  test('paligemma.dtype and paligemma.device choose the weights and the device the engine loads', () =>
    scenario(vscode, 'dtype-and-device', async () => {
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'with the default weights');
      assert.match(await statusTooltip(page, 'Weights'), /Weights: int[48] \([^)]*\), chosen automatically/);
      const frame = describeFrame(page);
      let reset: () => Promise<void>;
      try {
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.dtype': 'fp32' }, 'dtype="fp32"');
        await frame.locator('#caption').click();
        const fp32Caption = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--dtype', 'fp32', '--quiet']).trim();
        await waitForNewestCaption(page, fp32Caption, 'with fp32 weights');
        assert.match(await statusTooltip(page, 'Weights'), /Weights: fp32 \(exact\)\s*Device: cpu/);

        // CUDA: where its provider is installed and a GPU answers, the engine runs there; where not (this
        // suite's install has no CUDA provider), the answer is an error that names CUDA. Never the CPU.
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.device': 'cuda' }, 'device="cuda"');
        const before = await newestResultId(page);
        await frame.locator('#caption').click();
        const outcome = await settledResult(page, before);
        if (outcome.error === undefined) await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cuda' }).waitFor();
        else assert.match(outcome.error, /cuda: /i);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'device="cpu"');
      }
      await reset();
      await frame.locator('#caption').click();
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'back on the default weights');
    }));

  test('paligemma.maxImagePixels and paligemma.engineMemoryLimitGB refuse what is over them, and the next request within them answers', () =>
    scenario(vscode, 'image-and-memory-limits', async () => {
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'within the limits');
      const frame = describeFrame(page);
      let reset: () => Promise<void>;
      try {
        // photo.png is 96x64 = 6,144 pixels.
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.maxImagePixels': 6000 }, 'maxImagePixels=6000');
        let before = await newestResultId(page);
        await frame.locator('#caption').click();
        assert.match((await settledResult(page, before)).error ?? 'it answered', /too large \(over 6000 pixels\)/);
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.maxImagePixels': 6144 }, 'maxImagePixels=6144');
        await frame.locator('#caption').click();
        await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'at exactly its pixel count');

        // 10 MB: less than any engine holds, so the model is unloaded and the request refused, with figures.
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.engineMemoryLimitGB': 0.01 }, 'engineMemoryLimitGB=0.01');
        before = await newestResultId(page);
        await frame.locator('#caption').click();
        assert.match((await settledResult(page, before)).error ?? 'it answered', /the engine used \d+ MB [^,]*, over its limit of 10 MB \(paligemma\.engineMemoryLimitGB\): the model was unloaded/);
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: unloaded (idle)' }).waitFor();
        // Asked again within the same limit: the load itself goes over it, and the model stays unloaded.
        before = await newestResultId(page);
        await frame.locator('#caption').click();
        assert.match((await settledResult(page, before)).error ?? 'it answered', /the engine used \d+ MB loading the model, over its limit of 10 MB/);
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: unloaded (idle)' }).waitFor();
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'engineMemoryLimitGB=0');
      }
      await reset();
      await frame.locator('#caption').click();
      await waitForNewestCaption(page, cliCaption(workspace, 'photo.png'), 'with no memory limit');
    }));

  test('paligemma.maxNewTokens bounds the answer', () =>
    scenario(vscode, 'max-new-tokens', async () => {
      const page = vscode.page;
      const whole = cliCaption(workspace, 'photo.png');
      const short = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--max-new-tokens', '3', '--quiet']).trim();
      assert.ok(short.length < whole.length, 'three tokens are less than the caption at the default 64');
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(page, whole, 'at the default');
      let reset: () => Promise<void>;
      try {
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.maxNewTokens': 3 }, 'maxNewTokens=3');
        await describeFrame(page).locator('#caption').click();
        await waitForNewestCaption(page, short, 'with maxNewTokens 3');
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'maxNewTokens=64');
      }
      await reset();
    }));

  test('the status bar\'s menu opens the engine log; the walkthrough\'s three commands open what they say', () =>
    scenario(vscode, 'menu-and-walkthrough', async () => {
      const page = vscode.page;
      // Describe a Sample Image: the Describe panel captions the extension's own sample as `pali caption` does.
      await runCommand(page, 'PaliGemma: Describe a Sample Image');
      await page.locator('.tab', { hasText: 'Describe: sample.png' }).waitFor({ timeout: 30_000 });
      await waitForNewestCaption(page, pali(['caption', path.join(repo, 'media', 'walkthrough', 'sample.png'), '--model', modelDir, '--device', 'cpu', '--quiet']).trim(), 'the walkthrough\'s sample');

      // The status bar's menu lists what it offers; Show Engine Log opens our output channel on its log.
      const [engine] = vscode.enginePids();
      assert.ok(engine, 'an engine answered');
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).click();
      const menu = page.locator('.quick-input-widget', { hasText: 'Show Engine Log' });
      await menu.waitFor();
      for (const item of ['Describe Image', 'Select Model', 'Restart Engine']) assert.ok(await menu.locator('.monaco-list-row', { hasText: item }).count(), `the menu offers ${item}`);
      await pickQuickItem(page, 'Show Engine Log');
      await page.locator('.output-view, .panel .monaco-editor').filter({ hasText: `engine pid ${engine}` }).first().waitFor({ timeout: 30_000 });

      // Open a Document to Try OCR Paste: an untitled Markdown document that says what to do.
      await runCommand(page, 'PaliGemma: Open a Document to Try OCR Paste');
      await page.locator('.tab.active', { hasText: 'Untitled' }).waitFor({ timeout: 30_000 });
      await page.locator('.editor-instance .view-lines', { hasText: 'Paste as text (OCR)' }).first().waitFor();

      // Open the Alt Text Sample: a copy of the sample Markdown, with its problems found.
      await runCommand(page, 'PaliGemma: Open the Alt Text Sample');
      await page.locator('.tab.active', { hasText: 'sample.md' }).waitFor({ timeout: 30_000 });
      await page.locator('.editor-instance .view-lines', { hasText: 'Alt text practice' }).first().waitFor();
      await page.keyboard.press('Control+Shift+M');
      const filter = page.locator('.markers-panel-action-filter input, .viewpane-filter input').first();
      await filter.fill('sample.md');
      await page.locator('.markers-panel .monaco-tl-row', { hasText: 'alt-missing' }).first().waitFor({ timeout: 30_000 });
      await filter.fill('');
    }));

  test('Select Model: a gated checkpoint explains the licence, takes the token, downloads with progress and is used', () =>
    scenario(vscode, 'select-model', async () => {
      const page = vscode.page;
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', hubModelDir, '--device', 'cpu', '--quiet']).trim();
      await downloadGatedModel(page);
      const folder = path.join(vscode.userData, 'User', 'globalStorage', 'paligemma-local.paligemma-local', 'models', GATED_REPO.replace('/', '--'));
      // A machine-overridable setting chosen in a remote window (code-server is one) goes to the remote
      // machine's settings, which take precedence over the user's.
      const machineSettings = path.join(vscode.userData, 'Machine', 'settings.json');
      const chosen = () => fs.existsSync(machineSettings) && fs.readFileSync(machineSettings, 'utf8').includes(JSON.stringify(folder));
      assert.ok(await waitUntil(page, chosen, 60_000), 'paligemma.modelPath names the downloaded folder');
      for (const name of fs.readdirSync(hubModelDir)) {
        assert.deepEqual(fs.readFileSync(path.join(folder, name)), fs.readFileSync(path.join(hubModelDir, name)), name);
      }

      // The engine now runs the downloaded model (another seed: its caption differs from the first model's).
      const captions = describeFrame(page).locator('article.result[data-action="caption"]');
      const before = await captions.count();
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      // Newest first: wait for this request's own result.
      await waitUntil(page, async () => (await captions.count()) > before, 30_000, 100);
      const caption = captions.first();
      await caption.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
      assert.equal((await caption.locator('p.text').textContent())?.trim(), expected);
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cpu · paligemma-3b-mix-224' }).waitFor();

      // The token reached the download and nothing else: no VS Code log (our output channel and the
      // engine's lines in it included), no line of code-server's or the browser's, not the webview.
      const logFiles = fs.readdirSync(path.join(vscode.userData, 'logs'), { recursive: true, encoding: 'utf8' })
        .map((name) => path.join(vscode.userData, 'logs', name))
        .filter((file) => fs.statSync(file).isFile());
      assert.ok(logFiles.some((file) => file.includes('PaliGemma')), `our output channel's log is among ${logFiles.length} files`);
      for (const file of logFiles) assert.ok(!fs.readFileSync(file, 'utf8').includes(HUB_TOKEN), `the token is in ${file}`);
      assert.ok(!logLines.some((line) => line.includes(HUB_TOKEN)), 'the token is in code-server\'s or the browser\'s output');
      assert.ok(!(await describeFrame(page).locator('body').innerHTML()).includes(HUB_TOKEN), 'the token is in the webview');
    }));
});

/** The newest Describe result once it is not `before` and has settled: its answer, or its error. */
async function settledResult(page: Page, before: string | null): Promise<{ text?: string; error?: string }> {
  assert.ok(await waitUntil(page, async () => (await newestResultId(page)) !== before, 30_000, 100), 'no new result appeared');
  const card = describeFrame(page).locator(`article.result[data-id="${await newestResultId(page)}"]`);
  const settled = async () => (await card.locator('vscode-button', { hasText: 'Copy' }).count()) > 0 || (await card.getAttribute('class'))?.includes('error') === true;
  assert.ok(await waitUntil(page, settled, 120_000, 100), 'the result neither answered nor failed');
  const text = (await card.locator('p.text').textContent())?.trim() ?? '';
  return (await card.getAttribute('class'))?.includes('error') ? { error: text } : { text };
}

/** The status bar item's tooltip, once it has a line starting with `line`; the hover is closed again. */
async function statusTooltip(page: Page, line: string): Promise<string> {
  await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).first().hover();
  const tooltip = page.locator('.monaco-hover-content', { hasText: `${line}:` }).first();
  await tooltip.waitFor();
  const text = (await tooltip.innerText()) ?? '';
  await page.mouse.move(0, 0);
  await page.keyboard.press('Escape');
  await tooltip.waitFor({ state: 'hidden' }).catch(() => undefined);
  return text;
}

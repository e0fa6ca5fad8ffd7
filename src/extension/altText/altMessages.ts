/**
 * The alt-text problems' messages in the user's language, for the Problems panel and hovers. The rules
 * (common/altText/altRules.ts) keep their English messages for the CLI and tests, which run without VS Code.
 */
import * as vscode from 'vscode';
import type { AltProblem } from '../../common/altText/altRules.js';
import type { ImageReference } from '../../common/altText/types.js';

export function altProblemMessage(problem: AltProblem, reference: ImageReference): string {
  switch (problem.code) {
    case 'alt-missing':
      return reference.alt.kind === 'missing'
        ? vscode.l10n.t('<{0}> has no alt text: screen readers will read its file name or nothing', reference.tag)
        : vscode.l10n.t('Image has no alt text');
    case 'alt-empty':
      return vscode.l10n.t('Empty alt text hides this image from screen readers; describe it, or mark it as decorative');
    case 'alt-placeholder':
      return vscode.l10n.t('Alt text "{0}" is a placeholder: describe what the image shows', reference.alt.kind === 'literal' ? reference.alt.value.trim() : '');
  }
}

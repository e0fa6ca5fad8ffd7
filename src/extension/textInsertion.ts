/**
 * Inserting results into documents without ever overwriting what the user typed meanwhile: the insertion
 * point is tracked through every edit made while the model works, and the text is inserted (never
 * replacing anything) where that point stands when the result arrives — or not at all if the document
 * was closed.
 */
import * as vscode from 'vscode';
import { shiftOffset } from '../common/offsetTracking.js';

export interface InsertionTarget {
  document: vscode.TextDocument;
  position: vscode.Position;
}

/** Output channels and other read-only views are text editors too, but nobody inserts into them. */
function isEditable(editor: vscode.TextEditor | undefined): editor is vscode.TextEditor {
  return !!editor && !['output', 'debug'].includes(editor.document.uri.scheme);
}

/**
 * Where inserted text goes: the cursor of the active text editor, else where the cursor of the last focused
 * one was (a webview, an image preview or a quick pick takes focus from it, and may hide it in its group).
 */
export class InsertionTargets implements vscode.Disposable {
  private last: InsertionTarget | undefined;
  private readonly subscriptions: vscode.Disposable;

  constructor() {
    const remember = (editor: vscode.TextEditor | undefined) => {
      if (isEditable(editor)) this.last = { document: editor.document, position: editor.selection.active };
    };
    remember(vscode.window.activeTextEditor);
    this.subscriptions = vscode.Disposable.from(
      vscode.window.onDidChangeActiveTextEditor(remember),
      vscode.window.onDidChangeTextEditorSelection((event) => remember(event.textEditor)),
    );
  }

  /** Undefined when no text editor was focused, or the last one's document was closed. */
  current(): InsertionTarget | undefined {
    const active = vscode.window.activeTextEditor;
    if (isEditable(active)) return { document: active.document, position: active.selection.active };
    return this.last && !this.last.document.isClosed ? this.last : undefined;
  }

  dispose(): void {
    this.subscriptions.dispose();
  }
}

/**
 * An offset in a document that follows edits: text inserted before it or at it pushes it on; text
 * replaced around it moves it to the end of the replacement.
 */
export class TrackedPosition implements vscode.Disposable {
  private offset: number;
  private closed = false;
  private readonly listeners: vscode.Disposable[];

  constructor(readonly document: vscode.TextDocument, position: vscode.Position) {
    this.offset = document.offsetAt(position);
    this.listeners = [
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (event.document !== this.document) return;
        this.offset = shiftOffset(this.offset, event.contentChanges.map((c) => ({ rangeOffset: c.rangeOffset, rangeLength: c.rangeLength, textLength: c.text.length })));
      }),
      vscode.workspace.onDidCloseTextDocument((closed) => {
        if (closed === this.document) this.closed = true;
      }),
    ];
  }

  get position(): vscode.Position | undefined {
    return this.closed || this.document.isClosed ? undefined : this.document.positionAt(this.offset);
  }

  dispose(): void {
    for (const listener of this.listeners) listener.dispose();
  }
}

/** Inserts `text` at `position` now (an insertion: nothing is replaced). */
export async function insertText(document: vscode.TextDocument, position: vscode.Position, text: string): Promise<boolean> {
  const edit = new vscode.WorkspaceEdit();
  edit.insert(document.uri, position, text);
  return vscode.workspace.applyEdit(edit);
}

/** Inserts the text that `work` produces where `position` stands when it arrives; false if it could not. */
export async function insertWhenReady(document: vscode.TextDocument, position: vscode.Position, work: Promise<string>): Promise<boolean> {
  const tracked = new TrackedPosition(document, position);
  try {
    const text = await work;
    const where = tracked.position;
    if (!where || !text) return false;
    return await insertText(document, where, text);
  } finally {
    tracked.dispose();
  }
}

/**
 * The Describe Image panel's webview (bundled to dist/webview/describe.js). Talks to
 * src/extension/describe/describePanel.ts with the messages of panelMessages.ts; keeps its state with
 * getState/setState so the panel survives being hidden and VS Code reloads.
 */
import type { DetectedBox } from '../common/locTokens.js';
import type { FromWebview, PanelAction, ToWebview } from '../extension/describe/panelMessages.js';
import type { SegmentMessage } from '../protocol.js';

/** One request's card: its answer as it streams, then its result or error. */
interface Entry {
  id: number;
  action: PanelAction;
  question?: string;
  text: string;
  error?: string;
  done: boolean;
  boxes?: DetectedBox[];
  segments?: SegmentMessage[];
  notes?: string[];
  imageWidth?: number;
  imageHeight?: number;
  meta?: string;
}

interface WebviewState {
  image?: { dataUrl: string; name: string };
  entries: Entry[];
}

/** A box to draw: a detection's, or a segment's in its mask's colour. */
type DrawnBox = DetectedBox & { colour?: string };

declare function acquireVsCodeApi(): {
  postMessage(message: FromWebview): void;
  getState(): WebviewState | undefined;
  setState(state: WebviewState): void;
};

(function () {
  const vscode = acquireVsCodeApi();
  // The host puts the UI strings in a data attribute: the CSP allows no inline script.
  const strings = JSON.parse(document.body.dataset.strings ?? '{}') as Record<string, string>;
  const $ = (id: string) => document.getElementById(id) as HTMLElement;

  const state: WebviewState = vscode.getState() ?? { entries: [] };
  const save = () => vscode.setState(state);

  const image = $('image') as HTMLImageElement;
  const stage = $('stage');
  const boxes = $('boxes');
  const masks = $('masks') as HTMLCanvasElement;
  const results = $('results');
  /** Which object of the shown segmentation the keyboard or pointer is on, or -1. */
  let highlighted = -1;

  // Distinct colours for masks, from the theme's chart colours where it has them.
  const PALETTE: [string, string][] = [['--vscode-charts-blue', '#3794ff'], ['--vscode-charts-orange', '#d18616'], ['--vscode-charts-green', '#89d185'],
    ['--vscode-charts-purple', '#b180d7'], ['--vscode-charts-red', '#f14c4c'], ['--vscode-charts-yellow', '#cca700']];
  function colour(index: number): string {
    const [variable, fallback] = PALETTE[index % PALETTE.length]!;
    return getComputedStyle(document.body).getPropertyValue(variable).trim() || fallback;
  }
  function rgb(css: string): [number, number, number] {
    const probe = document.createElement('canvas').getContext('2d');
    if (!probe) return [55, 148, 255];
    probe.fillStyle = css;
    const hex = String(probe.fillStyle);
    return /^#[0-9a-f]{6}$/i.test(hex) ? [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number] : [55, 148, 255];
  }

  /** Uncompressed COCO RLE (column-major runs, zeros first) into the overlay's pixels, in `colour`. */
  function paintMask(data: Uint8ClampedArray, width: number, mask: SegmentMessage['mask'], [r, g, b]: [number, number, number], alpha: number): void {
    const height = mask.size[0];
    let index = 0;
    let value = 0;
    for (const count of mask.counts) {
      if (value) {
        for (let i = index; i < index + count; i++) {
          const y = i % height;
          const x = Math.floor(i / height);
          const p = (y * width + x) * 4;
          data[p] = r;
          data[p + 1] = g;
          data[p + 2] = b;
          data[p + 3] = alpha;
        }
      }
      index += count;
      value = 1 - value;
    }
  }

  function drawMasks(entry: Entry | undefined): void {
    const context = masks.getContext('2d');
    if (!context || !entry?.segments?.length || entry.imageWidth === undefined || entry.imageHeight === undefined) {
      masks.hidden = true;
      return;
    }
    masks.hidden = false;
    masks.width = entry.imageWidth;
    masks.height = entry.imageHeight;
    const pixels = context.createImageData(entry.imageWidth, entry.imageHeight);
    entry.segments.forEach((segment, i) => {
      // Translucent fills; the object under the keyboard or pointer stands out, the others fade.
      const alpha = highlighted < 0 ? 110 : highlighted === i ? 170 : 40;
      paintMask(pixels.data, entry.imageWidth!, segment.mask, rgb(colour(i)), alpha);
    });
    context.putImageData(pixels, 0, 0);
  }

  function showImage(): void {
    if (!state.image) return;
    image.src = state.image.dataUrl;
    image.alt = state.image.name;
    stage.hidden = false;
    $('drop-hint').hidden = true;
  }

  function drawBoxes(entry: { boxes?: DrawnBox[]; imageWidth?: number; imageHeight?: number } | undefined): void {
    boxes.replaceChildren();
    if (!entry?.boxes?.length) return;
    boxes.setAttribute('viewBox', `0 0 ${entry.imageWidth} ${entry.imageHeight}`);
    boxes.setAttribute('preserveAspectRatio', 'none');
    const ns = 'http://www.w3.org/2000/svg';
    entry.boxes.forEach((box, i) => {
      const rect = document.createElementNS(ns, 'rect');
      rect.setAttribute('x', String(box.xMin));
      rect.setAttribute('y', String(box.yMin));
      rect.setAttribute('width', String(Math.max(1, box.xMax - box.xMin)));
      rect.setAttribute('height', String(Math.max(1, box.yMax - box.yMin)));
      rect.setAttribute('class', 'box');
      rect.setAttribute('vector-effect', 'non-scaling-stroke');
      const label = document.createElementNS(ns, 'text');
      label.setAttribute('x', String(box.xMin));
      label.setAttribute('y', String(box.yMin));
      label.setAttribute('class', 'box-label');
      label.textContent = box.label || '?';
      if (box.colour) {
        rect.style.stroke = box.colour;
        label.style.fill = box.colour;
        rect.classList.toggle('faded', highlighted >= 0 && highlighted !== i);
      }
      boxes.append(rect, label);
    });
  }

  /** The objects of a segmentation, for the eye and for screen readers: colour, label, size and box. */
  function segmentList(entry: Entry): HTMLUListElement {
    const list = document.createElement('ul');
    list.className = 'segments-list';
    list.setAttribute('aria-label', strings.objects ?? '');
    (entry.segments ?? []).forEach((segment, i) => {
      const item = document.createElement('li');
      item.tabIndex = 0;
      const area = segment.mask.counts.reduce((sum, count, k) => (k % 2 ? sum + count : sum), 0);
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colour(i);
      swatch.setAttribute('aria-hidden', 'true');
      const { xMin, yMin, xMax, yMax } = segment.box;
      item.append(swatch, `${segment.label || '?'}: ${(strings.pixels ?? '{0}').replace('{0}', String(area))}, ${xMin}, ${yMin} – ${xMax}, ${yMax}`);
      const show = () => {
        highlighted = i;
        drawOverlay();
      };
      const hide = () => {
        highlighted = -1;
        drawOverlay();
      };
      item.addEventListener('focus', show);
      item.addEventListener('mouseenter', show);
      item.addEventListener('blur', hide);
      item.addEventListener('mouseleave', hide);
      list.append(item);
    });
    if (!entry.segments?.length) list.textContent = strings.noObjects ?? '';
    return list;
  }

  /** The newest finished detection or segmentation is drawn over the image. */
  function drawOverlay(): void {
    const last = [...state.entries].reverse().find((e) => (e.action === 'detect' || e.action === 'segment') && e.done && !e.error);
    if (last?.action === 'segment') {
      drawMasks(last);
      drawBoxes({ ...last, boxes: (last.segments ?? []).map((s, i) => ({ ...s.box, label: s.label, colour: colour(i) })) });
    } else {
      drawMasks(undefined);
      drawBoxes(last);
    }
  }

  function render(): void {
    results.replaceChildren();
    for (const entry of [...state.entries].reverse()) {
      const card = document.createElement('article');
      card.className = 'result' + (entry.error ? ' error' : '');
      card.dataset.action = entry.action;
      card.dataset.id = String(entry.id);
      const heading = document.createElement('h3');
      heading.textContent = entry.question ? `${strings[entry.action] ?? entry.action}: ${entry.question}` : (strings[entry.action] ?? entry.action);
      const text = document.createElement('p');
      text.className = 'text';
      text.textContent = entry.error ?? (entry.text || (entry.done ? '' : strings.working ?? ''));
      card.append(heading, text);
      if (entry.action === 'detect' && entry.done && !entry.error) {
        const list = document.createElement('ul');
        list.className = 'boxes-list';
        for (const box of entry.boxes ?? []) {
          const item = document.createElement('li');
          item.textContent = `${box.label || '?'}: ${Math.round(box.xMin)}, ${Math.round(box.yMin)} – ${Math.round(box.xMax)}, ${Math.round(box.yMax)}`;
          list.append(item);
        }
        if (!entry.boxes?.length) list.textContent = strings.noBoxes ?? '';
        card.append(list);
      }
      if (entry.action === 'segment' && entry.done && !entry.error) card.append(segmentList(entry));
      if (entry.notes?.length && entry.done) {
        const notes = document.createElement('p');
        notes.className = 'notes';
        notes.textContent = entry.notes.join(' · ');
        card.append(notes);
      }
      const actions = document.createElement('div');
      actions.className = 'actions';
      if (!entry.done) {
        actions.append(button(strings.cancel ?? '', 'stop-circle', () => vscode.postMessage({ type: 'cancel' })));
      } else if (!entry.error && entry.text) {
        actions.append(button(strings.copy ?? '', 'copy', () => vscode.postMessage({ type: 'copy', text: entry.text })));
        actions.append(button(strings.insert ?? '', 'insert', () => vscode.postMessage({ type: 'insert', text: entry.text })));
      }
      if (entry.meta) {
        const meta = document.createElement('span');
        meta.className = 'meta';
        meta.textContent = entry.meta;
        actions.append(meta);
      }
      // While an answer streams, Cancel sits above its text, so that the growing text does not move it
      // away from the pointer; a finished answer's Copy and Insert follow it.
      if (entry.done) card.append(actions);
      else heading.after(actions);
      results.append(card);
    }
    drawOverlay();
  }

  function button(label: string, icon: string, onClick: () => void): HTMLElement {
    const element = document.createElement('vscode-button');
    element.setAttribute('secondary', '');
    element.setAttribute('icon', icon);
    element.textContent = label;
    element.addEventListener('click', onClick);
    return element;
  }

  function run(action: PanelAction, text?: string): void {
    vscode.postMessage(text === undefined ? { type: 'run', action } : { type: 'run', action, text });
  }

  $('caption').addEventListener('click', () => run('caption'));
  $('describe').addEventListener('click', () => run('describe'));
  $('ocr').addEventListener('click', () => run('ocr'));
  // A text field and its button: the button or Enter in the field runs the action, once.
  function wire(fieldId: string, buttonId: string, action: PanelAction): void {
    // A vscode-textfield (a custom element): its value, like an input's.
    const field = $(fieldId) as HTMLElement & { value?: string };
    const submit = () => {
      const text = String(field.value ?? '').trim();
      if (text) run(action, text);
    };
    $(buttonId).addEventListener('click', submit);
    field.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        submit();
      }
    });
  }
  wire('question', 'ask', 'ask');
  wire('objects', 'detect', 'detect');
  wire('segmentation', 'segment', 'segment');

  // Pasting or dropping an image describes it: VS Code's clipboard API is text-only, the webview sees files.
  async function takeImageFile(file: File | undefined): Promise<boolean> {
    if (!file || !file.type.startsWith('image/')) return false;
    const bytes = new Uint8Array(await file.arrayBuffer());
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    vscode.postMessage({ type: 'pastedImage', base64: btoa(binary), mime: file.type, name: file.name || 'pasted image' });
    return true;
  }
  document.addEventListener('paste', (event) => {
    const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
    if (file) {
      event.preventDefault();
      void takeImageFile(file);
    }
  });
  const dropZone = $('drop-zone');
  dropZone.addEventListener('dragover', (event) => {
    event.preventDefault();
    dropZone.classList.add('dragging');
  });
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
  dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropZone.classList.remove('dragging');
    void takeImageFile(event.dataTransfer?.files?.[0]);
  });

  window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
    const message = event.data;
    switch (message.type) {
      case 'image':
        if (state.image?.dataUrl !== message.dataUrl) state.entries = [];
        state.image = { dataUrl: message.dataUrl, name: message.name };
        showImage();
        break;
      case 'start':
        // After a reload the host counts ids from 1 again: a saved entry with this id is an old one.
        state.entries = state.entries.filter((e) => e.id !== message.id);
        state.entries.push({ id: message.id, action: message.action, question: message.question, text: '', done: false });
        break;
      case 'piece': {
        const entry = state.entries.find((e) => e.id === message.id);
        if (!entry) break;
        entry.text += message.piece;
        // Only the streaming text changes: rebuilding every card on each piece would replace the Cancel
        // button between a mouse press and its release, and the click would never happen.
        const text = results.querySelector(`article.result[data-id="${entry.id}"] p.text`);
        if (text) {
          text.textContent = entry.text;
          save();
          return;
        }
        break;
      }
      case 'result': {
        const entry = state.entries.find((e) => e.id === message.id);
        if (entry) Object.assign(entry, { text: message.text, boxes: message.boxes, segments: message.segments, notes: message.notes, imageWidth: message.imageWidth, imageHeight: message.imageHeight, done: true, meta: `${message.device} · ${(message.ms / 1000).toFixed(1)} s` });
        break;
      }
      case 'error': {
        // Every request's 'start' comes first, so its entry exists (unless trimmed away since).
        const entry = state.entries.find((e) => e.id === message.id);
        if (entry) Object.assign(entry, { error: message.message, done: true });
        break;
      }
    }
    state.entries = state.entries.slice(-20);
    save();
    render();
  });

  showImage();
  render();
  vscode.postMessage({ type: 'ready' });
})();

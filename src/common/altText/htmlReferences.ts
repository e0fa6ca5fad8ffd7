/**
 * Images in HTML through parse5 with source locations: <img>, <input type=image> and <area> (whose alt
 * describes a link region, so it has no image of its own to describe).
 */
import { parse, parseFragment, type DefaultTreeAdapterMap } from 'parse5';
import type { ImageReference } from './types.js';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

function isElement(node: Node): node is Element {
  return 'tagName' in node;
}

function attribute(element: Element, name: string): string | undefined {
  return element.attrs.find((a) => a.name === name)?.value;
}

export function isDecorativeMarkup(role: string | undefined, ariaHidden: string | undefined): boolean {
  const roles = role?.trim().toLowerCase().split(/\s+/) ?? [];
  return roles[0] === 'presentation' || roles[0] === 'none' || isHiddenMarkup(ariaHidden);
}

export function isHiddenMarkup(ariaHidden: string | undefined): boolean {
  return ariaHidden?.trim().toLowerCase() === 'true';
}

/** A non-empty aria-label or aria-labelledby, which gives the element its accessible name instead of alt. */
export function isLabelledMarkup(ariaLabel: string | undefined, ariaLabelledBy: string | undefined): boolean {
  return Boolean(ariaLabel?.trim() || ariaLabelledBy?.trim());
}

export function findHtmlReferences(text: string): ImageReference[] {
  const isDocument = /^\s*(<!doctype|<html)/i.test(text);
  const root = isDocument ? parse(text, { sourceCodeLocationInfo: true }) : parseFragment(text, { sourceCodeLocationInfo: true });
  const references: ImageReference[] = [];
  const visit = (node: Node) => {
    if (isElement(node)) {
      const reference = toReference(node, text);
      if (reference) references.push(reference);
      // <template> content lives apart from childNodes.
      const content = (node as Element & { content?: Node }).content;
      if (content) visit(content);
    }
    for (const child of 'childNodes' in node ? node.childNodes : []) visit(child);
  };
  visit(root);
  return references;
}

function toReference(element: Element, text: string): ImageReference | null {
  const tag = element.tagName;
  const isImage = tag === 'img' || tag === 'area' || (tag === 'input' && attribute(element, 'type')?.toLowerCase() === 'image');
  const location = element.sourceCodeLocation;
  if (!isImage || !location?.startTag) return null;
  const startTag = location.startTag;
  const altLocation = location.attrs?.alt;
  let alt: ImageReference['alt'];
  if (altLocation) {
    const rawAttribute = text.slice(altLocation.startOffset, altLocation.endOffset);
    const equals = rawAttribute.indexOf('=');
    if (equals < 0) {
      // <img alt>: an empty alt with no value to replace; text goes in after the name.
      alt = { kind: 'literal', value: '', valueRange: { start: altLocation.endOffset, end: altLocation.endOffset } };
    } else {
      let valueStart = altLocation.startOffset + equals + 1;
      while (/\s/.test(text[valueStart] ?? '')) valueStart++;
      let valueEnd = altLocation.endOffset;
      if (text[valueStart] === '"' || text[valueStart] === "'") {
        valueStart++;
        valueEnd--;
      }
      alt = { kind: 'literal', value: attribute(element, 'alt') ?? '', valueRange: { start: valueStart, end: valueEnd } };
    }
  } else {
    alt = { kind: 'missing', insertAt: startTag.startOffset + 1 + tag.length };
  }
  return {
    syntax: 'html',
    tag,
    src: tag === 'area' ? undefined : attribute(element, 'src'),
    range: { start: startTag.startOffset, end: startTag.endOffset },
    alt,
    decorative: isDecorativeMarkup(attribute(element, 'role'), attribute(element, 'aria-hidden')),
    hidden: isHiddenMarkup(attribute(element, 'aria-hidden')),
    labelled: isLabelledMarkup(attribute(element, 'aria-label'), attribute(element, 'aria-labelledby')),
  };
}

/**
 * Images in JSX and TSX through the TypeScript compiler's parser: <img> and <Image> (Next.js and friends),
 * plus <input type="image"> and <area> as eslint-plugin-jsx-a11y checks them. A dynamic src cannot be
 * described, and a dynamic alt is never judged.
 */
import type * as TypeScript from 'typescript';
import { isDecorativeMarkup, isHiddenMarkup } from './htmlReferences.js';
import type { AltText, ImageReference } from './types.js';

const IMAGE_TAGS = new Set(['img', 'Image', 'area', 'input']);

// The compiler is large: load it when the first JSX/TSX file is parsed, not when the extension activates.
let typescript: typeof TypeScript | undefined;
function ts(): typeof TypeScript {
  typescript ??= require('typescript') as typeof TypeScript;
  return typescript;
}

function literalText(initializer: TypeScript.JsxAttributeValue | undefined): string | undefined {
  if (!initializer) return undefined;
  if (ts().isStringLiteral(initializer)) return initializer.text;
  if (ts().isJsxExpression(initializer) && initializer.expression) {
    const expression = initializer.expression;
    if (ts().isStringLiteral(expression) || ts().isNoSubstitutionTemplateLiteral(expression)) return expression.text;
    if (expression.kind === ts().SyntaxKind.TrueKeyword) return 'true';
  }
  return undefined;
}

export function findJsxReferences(text: string, fileName = 'file.tsx'): ImageReference[] {
  const kind = fileName.endsWith('.jsx') || fileName.endsWith('.js') ? ts().ScriptKind.JSX : ts().ScriptKind.TSX;
  const source = ts().createSourceFile(fileName, text, ts().ScriptTarget.Latest, true, kind);
  const references: ImageReference[] = [];
  const visit = (node: TypeScript.Node) => {
    if (ts().isJsxSelfClosingElement(node) || ts().isJsxOpeningElement(node)) {
      const reference = toReference(node, source);
      if (reference) references.push(reference);
    }
    ts().forEachChild(node, visit);
  };
  visit(source);
  return references;
}

function toReference(element: TypeScript.JsxSelfClosingElement | TypeScript.JsxOpeningElement, source: TypeScript.SourceFile): ImageReference | null {
  const tag = element.tagName.getText(source);
  if (!IMAGE_TAGS.has(tag)) return null;
  const attributes = new Map<string, TypeScript.JsxAttribute>();
  for (const property of element.attributes.properties) {
    if (ts().isJsxAttribute(property)) attributes.set(property.name.getText(source), property);
  }
  if (tag === 'input' && literalText(attributes.get('type')?.initializer)?.toLowerCase() !== 'image') return null;
  const literal = (name: string) => literalText(attributes.get(name)?.initializer);
  const src = literalText(attributes.get('src')?.initializer);
  const altAttribute = attributes.get('alt');
  let alt: AltText;
  if (!altAttribute) {
    alt = { kind: 'missing', insertAt: element.tagName.getEnd() };
  } else if (altAttribute.initializer && ts().isStringLiteral(altAttribute.initializer)) {
    const literal = altAttribute.initializer;
    alt = { kind: 'literal', value: literal.text, valueRange: { start: literal.getStart(source) + 1, end: literal.getEnd() - 1 } };
  } else if (altAttribute.initializer && ts().isJsxExpression(altAttribute.initializer) && altAttribute.initializer.expression &&
    (ts().isStringLiteral(altAttribute.initializer.expression) || ts().isNoSubstitutionTemplateLiteral(altAttribute.initializer.expression))) {
    const literal = altAttribute.initializer.expression;
    alt = { kind: 'literal', value: literal.text, valueRange: { start: literal.getStart(source) + 1, end: literal.getEnd() - 1 } };
  } else {
    alt = { kind: 'dynamic' };
  }
  return {
    syntax: 'jsx',
    tag,
    src: tag === 'area' ? undefined : src,
    range: { start: element.getStart(source), end: element.getEnd() },
    alt,
    // An empty alt is React's way to say "decorative" (eslint-plugin-jsx-a11y asks for exactly that).
    decorative: isDecorativeMarkup(literal('role'), literal('aria-hidden')) || (alt.kind === 'literal' && !alt.value.trim() && tag !== 'area' && tag !== 'input'),
    hidden: isHiddenMarkup(literal('aria-hidden')),
    // A dynamic label counts: it is there at run time, as the linters assume.
    labelled: ['aria-label', 'aria-labelledby'].some((name) => {
      const attribute = attributes.get(name);
      return attribute !== undefined && (literalText(attribute.initializer)?.trim() ?? (attribute.initializer ? 'dynamic' : '')) !== '';
    }),
  };
}

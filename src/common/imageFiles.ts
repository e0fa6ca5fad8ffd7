/**
 * The image file extensions the engine decodes (sharp: PNG, JPEG, GIF, WebP, TIFF, AVIF, SVG), in one
 * place: file pickers, the explorer's and preview's menus (package.json's when-clauses) and alt-text checks.
 * Not BMP: sharp's prebuilt libvips has no BMP loader ("unsupported image format").
 */
export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'tif', 'tiff', 'avif', 'svg'] as const;

/** The same formats, as error messages and tool descriptions name them. */
export const IMAGE_FORMAT_NAMES = 'PNG, JPEG, GIF, WebP, TIFF, AVIF or SVG';

/** The media type of each of those extensions (a webview's data: URL, a remote server's image_url). */
export const IMAGE_MIME_TYPES: Readonly<Record<(typeof IMAGE_EXTENSIONS)[number], string>> = {
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp',
  tif: 'image/tiff', tiff: 'image/tiff', avif: 'image/avif', svg: 'image/svg+xml',
};


/** Does this path name an image file that the engine decodes? */
export function isImageFile(file: string): boolean {
  const dot = file.lastIndexOf('.');
  return dot >= 0 && (IMAGE_EXTENSIONS as readonly string[]).includes(file.slice(dot + 1).toLowerCase());
}

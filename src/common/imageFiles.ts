/**
 * The image file extensions the engine decodes (sharp: PNG, JPEG, GIF, WebP, BMP, TIFF, AVIF, SVG), in one
 * place: file pickers, the explorer's and preview's menus (package.json's when-clauses) and alt-text checks.
 */
export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'bmp', 'tif', 'tiff', 'avif', 'svg'] as const;


/** Does this path name an image file that the engine decodes? */
export function isImageFile(file: string): boolean {
  const dot = file.lastIndexOf('.');
  return dot >= 0 && (IMAGE_EXTENSIONS as readonly string[]).includes(file.slice(dot + 1).toLowerCase());
}

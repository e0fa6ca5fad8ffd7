/**
 * An image as the remote backend sends it: a data: URL, plus its size in the orientation the engine sees
 * (EXIF rotations of 90 degrees swap width and height), so that detection boxes land in image pixels. Only
 * the header is read (image-size): the extension host never decodes pixels.
 */
import { imageSize } from 'image-size';
import { IMAGE_FORMAT_NAMES, IMAGE_MIME_TYPES } from '../imageFiles.js';

/** By image-size's type names, which are extensions but for HEIF (AVIF's container, as some versions name it). */
const MIME: Record<string, string> = { ...IMAGE_MIME_TYPES, heif: 'image/heif' };

export interface ImagePayload {
  dataUrl: string;
  width: number;
  height: number;
}

export function imagePayload(bytes: Uint8Array, name: string): ImagePayload {
  let size: ReturnType<typeof imageSize>;
  try {
    size = imageSize(bytes);
  } catch {
    throw new Error(`${name} is not an image that PaliGemma can read (${IMAGE_FORMAT_NAMES})`);
  }
  const mime = size.type ? MIME[size.type] : undefined;
  if (!mime) throw new Error(`${name} is a ${size.type ?? 'unknown'} image, which PaliGemma cannot read`);
  const swapped = (size.orientation ?? 1) >= 5;
  return {
    dataUrl: `data:${mime};base64,${Buffer.from(bytes).toString('base64')}`,
    width: swapped ? size.height : size.width,
    height: swapped ? size.width : size.height,
  };
}

#!/usr/bin/env python3
"""Writes the Pillow reference pixels that test/engine/image tests compare against.

Run once with Debian's python3-pil (`apt-get install python3-pil`, then `/usr/bin/python3 scripts/make-pil-fixtures.py`);
the outputs are committed under test/fixtures/pil. The input patterns are integer formulas that the tests
rebuild in TypeScript (test/helpers/patterns.ts), so only the expected outputs are stored.
"""
import json
import os
import struct
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'pil')


def pattern(kind, width, height, channels):
    data = bytearray(width * height * channels)
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                if kind == 'screenshot':
                    # Flat panels, thin lines and text-like speckles, as screenshots have.
                    v = 240 if ((x // 40) + (y // 25)) % 3 else 30 + 20 * c
                    if (x * 7 + y * 3) % 97 < 3:
                        v = (x * 13 + y * 29 + c * 71) % 256
                elif kind == 'noise':
                    v = (x * 31 + y * 17 + c * 101 + ((x * y) % 7) * 13) % 256
                else:
                    raise ValueError(kind)
                if c == 3:
                    v = (x * 37 + y * 11) % 256  # alpha: every level from transparent to opaque
                data[(y * width + x) * channels + c] = v
    return bytes(data)


CASES = [
    # name, pattern, width, height, out width, out height
    ('shrink-screenshot', 'screenshot', 1920, 1080, 28, 28),
    ('shrink-screenshot-224', 'screenshot', 1280, 800, 224, 224),
    ('enlarge-small', 'noise', 20, 13, 56, 56),
    ('nonsquare', 'noise', 50, 120, 37, 91),
    ('enlarge-wide', 'noise', 9, 31, 64, 17),
]


# The segmentation masks: a 64x64 float image (mode "F") resized to a box with BILINEAR, as big_vision's
# segmentation evaluator does; the pattern is rebuilt in test/engine/segmentation/imageMasks.test.ts.
MASK_CASES = [
    # name, out width, out height
    ('mask-shrink', 37, 23),
    ('mask-enlarge', 150, 90),
    ('mask-mixed', 200, 40),
]


def mask_pattern():
    return [((x * 31 + y * 17) % 64 - 32) / 16.0 + (0.5 if (x // 8 + y // 8) % 2 else -0.5) for y in range(64) for x in range(64)]


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = []
    for name, kind, w, h, ow, oh in CASES:
        image = Image.frombytes('RGB', (w, h), pattern(kind, w, h, 3))
        resized = image.resize((ow, oh), resample=Image.BICUBIC, reducing_gap=None)
        open(os.path.join(OUT, name + '.rgb'), 'wb').write(resized.tobytes())
        manifest.append({'name': name, 'pattern': kind, 'width': w, 'height': h, 'outWidth': ow, 'outHeight': oh})
    # Transparency: HF's convert_to_rgb composites RGBA on white with Image.alpha_composite.
    rgba = Image.frombytes('RGBA', (23, 17), pattern('noise', 23, 17, 4))
    background = Image.new('RGBA', rgba.size, (255, 255, 255))
    composited = Image.alpha_composite(background, rgba).convert('RGB')
    open(os.path.join(OUT, 'composite-on-white.rgb'), 'wb').write(composited.tobytes())
    manifest.append({'name': 'composite-on-white', 'pattern': 'noise', 'width': 23, 'height': 17, 'alpha': True})
    masks = []
    mask = Image.frombytes('F', (64, 64), struct.pack('<4096f', *mask_pattern()))
    for name, ow, oh in MASK_CASES:
        open(os.path.join(OUT, name + '.f32'), 'wb').write(mask.resize((ow, oh), resample=Image.BILINEAR).tobytes())
        masks.append({'name': name, 'outWidth': ow, 'outHeight': oh})
    json.dump({'pillow': Image.__version__, 'cases': manifest, 'masks': masks}, open(os.path.join(OUT, 'manifest.json'), 'w'), indent=2)


if __name__ == '__main__':
    main()

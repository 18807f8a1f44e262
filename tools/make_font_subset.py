"""Regenerate lpsr/assets/NotoSansCJKsc-Bold-plate.otf, the font the synthetic plates use.

It is Noto Sans CJK SC Bold (face 2 of Debian's NotoSansCJK-Bold.ttc, package
fonts-noto-cjk) cut down with fontTools to the characters a Chinese plate can carry: the
34 CCPD province characters, A-Z, 0-9 and the separator dot.  Run from the repo root:

    python tools/make_font_subset.py [--source /usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc]

which is the same as

    pyftsubset /usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc --font-number=2 \
        --text="<plate alphabet>" --layout-features='' --name-IDs='*' \
        --output-file=lpsr/assets/NotoSansCJKsc-Bold-plate.otf
"""
from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

from fontTools import subset

ROOT = Path(__file__).resolve().parents[1]
PROVINCES = "皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新警学"
ALPHABET = PROVINCES + string.ascii_uppercase + string.digits + "·"
SOURCE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
FACE_SC = 2  # 0 JP, 1 KR, 2 SC, 3 TC, 4 HK: the simplified-Chinese glyph forms
OUTPUT = ROOT / "lpsr/assets/NotoSansCJKsc-Bold-plate.otf"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=SOURCE, help="Noto Sans CJK Bold .ttc (Debian: fonts-noto-cjk)")
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    if not Path(args.source).is_file():
        print(f"error: {args.source} not found; install it with: apt-get install fonts-noto-cjk", file=sys.stderr)
        return 2
    subset.main([
        args.source,
        f"--font-number={FACE_SC}",
        f"--text={ALPHABET}",
        "--layout-features=",
        "--name-IDs=*",
        f"--output-file={args.output}",
    ])
    print(f"wrote {args.output} ({Path(args.output).stat().st_size} bytes, {len(ALPHABET)} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

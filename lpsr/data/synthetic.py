"""Procedurally rendered Chinese plates: the default data, deterministic from a seed, no download.

Each plate is made the way a CCPD crop comes about:

1. draw a flat plate in millimetre layout (GA 36-2018): blue plates 440x140 mm with 7
   white characters 45x90 mm and a separator dot after the second; green new-energy plates
   480x140 mm with 8 black characters on a white-to-green gradient.  Characters come from
   the bundled Noto Sans CJK SC Bold subset, stretched to the tall plate character boxes;
2. "photograph" it: shrink to a random on-photo width (90-400 px, CCPD's range), tilt it
   with a random perspective onto a background, shade it (brightness, gradient, colour
   cast, highlight), blur it (defocus and sometimes motion), add signal-dependent sensor
   noise and JPEG-compress it;
3. cut it out again by its (slightly jittered) annotated corners with the same perspective
   rectification the CCPD loader uses (``rectify_corners``), at ``hr_size``.

Everything random comes from numpy generators seeded by (seed, plate number), and every
operation is deterministic, so one seed gives byte-identical images.  No library renders
licence plates, so the layout and the photo simulation are written here by hand.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lpsr.data.ccpd import ADS, ALPHABETS, PROVINCES, rectify_corners
from lpsr.data.images import check_hr_size
from lpsr.data.record import HR_SIZE, DataError, PlateRecord, PlateSplits
from lpsr.data.splits import assign_split

FONT_PATH = Path(__file__).resolve().parents[1] / "assets" / "NotoSansCJKsc-Bold-plate.otf"

# Civil province characters (CCPD's table without 警 police, 学 learner and the "O" slot).
SYN_PROVINCES = tuple(p for p in PROVINCES if p not in ("警", "学", "O"))
SYN_LETTERS = tuple(a for a in ALPHABETS if a != "O")  # A-Z without I and O
SYN_DIGITS = tuple("0123456789")
SYN_ALNUM = tuple(a for a in ADS if a != "O")  # A-Z without I, O, plus 0-9

PX_PER_MM = 0.8  # resolution of the flat plate drawing (352x112 px for a blue plate)


# ---------------------------------------------------------------- plate strings
def random_plate_text(rng: np.random.Generator, green_fraction: float = 1 / 3) -> str:
    """A valid plate string: blue = province + letter + 5 alphanumerics (7 chars), green =
    province + letter + 6 (8 chars; small new-energy D/F + 5, or large 5 digits + D/F).

    Provinces lean towards 皖 and letters towards A as in CCPD (mostly Anhui, Hefei), with
    enough of the others that every character is seen.
    """
    province = "皖" if rng.random() < 0.5 else SYN_PROVINCES[rng.integers(len(SYN_PROVINCES))]
    letter = "A" if rng.random() < 0.4 else SYN_LETTERS[rng.integers(len(SYN_LETTERS))]
    if rng.random() < green_fraction:
        if rng.random() < 0.85:  # small car: D (electric) / F (hybrid), then letter-or-digit + 4 digits
            tail = "DF"[rng.integers(2)] + SYN_ALNUM[rng.integers(len(SYN_ALNUM))]
            tail += "".join(SYN_DIGITS[i] for i in rng.integers(10, size=4))
        else:  # large vehicle: 5 digits, then D / F
            tail = "".join(SYN_DIGITS[i] for i in rng.integers(10, size=5)) + "DF"[rng.integers(2)]
    else:
        n_letters = int(rng.choice([0, 1, 2], p=[0.45, 0.4, 0.15]))
        slots = set(rng.choice(5, size=n_letters, replace=False).tolist())
        tail = "".join(
            SYN_LETTERS[rng.integers(len(SYN_LETTERS))] if i in slots else SYN_DIGITS[rng.integers(10)] for i in range(5)
        )
    return province + letter + tail


def plate_color(text: str) -> str:
    return "green" if len(text) == 8 else "blue"


# ---------------------------------------------------------------- the flat plate
@lru_cache(maxsize=None)
def _font() -> ImageFont.FreeTypeFont:
    if not FONT_PATH.is_file():
        raise DataError(f"plate font {FONT_PATH} is missing; regenerate it with: python tools/make_font_subset.py")
    return ImageFont.truetype(str(FONT_PATH), size=160)


@lru_cache(maxsize=None)
def _glyph(char: str) -> np.ndarray:
    """Tight coverage mask (float32 0..1) of one character at a large size."""
    font = _font()
    left, top, right, bottom = font.getbbox(char)
    if right <= left or bottom <= top:
        raise DataError(f"character {char!r} is not in the plate font {FONT_PATH.name}")
    canvas = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), char, fill=255, font=font)
    mask = np.asarray(canvas, dtype=np.float32) / 255.0
    ys, xs = np.nonzero(mask > 0.02)
    mask = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    # Plate fonts have thinner strokes than Noto Bold (about 11% vs 16% of the height): thin them.
    r = max(1, round(0.02 * mask.shape[0]))
    return cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))


@lru_cache(maxsize=4096)
def _fitted_glyph(char: str, box_w: int, box_h: int) -> np.ndarray:
    """The glyph filling the plate character box: full box height, squeezed to the box width
    when wider (plate fonts are tall and narrow), kept at its own width when narrower ('1')."""
    g = _glyph(char)
    sy = box_h / g.shape[0]
    w = max(1, min(box_w, round(g.shape[1] * sy)))
    return cv2.resize(g, (w, box_h), interpolation=cv2.INTER_AREA)


def _layout(color: str) -> tuple[float, float, list[tuple[float, float]], float]:
    """Plate width, height (mm), character boxes (x, width) and the separator dot's x."""
    if color == "blue":
        widths, gaps = [45.0] * 7, [12.0, 34.0, 12.0, 12.0, 12.0, 12.0]
        plate_w = 440.0
    else:
        widths, gaps = [45.0] + [43.0] * 7, [9.0, 49.0] + [9.0] * 5
        plate_w = 480.0
    x = (plate_w - sum(widths) - sum(gaps)) / 2
    boxes = []
    for i, w in enumerate(widths):
        boxes.append((x, w))
        x += w + (gaps[i] if i < len(gaps) else 0.0)
    dot_x = boxes[1][0] + boxes[1][1] + gaps[1] / 2
    return plate_w, 140.0, boxes, dot_x


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int, amount: float) -> np.ndarray:
    """Low-frequency multiplicative texture around 1 (dirt, uneven paint, shading)."""
    coarse = rng.normal(0.0, amount, size=(max(2, cells * h // w), cells)).astype(np.float32)
    return 1.0 + cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def render_flat_plate(text: str, rng: np.random.Generator) -> np.ndarray:
    """The plate as manufactured, float32 RGB in [0, 1], at PX_PER_MM (no photo effects)."""
    color = plate_color(text)
    plate_w, plate_h, boxes, dot_x = _layout(color)
    if len(boxes) != len(text):
        raise DataError(f"plate text {text!r} must have 7 (blue) or 8 (green) characters")
    k = PX_PER_MM
    W, H = round(plate_w * k), round(plate_h * k)
    jitter = rng.uniform(-0.06, 0.06, size=3).astype(np.float32)
    if color == "blue":
        base = np.array([0.05, 0.22, 0.78], np.float32) + jitter
        img = np.empty((H, W, 3), np.float32)
        img[:] = np.clip(base, 0, 1)
        ink = np.array([0.96, 0.97, 0.98], np.float32)
        frame = ink
    else:
        t = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None, None] ** 1.3
        top = np.array([0.93, 0.97, 0.93], np.float32)
        bottom = np.clip(np.array([0.30, 0.80, 0.45], np.float32) + jitter, 0, 1)
        img = np.broadcast_to(top * (1 - t) + bottom * t, (H, W, 3)).copy()
        ink = np.array([0.04, 0.05, 0.05], np.float32)
        frame = np.array([0.10, 0.40, 0.20], np.float32)
    # Frame line 3 mm inside the edge and rivets, drawn straight into the image (the plate
    # is shrunk to photo size afterwards, which smooths their edges).
    inset, thick = round(3 * k), max(1, round(1.8 * k))
    cv2.rectangle(img, (inset, inset), (W - 1 - inset, H - 1 - inset), frame.tolist(), thick)
    if rng.random() < 0.7:  # two rivets in the top band
        metal = (np.array([0.75, 0.75, 0.72]) * rng.uniform(0.6, 1.1)).tolist()
        for rx in (boxes[1][0] + boxes[1][1] / 2, boxes[-2][0] + boxes[-2][1] / 2):
            cv2.circle(img, (round(rx * k), round(12 * k)), round(4 * k), metal, -1)
    # Characters 90 mm high from 25 mm down, a touch of random placement error, all inked
    # in one blend through one coverage mask.
    cover = np.zeros((H, W), np.float32)
    top_px = round(25 * k + rng.uniform(-1.5, 1.5))
    box_h = round(90 * k)
    for ch, (bx, bw) in zip(text, boxes):
        mask = _fitted_glyph(ch, round(bw * k), box_h)
        x0 = round(bx * k + (round(bw * k) - mask.shape[1]) / 2 + rng.uniform(-0.8, 0.8))
        _stamp(cover, mask, x0, top_px)
    if color == "blue":  # the separator dot, 10 mm
        r = round(5 * k)
        cv2.circle(cover, (round(dot_x * k), round(70 * k)), r, 1.0, -1, cv2.LINE_AA)
    img += cover[..., None] * (ink - img)
    img *= _smooth_field(rng, H, W, 8, rng.uniform(0.01, 0.06))[..., None]
    return np.clip(img, 0, 1)


def _stamp(cover: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Add a glyph mask into the coverage map at (x, y), clipped to the map."""
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, cover.shape[1]), min(y + h, cover.shape[0])
    if x1 > x0 and y1 > y0:
        np.maximum(cover[y0:y1, x0:x1], mask[y0 - y : y1 - y, x0 - x : x1 - x], out=cover[y0:y1, x0:x1])


# ---------------------------------------------------------------- the photograph
def _photo_quad(rng: np.random.Generator, w: float, h: float) -> np.ndarray:
    """Corners (rb, lb, lt, rt) of the plate seen in a photo: yaw, pitch, roll and jitter."""
    yaw, pitch = rng.uniform(-0.12, 0.12), rng.uniform(-0.06, 0.06)
    half_w, half_h = w / 2, h / 2
    pts = np.array(
        [
            [half_w * (1 + pitch), half_h * (1 + yaw)],
            [-half_w * (1 + pitch), half_h * (1 - yaw)],
            [-half_w * (1 - pitch), -half_h * (1 - yaw)],
            [half_w * (1 - pitch), -half_h * (1 + yaw)],
        ]
    )
    pts[:, 0] += rng.uniform(-0.3, 0.3) * pts[:, 1]  # shear from a sideways view
    roll = np.deg2rad(rng.uniform(-9, 9))
    rot = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
    pts = pts @ rot.T + rng.normal(0, 0.012 * h, size=(4, 2))
    return pts


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Car body / bumper around the plate: a random paint colour with shading."""
    paint = rng.choice([[0.1, 0.1, 0.1], [0.85, 0.85, 0.85], [0.5, 0.5, 0.52], [0.6, 0.12, 0.1], [0.2, 0.25, 0.4]])
    paint = np.asarray(paint, np.float32) * rng.uniform(0.6, 1.1)
    return np.clip(paint[None, None, :] * _smooth_field(rng, h, w, 4, 0.15)[..., None], 0, 1)


def photograph_plate(flat: np.ndarray, rng: np.random.Generator, hr_size: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """Photo-simulate a flat plate and rectify it back to ``hr_size``; returns (uint8 RGB, meta)."""
    fh, fw = flat.shape[:2]
    photo_w = float(np.exp(rng.uniform(np.log(90), np.log(400))))
    photo_h = photo_w * fh / fw
    quad = _photo_quad(rng, photo_w, photo_h)
    margin = 0.05 * photo_w + 6
    quad -= quad.min(axis=0) - margin
    cw, ch = (int(np.ceil(v + margin)) for v in quad.max(axis=0))

    # Shrink first so the perspective warp does not alias, then warp onto the background.
    small_w, small_h = max(8, round(photo_w)), max(4, round(photo_h))
    small = cv2.resize(flat, (small_w, small_h), interpolation=cv2.INTER_AREA)
    src = np.array([[small_w - 1, small_h - 1], [0, small_h - 1], [0, 0], [small_w - 1, 0]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    canvas = _background(rng, ch, cw)
    cv2.warpPerspective(small, matrix, (cw, ch), dst=canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)

    # Light: exposure, colour cast, a shading gradient, sometimes a highlight.
    # (Fields are built from a row and a column vector: the canvas is touched few times.)
    xs = np.arange(cw, dtype=np.float32)[None, :] / cw
    ys = np.arange(ch, dtype=np.float32)[:, None] / ch
    angle = rng.uniform(0, 2 * np.pi)
    slope = rng.uniform(-0.35, 0.35)
    shade = 1.0 + slope * ((np.cos(angle) * (xs - 0.5)) + (np.sin(angle) * (ys - 0.5)))
    light = (rng.uniform(0.45, 1.25) * rng.uniform(0.92, 1.08, size=3)).astype(np.float32)
    canvas *= shade[..., None] * light
    if rng.random() < 0.25:
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.4)
        aspect = ch / cw
        blob = np.exp(-((xs - cx) ** 2) / (2 * r * r)) * np.exp(-((ys - cy) * aspect) ** 2 / (2 * r * r))
        canvas += (rng.uniform(0.15, 0.5) * blob)[..., None]
    haze = np.float32(rng.uniform(0.0, 0.35))  # veiling glare / dirty lens: lower contrast
    canvas += haze * (np.float32(rng.uniform(0.4, 0.9)) - canvas)
    np.clip(canvas, 0, 1, out=canvas)
    gamma = rng.uniform(0.8, 1.25)  # applied after the sensor, as a camera's tone curve is

    # Optics: defocus, sometimes motion blur.
    sigma = float(rng.uniform(0.3, 1.5) * max(1.0, photo_w / 150))
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    motion = 0
    if rng.random() < 0.3:
        motion = int(rng.integers(3, 8) * max(1.0, photo_w / 200))
        kernel = np.zeros((motion, motion), np.float32)
        kernel[motion // 2, :] = 1.0 / motion
        rot = cv2.getRotationMatrix2D((motion / 2 - 0.5, motion / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (motion, motion))
        canvas = cv2.filter2D(canvas, -1, kernel / max(kernel.sum(), 1e-6))

    # Sensor: shot + read noise (variance a*x + b), then 8-bit and JPEG.
    shot, read = rng.uniform(0.0, 0.004), rng.uniform(0.0, 0.0003)
    noise_std = np.sqrt(shot * canvas + read)
    canvas = canvas + noise_std * rng.standard_normal(canvas.shape, dtype=np.float32)
    photo = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    tone = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    photo = cv2.LUT(photo, tone)
    quality = int(rng.integers(35, 96))
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    photo = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    # Annotated corners: near the plate's edge (CCPD's labels sit on it, a little inside or
    # outside), plus ±0.6 px of labelling noise.
    inset = np.array([rng.uniform(-0.01, 0.025) * small_w, rng.uniform(-0.01, 0.06) * small_h])
    inner = np.array(
        [[small_w - 1 - inset[0], small_h - 1 - inset[1]], [inset[0], small_h - 1 - inset[1]], [inset[0], inset[1]], [small_w - 1 - inset[0], inset[1]]],
        np.float32,
    )
    corners = cv2.perspectiveTransform(inner[None], matrix)[0] + rng.normal(0, 0.6, size=(4, 2))
    hr = rectify_corners(photo, corners, hr_size)
    meta = {"photo_width": round(photo_w, 1), "blur_sigma": round(sigma, 2), "motion_blur": motion, "jpeg_quality": quality,
            "light": [round(float(v), 3) for v in light], "noise_shot": round(shot, 5)}
    return hr, meta


def render_plate(text: str, seed: int | np.random.SeedSequence, hr_size: tuple[int, int] = HR_SIZE) -> tuple[np.ndarray, dict]:
    """One synthetic CCPD-like crop of ``text`` (uint8 RGB, hr_size W x H) and its render settings."""
    rng = np.random.default_rng(seed)
    flat = render_flat_plate(text, rng)
    hr, meta = photograph_plate(flat, rng, check_hr_size(hr_size))
    meta["color"] = plate_color(text)
    return hr, meta


# ---------------------------------------------------------------- the data set
def make_synthetic(n_train: int = 400, n_val: int = 24, n_test: int = 64, seed: int = 0, hr_size: tuple[int, int] = HR_SIZE) -> PlateSplits:
    """Three splits of rendered plates with pairwise disjoint plate strings; one seed, one result.

    Which split a string may go to is fixed by ``assign_split`` (hash of the string, equal
    thirds); each split draws strings from its own stream and keeps those that hash to it.
    So the splits never share a string, and the first k plates of a split are the same
    whatever the other sizes are (asking for fewer plates gives a prefix).
    """
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise DataError(f"synthetic {name} size must be a non-negative integer, got {n!r}")
    size = check_hr_size(hr_size)
    out: dict[str, list[PlateRecord]] = {}
    for split_idx, (name, n) in enumerate(counts.items()):
        text_rng = np.random.default_rng([seed, 0, split_idx])
        seen: set[str] = set()
        records = []
        while len(records) < n:
            text = random_plate_text(text_rng)
            if text in seen or assign_split(text, (1, 1, 1), seed) != name:
                continue
            seen.add(text)
            i = len(records)
            hr, meta = render_plate(text, np.random.SeedSequence([seed, 1, split_idx, i]), size)
            records.append(PlateRecord(id=f"synthetic-{seed}-{name}-{i:05d}", hr=hr, text=text, source="synthetic", meta=meta))
        out[name] = records
    info = {"source": "synthetic", "seed": seed, "sizes": dict(counts), "hr_size": list(size), "skipped": []}
    return PlateSplits(name="synthetic", train=out["train"], val=out["val"], test=out["test"], skipped=0, info=info)

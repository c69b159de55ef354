"""errors.png: a contact sheet of the answers worth a look, so a person sees at a glance
what the model gets wrong (and where the localiser's outline went) without opening files."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from classifier.bands import ConfidenceBand
from classifier.images import load_image
from classifier.predictor import Classification

SHEET_LIMIT = 48  # thumbnails at most; the rest are in predictions.csv
THUMB = 200  # px, the longest side of a thumbnail
GRID_COLUMNS = 6
CAPTION_LINES = 4
LINE = 15  # px per caption line
PAD = 8
WRONG, LOW = (200, 30, 30), (200, 130, 0)  # caption colours: a wrong answer, a right one in the low band


def write_errors_sheet(path: Path, images: list[Path], truths: list[str], answers: list[Classification],
                       limit: int = SHEET_LIMIT) -> dict:
    """Wrong answers (most confident first), then right ones in the low band (least sure
    first), at most ``limit``; with none, a small image that says so. Only the shown images
    are decoded again, as thumbnails. Returns the counts for the report."""
    wrong = sorted((i for i, a in enumerate(answers) if a.document_type != truths[i]), key=lambda i: -answers[i].score)
    low = sorted((i for i, a in enumerate(answers) if a.document_type == truths[i] and a.band is ConfidenceBand.LOW),
                 key=lambda i: answers[i].score)
    shown = (wrong + low)[:limit]
    counts = {"wrong": len(wrong), "low_band": len(low), "shown": len(shown),
              "left_out": len(wrong) + len(low) - len(shown)}
    title = f"{len(wrong)} wrong and {len(low)} right but low-band answers of {len(answers)} images"
    if counts["left_out"]:
        title += f"; {counts['left_out']} more left out (all are in predictions.csv)"
    if not shown:
        title = f"No wrong or low-band answers among {len(answers)} images."
    tiles = [_tile(images[i], truths[i], answers[i]) for i in shown]
    _grid(tiles, title).save(path)
    return counts


def _tile(path: Path, truth: str, answer: Classification) -> Image.Image:
    """A thumbnail with the found outline drawn on it and a caption: file, true, said, score, band."""
    img = load_image(path, min_size=THUMB)
    img.thumbnail((THUMB, THUMB))
    tile = Image.new("RGB", (THUMB, THUMB + CAPTION_LINES * LINE), "white")
    left, top = (THUMB - img.width) // 2, (THUMB - img.height) // 2
    tile.paste(img, (left, top))
    draw = ImageDraw.Draw(tile)
    loc = answer.localisation
    if loc is not None and loc.found:
        scale = img.width / answer.width
        draw.polygon([(left + x * scale, top + y * scale) for x, y in loc.quad], outline=(0, 200, 60), width=3)
    outline = "" if loc is None else (", outline" if loc.found else ", no outline")
    caption = [_fit(path.name), f"true: {truth}", f"said: {answer.document_type} {answer.score:.4f}",
               f"band: {answer.band.value}{outline}"]
    colour = WRONG if answer.document_type != truth else LOW
    for n, line in enumerate(caption):
        draw.text((2, THUMB + n * LINE), line, fill=colour, font=_font())
    return tile


def _grid(tiles: list[Image.Image], title: str) -> Image.Image:
    columns = min(GRID_COLUMNS, len(tiles)) or 1
    rows = -(-len(tiles) // columns)
    cell_w, cell_h = THUMB + PAD, THUMB + CAPTION_LINES * LINE + PAD
    width = max(columns * cell_w + PAD, 480)
    sheet = Image.new("RGB", (width, PAD + 2 * LINE + rows * cell_h), (240, 240, 240))
    ImageDraw.Draw(sheet).text((PAD, PAD), title, fill="black", font=_font())
    for n, tile in enumerate(tiles):
        sheet.paste(tile, (PAD + (n % columns) * cell_w, PAD + 2 * LINE + (n // columns) * cell_h))
    return sheet


def _fit(text: str, chars: int = 30) -> str:
    return text if len(text) <= chars else "..." + text[-(chars - 3):]


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=12)

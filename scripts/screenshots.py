r"""Screenshots of the web app for the docs, from a running server.

    python scripts/screenshots.py http://127.0.0.1:8000 --documents DATA_DIR --photos PHOTOS \
        --username admin --password ...

Uploads candidate images through the API until it has one in each confidence band:
document photos from DATA_DIR (class folders, e.g. the demo data set), degraded
copies of them (cropped, blurred, dark), photos that are no document at all
(--photos) and noise. Then, at desktop and phone sizes, it captures the upload page,
a result page per band (uploading through the form like a person), the admin review
list and one review form, into docs/screenshots/. Needs Chromium at /usr/bin/chromium.
It uploads dozens of images in a minute: start the server with IDCLASS_UPLOAD_RATES=off.
"""
from __future__ import annotations

import argparse
import mimetypes
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop": {"viewport": {"width": 1280, "height": 800}},
             "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
                       "has_touch": True}}
BANDS = ("high", "medium", "low")


def degraded(path: Path, strength: float) -> Image.Image:
    """A worse photo of the same document: a corner cropped away, blurred and dark."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    keep = 1 - 0.45 * strength
    img = img.crop((0, 0, int(w * keep), int(h * keep)))
    img = img.filter(ImageFilter.GaussianBlur(1 + 5 * strength))
    return ImageEnhance.Brightness(img).enhance(1 - 0.6 * strength)


def candidates(documents: Path, photos: Path | None, work: Path) -> list[Path]:
    """Most likely high first, then medium, then low."""
    originals = sorted(documents.glob("*/*.jpg"))[::7][:6]
    if not originals:
        sys.exit(f"no JPEGs in class folders under {documents}")
    found = list(originals)
    for strength in (0.3, 0.5, 0.7, 0.9):
        for i, path in enumerate(originals[:3]):
            out = work / f"degraded-{strength}-{i}.jpg"
            degraded(path, strength).save(out, quality=80)
            found.append(out)
    if photos and photos.is_dir():
        found += sorted(p for p in photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:12]
    noise = work / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(noise)
    return found + [noise]


def one_per_band(request, url: str, paths: list[Path]) -> dict[str, Path]:
    chosen: dict[str, Path] = {}
    for path in paths:
        response = request.post(f"{url}/api/v1/classify", multipart={
            "image": {"name": path.name, "mimeType": mimetypes.guess_type(path.name)[0] or "image/jpeg",
                      "buffer": path.read_bytes()}})
        if not response.ok:
            sys.exit(f"the API answered {response.status} for {path}: {response.text()}")
        band = response.json()["band"]
        chosen.setdefault(band, path)
        print(f"{path.name}: {band} ({response.json()['score']:.3f})")
        if len(chosen) == len(BANDS):
            break
    missing = [b for b in BANDS if b not in chosen]
    if missing:
        print(f"no candidate landed in: {', '.join(missing)}; those result pages are left out")
    return chosen


def capture(browser, url: str, chosen: dict[str, Path], username: str, password: str, out: Path) -> None:
    for size, options in VIEWPORTS.items():
        page = browser.new_page(**options)
        page.goto(f"{url}/")
        page.screenshot(path=out / f"upload-{size}.png", full_page=True)
        for band, path in chosen.items():
            page.goto(f"{url}/")
            page.set_input_files("#id_image", str(path))
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/p/*/")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=out / f"result-{band}-{size}.png", full_page=True)
        page.goto(f"{url}/admin/idclass/prediction/")
        if page.locator("#id_username").count():
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("input[type=submit]")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=out / f"admin-list-{size}.png")  # the top of the queue: the least sure
        page.locator("#result_list tbody tr a").first.click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=out / f"admin-review-{size}.png", full_page=True)
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the running server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--documents", type=Path, required=True, help="class folders of document photos")
    parser.add_argument("--photos", type=Path, required=True,
                        help="a folder of photos that hold no document")
    parser.add_argument("--username", required=True, help="a staff user, for the admin pages")
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        request = playwright.request.new_context()
        chosen = one_per_band(request, url, candidates(args.documents, args.photos, Path(work)))
        capture(browser, url, chosen, args.username, args.password, args.out)
        browser.close()
    print(f"screenshots written to {args.out}")


if __name__ == "__main__":
    main()

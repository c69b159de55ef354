"""Image loading: every conversion to RGB and every refusal of part 2."""
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFilter

from classifier.errors import InvalidImage
from classifier import images
from benchmarks.photos import encode
from classifier.images import image_paths, load_image, resize_for_model, to_array


def gradient(w=120, h=80) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    arr = np.stack([np.tile(x, (h, 1)), np.tile(x[::-1], (h, 1)), np.full((h, w), 90, np.uint8)], -1)
    return Image.fromarray(arr, "RGB")


def test_accepts_bytes_path_file_and_pil(tmp_path):
    data = encode(gradient(), "PNG")
    path = tmp_path / "doc.png"
    path.write_bytes(data)
    for source in (data, path, str(path), io.BytesIO(data), gradient()):
        img = load_image(source)
        assert img.mode == "RGB" and img.size == (120, 80)


def test_exif_orientation_is_applied():
    img = gradient(120, 80)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    loaded = load_image(encode(img, "JPEG", exif=exif))
    assert loaded.size == (80, 120)
    assert loaded.info["original_size"] == (80, 120)
    # the left column of the stored image (dark red) becomes the top row
    assert np.asarray(loaded)[2, :, 0].mean() < 40


def test_cmyk_becomes_rgb():
    loaded = load_image(encode(gradient().convert("CMYK"), "JPEG"))
    assert loaded.mode == "RGB"
    assert abs(int(np.asarray(loaded)[:, -5:, 0].mean()) - 250) < 12


def test_palette_with_transparency_is_flattened_on_white():
    img = Image.new("P", (64, 64), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (0, 0, 32, 64))
    img.info["transparency"] = 0
    loaded = load_image(encode(img, "PNG", transparency=0))
    arr = np.asarray(loaded)
    assert tuple(arr[10, 10]) == (255, 0, 0)
    assert tuple(arr[10, 50]) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(mode):
    img = Image.new(mode, (64, 64), (0, 0, 0, 0) if mode == "RGBA" else (0, 0))
    loaded = load_image(encode(img, "PNG"))
    assert loaded.mode == "RGB"
    assert np.asarray(loaded).min() == 255


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    arr = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    loaded = load_image(encode(Image.fromarray(arr), "PNG"))
    out = np.asarray(loaded)[..., 0]
    assert loaded.mode == "RGB"
    assert out[0, 0] == 0 and out[0, -1] == 255 and 100 < out[0, 32] < 155


def test_greyscale_becomes_rgb():
    loaded = load_image(encode(gradient().convert("L"), "JPEG"))
    arr = np.asarray(loaded)
    assert loaded.mode == "RGB" and (arr[..., 0] == arr[..., 1]).all()


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert np.asarray(load_image(gif))[..., 0].mean() > 200


@pytest.mark.parametrize("data, code", [
    (b"", "empty"),
    (b"%PDF-1.7\nthis is not an image at all", "not_an_image"),
    (b"hello world, plain text", "not_an_image"),
])
def test_refuses_empty_and_non_images(data, code):
    with pytest.raises(InvalidImage) as err:
        load_image(data)
    assert err.value.code == code and err.value.message


def test_refuses_truncated_jpeg():
    data = encode(gradient(400, 300), "JPEG", quality=90)
    with pytest.raises(InvalidImage) as err:
        load_image(data[: len(data) // 2])
    assert err.value.code == "corrupt"
    assert "damaged" in err.value.message


def test_refuses_corrupt_png():
    data = bytearray(encode(gradient(), "PNG"))
    data[60:80] = b"\x00" * 20  # garble the image data
    with pytest.raises(InvalidImage) as err:
        load_image(bytes(data))
    assert err.value.code == "corrupt"


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims to be enormous: the classic decompression bomb."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(10_000, 10_000), (40_000, 40_000)])
def test_refuses_decompression_bombs(size):
    with pytest.raises(InvalidImage) as err:
        load_image(png_header_only(*size))
    assert err.value.code == "too_many_pixels"
    assert "pixels" in err.value.message


def one_bit_png(width: int, height: int) -> bytes:
    """An all-white 1-bit PNG, made the way any encoder makes one: 7700x7700 is 59 MP in 15 KB."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    stride = (width + 7) // 8
    rows = b"\x00" + b"\xff" * stride + (b"\x02" + bytes(stride)) * (height - 1)  # filter "up": as above
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def test_refuses_one_bit_png_bomb_under_the_jpeg_limit():
    """59 MP in a 15 KB file: under the 60 MP a JPEG may have, but a PNG is decoded whole, and
    as RGB it would take 240 MB."""
    data = one_bit_png(7700, 7700)
    assert len(data) < 20_000
    with pytest.raises(InvalidImage) as err:
        load_image(data, min_size=640)
    assert err.value.code == "too_many_pixels"
    assert err.value.message == ("The image is 7700x7700 pixels (59.3 megapixels); a PNG may have at most "
                                 "16 megapixels, a JPEG up to 60. Make it smaller, or save it as a JPEG.")


@pytest.mark.parametrize("fmt, mode, size, options, name, limit", [
    ("PNG", "RGB", (4700, 3420), {}, "a PNG", "16"),  # 16.07 MP
    ("GIF", "L", (4700, 3420), {}, "a GIF", "16"),
    ("BMP", "1", (4700, 3420), {}, "a BMP", "16"),
    ("TIFF", "RGB", (4700, 3420), {"compression": "tiff_deflate"}, "a TIFF", "16"),
    # libtiff decodes a strip into a buffer of its own first: here the whole image, 4 bytes a pixel more
    ("TIFF", "CMYK", (3300, 2430), {"compression": "tiff_deflate", "strip_size": 2**31 - 1},
     "a TIFF like this one", "8"),
    ("WEBP", "RGB", (2310, 1740), {"lossless": True}, "a WebP", "4"),
    # a progressive JPEG's decoder keeps 2 bytes for every sample of the whole image: 4 channels, 8 a pixel
    ("JPEG", "CMYK", (3300, 2430), {"progressive": True}, "a progressive JPEG like this one", "8"),
])
def test_formats_decoded_whole_have_lower_limits(fmt, mode, size, options, name, limit):
    data = encode(Image.new(mode, size), fmt, **options)
    with pytest.raises(InvalidImage) as err:
        load_image(data, min_size=640)
    assert err.value.code == "too_many_pixels"
    assert f"{name} may have at most {limit} megapixels" in err.value.message
    assert f"{size[0]}x{size[1]} pixels" in err.value.message


def test_a_progressive_jpegs_limit_follows_the_resolution_of_its_colour():
    """Colour at half resolution each way (as cameras save it): 3 bytes a pixel, so 16 MP; at full, 6."""
    img = Image.new("RGB", (4600, 3450), (200, 190, 180))  # 15.9 MP
    assert load_image(encode(img, "JPEG", progressive=True), min_size=640).size == (1150, 863)
    with pytest.raises(InvalidImage) as err:
        load_image(encode(img, "JPEG", progressive=True, subsampling=0), min_size=640)
    assert "a progressive JPEG like this one may have at most 10.7 megapixels" in err.value.message


def test_a_tiffs_limit_follows_its_strips():
    """Stored in strips of 64 KB (as most writers do), 16 MP; in one strip of 3 bytes a pixel, 9.1."""
    img = Image.new("RGB", (4000, 2400), (200, 190, 180))  # 9.6 MP
    assert load_image(encode(img, "TIFF", compression="tiff_deflate"), min_size=640).size == (1334, 800)
    with pytest.raises(InvalidImage) as err:
        load_image(encode(img, "TIFF", compression="tiff_deflate", strip_size=2**31 - 1), min_size=640)
    assert "a TIFF like this one may have at most 9.1 megapixels" in err.value.message


def test_the_same_59_megapixels_are_a_jpeg_but_not_a_png():
    """A baseline JPEG is decoded at 1/8 of its size, a PNG only whole."""
    img = Image.new("L", (8900, 6700), 200)
    assert load_image(encode(img, "JPEG"), min_size=640).size == (1113, 838)
    with pytest.raises(InvalidImage) as err:
        load_image(encode(img, "PNG"), min_size=640)
    assert err.value.code == "too_many_pixels" and "a PNG may have at most 16 megapixels" in err.value.message


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "I;16"])
def test_png_is_reduced_before_it_becomes_rgb(mode, monkeypatch):
    """A 12 MP phone-size PNG comes out at the size a JPEG's draft would give, and no more than a
    band of it is ever RGB: a 1-bit or palette image costs its own 1 byte a pixel, not 4."""
    img = Image.fromarray(np.asarray(gradient(4032, 3024)), "RGB")
    img = img.quantize(64) if mode == "P" else img.convert(mode) if mode != "I;16" else Image.fromarray(
        np.asarray(img.convert("L")).astype(np.uint16) * 257)
    data = encode(img, "PNG")
    converted = []
    convert = Image.Image.convert

    def spy(self, to=None, *args, **kw):
        converted.append((self.mode, to, self.width * self.height))
        return convert(self, to, *args, **kw)

    monkeypatch.setattr(Image.Image, "convert", spy)
    loaded = load_image(data, min_size=640)
    assert loaded.size == (1008, 756) and loaded.mode == "RGB"
    assert loaded.info["original_size"] == (4032, 3024) and loaded.info["format"] == "PNG"
    biggest = max((n for _, to, n in converted if to in ("RGB", "RGBA")), default=0)
    assert biggest <= 2 * images.REDUCE_BAND_PIXELS


def test_reduced_png_is_upright():
    img = gradient(1400, 700)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    loaded = load_image(encode(img, "PNG", exif=exif), min_size=300)
    assert loaded.size == (350, 700) and loaded.info["original_size"] == (700, 1400)
    assert np.asarray(loaded)[1, :, 0].mean() < 40  # the dark left column is on top


def test_elongated_image_has_its_long_side_reduced():
    """Both sides at least min_size would leave a 36:1 strip enormous; the long side wins."""
    for fmt in ("JPEG", "PNG"):
        loaded = load_image(encode(gradient(200, 7200), fmt), min_size=64)
        assert max(loaded.size) <= images.MAX_ASPECT * 64, fmt
        assert loaded.info["original_size"] == (200, 7200)


@pytest.mark.parametrize("mode", ["1", "L", "P", "PA", "LA", "RGBA", "CMYK", "I;16", "I", "F"])
def test_reduced_rgb_is_to_rgb_then_reduce(mode, monkeypatch):
    """Band by band gives the very pixels of converting whole, however the bands fall."""
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 255, (61, 97, 4), dtype=np.uint8)
    base = Image.fromarray(arr, "RGBA")
    if mode == "P":
        img = base.convert("RGB").quantize(32)
        img.info["transparency"] = 3
    elif mode in ("I;16", "I", "F"):
        img = Image.fromarray(rng.integers(0, 4000, (61, 97)).astype({"I;16": np.uint16, "I": np.int32,
                                                                       "F": np.float32}[mode]))
        assert img.mode == mode
    else:
        img = base.convert(mode)
    monkeypatch.setattr(images, "REDUCE_BAND_PIXELS", 500)
    for factor in (2, 3, 5):
        whole = images.to_rgb(img).reduce(factor)
        assert np.array_equal(np.asarray(images.reduced_rgb(img, factor)), np.asarray(whole)), factor


PEAK_SCRIPT = """
import io, sys
from PIL import Image
from classifier.images import load_image
data = sys.stdin.buffer.read()
def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)) / 1024
open("/proc/self/clear_refs", "w").write("5")  # VmHWM from now on
before = status("VmRSS")
img = load_image(data, min_size=640)
print(status("VmHWM") - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_16_megapixel_one_bit_png_costs_a_byte_a_pixel():
    """16 MP of 1-bit PNG (a PNG's limit): decoded it takes 16 MB, a byte a pixel; made RGB whole
    it took 64 MB more, and localising at full size as much again several times over."""
    img = Image.new("1", (4600, 3450), 1)
    img.paste(0, (1000, 800, 3600, 2600))
    data = encode(img, "PNG")
    peak = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], input=data, capture_output=True, check=True,
                          cwd=images.__file__.rsplit("/classifier/", 1)[0]).stdout
    assert float(peak) < 40, f"peak {float(peak):.0f} MB"


def test_refuses_tiny_images():
    with pytest.raises(InvalidImage) as err:
        load_image(encode(Image.new("RGB", (20, 300)), "PNG"))
    assert err.value.code == "too_small"
    assert "20x300" in err.value.message


def test_refuses_formats_nobody_uploads_as_photos():
    with pytest.raises(InvalidImage) as err:
        load_image(encode(gradient(64, 64), "ICO"))
    assert err.value.code == "unsupported_format"
    assert "ICO" in err.value.message


def test_refuses_missing_path(tmp_path):
    with pytest.raises(InvalidImage) as err:
        load_image(tmp_path / "nope.jpg")
    assert err.value.code == "missing"


def test_unreadable_file_is_an_invalid_image(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    path.write_bytes(encode(gradient(), "PNG"))

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(path), "read_bytes", denied)  # chmod does not stop root, who may run the tests
    with pytest.raises(InvalidImage, match="Permission denied") as err:
        load_image(path)
    assert err.value.code == "unreadable"


def test_image_paths_expand_folders_and_keep_named_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/1.jpg", "a/b/2.PNG", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    named = tmp_path / "scan.dat"
    assert image_paths([tmp_path / "a", named]) == [tmp_path / "a/1.jpg", tmp_path / "a/b/2.PNG", named]


def test_large_jpeg_fast_path_matches_full_decode():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    big = Image.fromarray(base).resize((4000, 3000), Image.Resampling.BICUBIC)
    data = encode(big, "JPEG", quality=90)
    fast = load_image(data, min_size=224)
    full = load_image(data)
    assert max(fast.size) < 4000 / 2 and min(fast.size) >= 224
    assert fast.info["original_size"] == full.size == (4000, 3000)
    diff = np.abs(to_array(fast) - to_array(full)) * 0.226 * 255  # back to pixel units
    assert diff.mean() < 1.5 and diff.max() < 40


def test_a_view_keeps_no_finer_detail_than_asked():
    """A crisp scan and a soft photo of one document come out alike; without ``detail`` they differ."""
    rng = np.random.default_rng(0)
    dots = np.kron(rng.integers(0, 2, (150, 150)) * 255, np.ones((2, 2))).astype(np.uint8)  # 2 px print
    fine = Image.fromarray(dots).convert("RGB")
    soft = fine.filter(ImageFilter.GaussianBlur(2))
    crisp_gap = np.abs(to_array(fine, 224) - to_array(soft, 224)).mean()
    detail_gap = np.abs(to_array(fine, 224, detail=112) - to_array(soft, 224, detail=112)).mean()
    assert detail_gap < crisp_gap / 2
    coarse = gradient(300, 190)  # what is coarser than the detail passes unchanged, nearly
    assert np.abs(to_array(coarse, 224, detail=112) - to_array(coarse, 224)).mean() < 0.02


@pytest.mark.parametrize("mode", ["squash", "letterbox", "centre_crop"])
def test_resize_modes_give_square_input(mode):
    out = resize_for_model(gradient(300, 190), 224, mode)
    assert out.size == (224, 224)
    assert to_array(gradient(300, 190), 224, mode).shape == (3, 224, 224)


def test_letterbox_keeps_whole_document_and_pads():
    arr = np.asarray(resize_for_model(Image.new("RGB", (300, 150), (255, 255, 255)), 224, "letterbox"))
    assert (arr[112, :, 0] == 255).all()  # the full width is document
    assert (arr[2, 112] != 255).all()  # above it is padding

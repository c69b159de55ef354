"""Images and records for the web tests; test modules import what they use (fixtures are in conftest.py)."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from PIL import Image

from benchmarks.photos import encode
from idclass.models import Prediction


def upload(data: bytes, name: str = "photo.jpg") -> io.BytesIO:
    """A file for the test client to send as the `image` field."""
    fh = io.BytesIO(data)
    fh.name = name
    return fh


def jpeg(width: int = 320, height: int = 200) -> bytes:
    return encode(Image.new("RGB", (width, height), (40, 90, 160)), "JPEG")


def noise_png() -> bytes:
    return encode(Image.effect_noise((200, 200), 60).convert("RGB"), "PNG")


# (id, file bytes, status, error code, part of the message); none of them may be stored.
BAD_UPLOADS = [
    pytest.param(lambda: b"", 400, "empty", "The file is empty", id="empty"),
    pytest.param(lambda: b"just some text, not a picture", 400, "not_an_image", "not an image", id="not-an-image"),
    pytest.param(lambda: jpeg(800, 600)[:1500], 400, "corrupt", "damaged or incomplete", id="truncated-jpeg"),
    pytest.param(lambda: noise_png()[:300] + bytes(300) + noise_png()[600:], 400, "corrupt", "damaged",
                 id="corrupt-png"),
    pytest.param(lambda: encode(Image.new("1", (12000, 12000)), "PNG"), 400, "too_many_pixels", "pixels",
                 id="decompression-bomb"),
    # 59 MP, under a JPEG's 60, in 16 KB: a PNG is decoded whole, and as RGB this one would take 240 MB
    pytest.param(lambda: encode(Image.new("1", (7700, 7700), 1), "PNG", optimize=True), 400, "too_many_pixels",
                 "a PNG may have at most 16 megapixels", id="one-bit-png-bomb"),
    pytest.param(lambda: encode(Image.new("RGB", (20, 20)), "PNG"), 400, "too_small", "at least", id="too-small"),
    pytest.param(lambda: encode(Image.new("RGB", (64, 64)), "ICO"), 415, "unsupported_format", "not supported",
                 id="ico"),
    pytest.param(lambda: encode(Image.new("RGB", (64, 64)), "PPM"), 415, "unsupported_format", "not supported",
                 id="ppm"),
]


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def make_prediction(image: bytes | None = None, document_type: str = "vel_id", score: float = 0.95,
                    band: str = "high", **fields) -> Prediction:
    """A stored prediction as an upload would leave it, without running the model."""
    data = image or b""
    others = [t for t in ("lun_id", "mar_id", "vel_id") if t != document_type][:2]
    top_k = [{"document_type": t, "label": f"Label of {t}", "score": s}
             for t, s in zip([document_type, *others], [score, (1 - score) * 0.7, (1 - score) * 0.3])]
    prediction = Prediction(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), width=320, height=200,
                            document_type=document_type, score=score, band=band, top_k=top_k,
                            model_version="test-model", latency_ms=12.5, **fields)
    if image:  # as services.store writes it: named by its sha256, written whole
        prediction.image.name = f"{prediction.sha256}.jpg"
        prediction.image.storage.save_document(prediction.image.name, image)
    prediction.save()
    return prediction


class AnsweredRequest(DjangoOpenAPIRequest):
    """A request as its answer is checked: Django refuses its body once the upload was parsed, and
    finding the operation needs only its path and method."""
    body = b""


def conforms(spec: OpenAPI, response, status: int) -> dict:
    """The real answer, checked against the document's operation for its path, method and status."""
    assert response.status_code == status
    spec.validate_response(AnsweredRequest(response.wsgi_request), DjangoOpenAPIResponse(response))
    return response.json()

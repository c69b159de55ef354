"""What an upload can be refused with: every error code, its HTTP status, and the exception that
carries one. The upload service raises it; the views and the OpenAPI document (idclass/openapi.py) read it."""
from __future__ import annotations

from classifier.errors import InvalidImage
from idclass.forms import FIELD_ERRORS, TOO_LARGE

# Every code the upload page and the API refuse with, and its HTTP status: the one list that
# UploadRejected, the API's views and its OpenAPI document (idclass/openapi.py) read.
ERROR_STATUS: dict[str, int] = {
    **dict.fromkeys(FIELD_ERRORS, 400),  # no file, or an empty one
    "bad_request": 400,  # a body that is not multipart/form-data
    **dict.fromkeys(InvalidImage.CODES, 400),  # the file is no photo the classifier can read ...
    "unsupported_format": 415,  # ... or an image in a format nobody uploads as a photo
    TOO_LARGE: 413,
    "length_required": 411,  # a chunked body without Content-Length
    "login_required": 401,  # IDCLASS_REQUIRE_LOGIN is on
    "method_not_allowed": 405,
    "not_found": 404,
    "rate_limited": 429,
    "model_unavailable": 503,
    "database_unavailable": 503,  # locked past its timeout, or unreachable
    "storage_unavailable": 503,  # the media folder cannot be written
    "storage_full": 507,
    "server_error": 500,
}
UNAVAILABLE_RETRY_SECONDS = 30  # the Retry-After of a 503: the server is meant to recover by itself


class UploadRejected(Exception):
    """An upload that was refused and not stored; `message` is fit to show to a person, and
    `retry_after` (seconds) says when trying again may work, where that is known."""

    def __init__(self, code: str, message: str, retry_after: int | None = None):
        if code not in ERROR_STATUS:  # an API answer its document does not list
            raise ValueError(f"unknown error code {code!r}; add it to ERROR_STATUS")
        super().__init__(message)
        self.code = code
        self.message = message
        if retry_after is None and self.status == 503:
            retry_after = UNAVAILABLE_RETRY_SECONDS
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]

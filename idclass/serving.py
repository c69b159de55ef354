"""The one predictor a server process uses.

It is loaded once, when the process starts serving (idclass/wsgi.py), never per
request and never by management commands. A failure is remembered too: the
server then answers "unavailable" with the reason until it is restarted.
"""
import logging
import threading

from django.conf import settings

from classifier.errors import ClassifierError
from classifier.predictor import Predictor

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: Predictor | None = None
_failure: str | None = None


class ModelUnavailable(Exception):
    """No usable model in this process; the message says why and what to do."""


def load_predictor() -> None:
    """Load the model unless this process already tried; a failure is logged and kept."""
    global _loaded, _failure
    with _lock:
        if _loaded is None and _failure is None:
            try:
                _loaded = Predictor(settings.IDCLASS_MODEL_DIR, weights=settings.IDCLASS_BACKBONE_WEIGHTS or None,
                                    threads=settings.IDCLASS_TORCH_THREADS)
                logger.info("model %s loaded from %s", _loaded.version, settings.IDCLASS_MODEL_DIR)
            except ClassifierError as exc:
                _failure = exc.message
                logger.error("no model to serve: %s", _failure)


def get_predictor() -> Predictor:
    load_predictor()
    if _loaded is None:
        raise ModelUnavailable(_failure)
    return _loaded


def unavailable_reason() -> str | None:
    """Why this process cannot classify, or None when it can."""
    load_predictor()
    return _failure


def forget_predictor() -> None:
    """Load again on next use (tests that change IDCLASS_MODEL_DIR)."""
    global _loaded, _failure
    with _lock:
        _loaded = _failure = None


"""The predictor a server process uses, and how a new model replaces it without a restart.

The model is loaded as the process starts serving (idclass/wsgi.py), never by
management commands. After that, at most every IDCLASS_MODEL_CHECK_SECONDS, a
request looks at IDCLASS_MODEL_DIR (a stat, see artifact.model_identity). When
another model is there, a background thread loads it, one load at a time, while the
old one serves; then one assignment swaps it in, and a request in flight keeps the
predictor it started with. A model that fails to load is logged and reported, the
old one keeps serving, and it is not tried again until the folder changes.
"""
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from classifier import artifact
from classifier.errors import BackboneUnavailable, ClassifierError, ModelMismatch, ModelNotFound, ModelUnreadable
from classifier.predictor import Predictor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """What this process serves: replaced whole, never changed, so readers need no lock."""

    predictor: Predictor | None
    identity: artifact.ModelIdentity | None  # of the model last tried, loaded or not
    error: ClassifierError | None = None  # why that try failed


_lock = threading.Lock()  # held to replace _served or start _loader
_served: Served | None = None
_loader: threading.Thread | None = None
_next_check = 0.0  # time.monotonic() of the next look at IDCLASS_MODEL_DIR


class ModelUnavailable(Exception):
    """No usable model in this process. Its message, for anyone, says why without file paths;
    `detail`, for staff and the log, is the classifier's own message and says what to do."""

    def __init__(self, error: ClassifierError):
        super().__init__(public_reason(error))
        self.detail = error.message


# What a visitor is told of each kind of load failure; the paths and the fix are for staff.
PUBLIC_REASONS = {
    ModelNotFound: "No trained model is installed yet.",
    ModelUnreadable: "The installed model's files are damaged or incomplete.",
    ModelMismatch: "The installed model does not fit this version of idclass.",
    BackboneUnavailable: "The backbone's pretrained weights are not available.",
}


def public_reason(error: ClassifierError) -> str:
    kind = next((k for k in PUBLIC_REASONS if isinstance(error, k)), None)
    return f"{PUBLIC_REASONS.get(kind, 'The model could not be loaded.')} The server log says why."


def load_predictor() -> None:
    """Load the model in this thread unless this process already tried (a failure is kept)."""
    global _served
    if _served is None:
        with _lock:
            if _served is None:
                _served = _load(artifact.model_identity(settings.IDCLASS_MODEL_DIR), None)


def get_predictor() -> Predictor:
    """The model to classify with; a request keeps it to the end, whatever is swapped in meanwhile."""
    served = _current()
    if served.predictor is None:
        raise ModelUnavailable(served.error)
    return served.predictor


def reload_error() -> str | None:
    """Why a newer model is not serving while an older one is. Anyone may read it on
    /healthz, so it names the error's kind, not its message with file paths (logged)."""
    served = _current()
    if served.predictor is None or served.error is None:
        return None
    return (f"{type(served.error).__name__}: the new model in IDCLASS_MODEL_DIR could not be loaded, "
            "so the previous one still serves; the server log says why.")


def _current() -> Served:
    """What this process serves, after starting to load a new model if one is there."""
    load_predictor()
    _look_for_new_model()
    return _served


def _look_for_new_model() -> None:
    """When a look is due and IDCLASS_MODEL_DIR holds a model not tried yet, load it in the background."""
    global _next_check, _loader
    now = time.monotonic()
    if now < _next_check:
        return
    _next_check = now + settings.IDCLASS_MODEL_CHECK_SECONDS
    identity = artifact.model_identity(settings.IDCLASS_MODEL_DIR)
    with _lock:
        if identity == _served.identity or (_loader is not None and _loader.is_alive()):
            return
        _loader = threading.Thread(target=_reload, args=(identity,), name="idclass-model-reload", daemon=True)
        _loader.start()


def _reload(identity: artifact.ModelIdentity | None) -> None:
    """Runs in the loader thread, the only one that replaces _served once it is set."""
    global _served
    served = _load(identity, _served.predictor)
    with _lock:
        _served = served


def _load(identity: artifact.ModelIdentity | None, previous: Predictor | None) -> Served:
    """The model that `identity` names; if it cannot be loaded, `previous` still serves."""
    folder = identity.folder if identity else settings.IDCLASS_MODEL_DIR
    try:
        predictor = Predictor(folder, weights=settings.IDCLASS_BACKBONE_WEIGHTS or None,
                              threads=settings.IDCLASS_INFERENCE_THREADS)
    except ClassifierError as exc:
        keeping = f"model {previous.version} still serves" if previous else "no model to serve"
        logger.error("model in %s not loaded, %s: %s", folder, keeping, exc.message)
        return Served(previous, identity, exc)
    logger.info("model %s loaded from %s", predictor.version, folder)
    return Served(predictor, identity)


def forget_predictor() -> None:
    """Load again on next use (tests that change IDCLASS_MODEL_DIR), once a load in progress ends."""
    global _served, _next_check
    if _loader is not None:
        _loader.join()
    with _lock:
        _served, _next_check = None, 0.0


def use_predictor(predictor: Predictor) -> None:
    """Serve `predictor`, loaded elsewhere from IDCLASS_MODEL_DIR, as if this process had loaded
    it there (tests share one: loading takes a moment)."""
    global _served
    forget_predictor()
    with _lock:
        _served = Served(predictor, artifact.model_identity(settings.IDCLASS_MODEL_DIR))

"""The classifier's one family of exceptions: callers catch ``ClassifierError`` (or one
of its kinds) once, and its message is fit to show as it is."""
from __future__ import annotations


class ClassifierError(Exception):
    """Something the classifier cannot do; ``message`` says why and, where it can, what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ModelNotFound(ClassifierError):
    """No trained model (or localiser) where one was expected."""


class ModelUnreadable(ClassifierError):
    """A model's files are there but damaged or incomplete."""


class ModelMismatch(ClassifierError):
    """A model that cannot be used with this code or these parts: another schema version,
    backbone or localiser than it was trained with."""


class BackboneUnavailable(ClassifierError):
    """The backbone's pretrained weights cannot be had."""


class DeviceUnavailable(ClassifierError):
    """The device asked for (a CUDA GPU) is not there."""


class DatasetError(ClassifierError):
    """A folder that does not hold what training or evaluation needs."""


class InvalidImage(ClassifierError):
    """An input that cannot be classified; ``code`` names the reason for programs."""

    # Every code there is: the web API's error statuses and its OpenAPI document are made from these.
    CODES = ("empty", "missing", "unreadable", "not_an_image", "unsupported_format", "corrupt", "too_small",
             "too_many_pixels")

    def __init__(self, code: str, message: str):
        if code not in self.CODES:
            raise ValueError(f"unknown InvalidImage code {code!r}; add it to InvalidImage.CODES")
        super().__init__(message)
        self.code = code

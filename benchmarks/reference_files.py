"""Files the tests and benchmarks use that no one ships with the product: ImageNet weights for
MobileNetV3-Small, photos that hold no document (capture backgrounds, open-set checks), and flat
scans of real identity-document specimens (a folder of class folders, for testing only: nothing
that ships is trained on them). IDCLASS_TEST_WEIGHTS, IDCLASS_TEST_PHOTOS and IDCLASS_TEST_SCANS
say where they are; the defaults are where this project's development checkout keeps them, beside
the repository. What needs one and lacks it skips."""
import os
from pathlib import Path

from benchmarks.server import ROOT

WEIGHTS = Path(os.environ.get("IDCLASS_TEST_WEIGHTS", ROOT.parent / "shared" / "weights" /
                              "mobilenet_v3_small_imagenet.pth"))
PHOTOS = Path(os.environ.get("IDCLASS_TEST_PHOTOS", ROOT.parent / "shared" / "data" / "natural-images"))
SCANS = Path(os.environ.get("IDCLASS_TEST_SCANS", ROOT.parent / "shared" / "data" / "real-scans"))

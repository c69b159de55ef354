import contextlib
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from classifier.device import DEVICE_CHOICES
from classifier.errors import ClassifierError
from classifier.images import image_paths
from classifier.predictor import Predictor
from classifier.results import write_batch_csv


class Command(BaseCommand):
    help = ("Classify image files, or every image under folders, into one CSV row each (to stdout "
            "without --csv); a file that cannot be read gets its error code and the run goes on.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--csv", type=Path, help="write the rows here instead of to stdout")
        parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
        parser.add_argument("--model", type=Path, default=settings.IDCLASS_MODEL_DIR)
        parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                            help="where the backbone runs (auto: a CUDA GPU when present)")

    def handle(self, paths, csv, batch_size, model, device, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            predictor = Predictor(model, weights=settings.IDCLASS_BACKBONE_WEIGHTS or None,
                                  threads=settings.IDCLASS_INFERENCE_THREADS, device=device)
        except ClassifierError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"backbone on {predictor.device}", style_func=str)
        files = image_paths(paths)
        if csv:
            csv.parent.mkdir(parents=True, exist_ok=True)
        with open(csv, "w", newline="") if csv else contextlib.nullcontext(self.stdout) as out:
            items = tqdm(predictor.predict_each(files, batch_size), total=len(files), unit="image", file=sys.stderr,
                         disable=options["verbosity"] == 0)
            summary = write_batch_csv(items, out)
        # with the rows on stdout, the summary goes beside the progress bar
        report = self.stdout if csv else self.stderr
        report.write(f"{summary}" + (f"; rows written to {csv}" if csv else ""), style_func=str)

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from classifier.device import DEVICE_CHOICES
from classifier.errors import ClassifierError
from classifier.predictor import Predictor
from classifier.training.evaluate import evaluate_classifier, format_table


class Command(BaseCommand):
    help = ("Evaluate a trained model on a folder of class folders; writes report.json, predictions.csv, plots "
            "and errors.png, a contact sheet of the wrong and low-band answers.")

    def add_arguments(self, parser):
        parser.add_argument("data_dirs", nargs="+", type=Path)
        parser.add_argument("--model", type=Path, default=settings.IDCLASS_MODEL_DIR)
        parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                            help="where the backbone runs (auto: a CUDA GPU when present)")
        parser.add_argument("--report-dir", type=Path, required=True)
        parser.add_argument("--unknown", nargs="+", type=Path, default=[], metavar="DIR",
                            help="folders of images the model must answer \"not a supported document\" "
                                 "(no documents, or types it was not trained on)")

    def handle(self, data_dirs, model, report_dir, device, unknown, **options):
        try:
            predictor = Predictor(model, weights=settings.IDCLASS_BACKBONE_WEIGHTS or None,
                                  threads=settings.IDCLASS_INFERENCE_THREADS, device=device)
            self.stdout.write(f"backbone on {predictor.device}")
            report = evaluate_classifier(predictor, data_dirs, report_dir, unknown_dirs=unknown)
        except ClassifierError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(format_table(report))
        sheet = report["errors_sheet"]
        self.stdout.write(f"report.json, predictions.csv (one row per image), confusion.png, reliability.png and "
                          f"errors.png ({sheet['shown']} wrong or low-band answers shown, {sheet['left_out']} "
                          f"left out) written to {report_dir}")

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from classifier.evaluate import evaluate_classifier, format_table
from classifier.artifact import ModelNotFound
from classifier.backbone import BackboneMismatch, BackboneUnavailable
from classifier.predictor import Predictor


class Command(BaseCommand):
    help = "Evaluate a trained model on a folder of class folders; writes report.json and plots."

    def add_arguments(self, parser):
        parser.add_argument("data_dirs", nargs="+", type=Path)
        parser.add_argument("--model", type=Path, default=settings.IDCLASS_MODEL_DIR)
        parser.add_argument("--report-dir", type=Path, required=True)

    def handle(self, data_dirs, model, report_dir, **options):
        try:
            predictor = Predictor(model, weights=settings.IDCLASS_BACKBONE_WEIGHTS or None)
            report = evaluate_classifier(predictor, data_dirs, report_dir)
        except (ModelNotFound, BackboneUnavailable, BackboneMismatch, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(format_table(report))
        self.stdout.write(f"report, confusion.png and reliability.png written to {report_dir}")

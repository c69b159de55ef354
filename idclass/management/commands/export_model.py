from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from classifier.errors import ClassifierError
from classifier.export import export_model


class Command(BaseCommand):
    help = ("Write a model's networks as the ONNX graphs a server runs (a model trained before idclass "
            "served them); needs torch and the backbone weights it was trained with (IDCLASS_BACKBONE_WEIGHTS).")

    def add_arguments(self, parser):
        parser.add_argument("model_dir", type=Path)

    def handle(self, model_dir, **options):
        try:
            graphs = export_model(model_dir, settings.IDCLASS_BACKBONE_WEIGHTS or None)
        except ClassifierError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{', '.join(sorted(graphs))} graphs written to {model_dir}")

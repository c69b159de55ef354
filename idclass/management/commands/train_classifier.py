from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from classifier import artifact
from classifier.backbone import BackboneUnavailable
from classifier.features import Preprocessing
from classifier.train import TrainConfig, train_classifier


class Command(BaseCommand):
    help = "Train the document-type head on one or more folders of class folders."

    def add_arguments(self, parser):
        parser.add_argument("data_dirs", nargs="+", type=Path)
        parser.add_argument("--backbone", choices=["large", "small"], default=settings.IDCLASS_BACKBONE)
        parser.add_argument("--epochs", type=int, default=300)
        parser.add_argument("--val-fraction", type=float, default=0.2)
        parser.add_argument("--folds", type=int, default=0, help="also run stratified K-fold cross-validation")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--views-per-class", type=int, default=TrainConfig.views_per_class,
                            help="augmented views of each type to train on (more: slower, sees more variation)")
        parser.add_argument("--resize", choices=["squash", "letterbox", "centre_crop"], default=Preprocessing.resize)
        parser.add_argument("--input-size", type=int, default=Preprocessing.size)
        parser.add_argument("--pooling", choices=["gem", "avg"], default=Preprocessing.pooling)
        parser.add_argument("--rotations", type=int, choices=[1, 4], default=Preprocessing.rotations,
                            help="average features over 1 or 4 quarter turns of the image")
        parser.add_argument("--backgrounds", type=Path, help="folder of photos to use as capture backgrounds")
        parser.add_argument("--out", type=Path, help="write the model exactly here (default: a new folder "
                                                     "under models/, which becomes models/current)")

    def handle(self, data_dirs, backbone, epochs, val_fraction, folds, seed, views_per_class, resize, input_size, pooling, rotations,
               backgrounds, out, **options):
        backgrounds = tuple(sorted(p for p in backgrounds.iterdir() if p.is_file())) if backgrounds else ()
        config = TrainConfig(backbone=backbone, weights=settings.IDCLASS_BACKBONE_WEIGHTS or None, seed=seed,
                             val_fraction=val_fraction, folds=folds, epochs=epochs, backgrounds=backgrounds,
                             views_per_class=views_per_class, min_views=min(TrainConfig.min_views, views_per_class),
                             preprocessing=Preprocessing(input_size, resize, pooling, rotations),
                             cache_dir=settings.IDCLASS_FEATURE_CACHE)
        try:
            result = train_classifier(data_dirs, config, log=self.stdout.write)
        except (BackboneUnavailable, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        target = artifact.save(result.model, out or settings.BASE_DIR / "models" / result.model.version)
        if out is None:
            artifact.make_current(target)
        self.stdout.write(f"model {result.model.version} written to {target} in {result.seconds:.1f} s")

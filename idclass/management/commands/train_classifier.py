from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from classifier.backbone import BACKBONES, POOLINGS
from classifier.device import DEVICE_CHOICES
from classifier.errors import ClassifierError
from classifier.images import RESIZE_MODES
from classifier.preprocessing import Preprocessing
from classifier.synth.augment import background_photos
from classifier.training.train import TrainConfig, train_classifier


class Command(BaseCommand):
    help = "Train the document-type head on one or more folders of class folders."

    def add_arguments(self, parser):
        # every default and choice comes from TrainConfig and Preprocessing, the one place that sets them
        parser.add_argument("data_dirs", nargs="+", type=Path)
        parser.add_argument("--backbone", choices=list(BACKBONES), default=settings.IDCLASS_BACKBONE)
        parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
        parser.add_argument("--val-fraction", type=float, default=TrainConfig.val_fraction)
        parser.add_argument("--folds", type=int, default=TrainConfig.folds,
                            help="also run stratified K-fold cross-validation")
        parser.add_argument("--seed", type=int, default=TrainConfig.seed)
        parser.add_argument("--views-per-class", type=int, default=TrainConfig.views_per_class,
                            help="augmented views of each type to train on (more: slower, sees more variation)")
        parser.add_argument("--resize", choices=RESIZE_MODES, default=Preprocessing.resize)
        parser.add_argument("--input-size", type=int, default=Preprocessing.size)
        parser.add_argument("--pooling", choices=POOLINGS, default=Preprocessing.pooling)
        parser.add_argument("--rotations", type=int, choices=[1, 4], default=Preprocessing.rotations,
                            help="average features over 1 or 4 quarter turns of the image")
        parser.add_argument("--detail", type=int, default=Preprocessing.detail,
                            help="the finest detail a view keeps, in pixels across (0: views as they come)")
        parser.add_argument("--turns", type=int, choices=[1, 4], default=Preprocessing.turns,
                            help="answer with the mean over 1 or 4 quarter turns of the view (4: steadier answers, "
                                 "four backbone passes a photo)")
        parser.add_argument("--members", type=int, default=TrainConfig.members,
                            help="MLPs the head trains side by side and averages (more: steadier answers, "
                                 "slower training)")
        parser.add_argument("--backgrounds", type=Path, help="folder of photos to use as capture backgrounds")
        parser.add_argument("--localiser", type=Path, default=TrainConfig.localiser_dir,
                            help="the localiser to train with, copied into the model (default: %(default)s)")
        parser.add_argument("--device", choices=DEVICE_CHOICES, default=TrainConfig.device,
                            help="where the backbone runs (auto: a CUDA GPU when present)")
        parser.add_argument("--out", type=Path, help="write the model exactly here (default: a new folder "
                                                     "under models/, which becomes models/current)")

    def handle(self, data_dirs, backbone, epochs, val_fraction, folds, seed, views_per_class, resize, input_size,
               pooling, rotations, detail, turns, members, backgrounds, localiser, device, out, **options):
        try:
            config = TrainConfig(cache_dir=settings.IDCLASS_FEATURE_CACHE, backbone=backbone,
                                 weights=settings.IDCLASS_BACKBONE_WEIGHTS or None, device=device, seed=seed,
                                 val_fraction=val_fraction, folds=folds, epochs=epochs,
                                 backgrounds=background_photos(backgrounds), views_per_class=views_per_class,
                                 members=members,
                                 min_views=min(TrainConfig.min_views, views_per_class), localiser_dir=localiser,
                                 preprocessing=Preprocessing(input_size, resize, pooling, rotations,
                                                             detail=detail or None, turns=turns))
            result = train_classifier(data_dirs, config, out_dir=out, log=self.stdout.write)
        except ClassifierError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"model {result.model.version} written to {result.model_dir} in {result.seconds:.1f} s")

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from classifier.artifact import LOCALISER_DIR
from classifier.errors import ClassifierError
from classifier.synth.augment import background_photos
from classifier.networks import NETWORKS
from classifier.training.localiser import FINE_TUNE_IMAGES, IMAGES, NETWORK, train_localiser


class Command(BaseCommand):
    help = ("Train the document localiser on simulated captures, from scratch or from a localiser's "
            "weights (--init), and write localiser.safetensors and localiser.json (default: models/localiser/).")

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, help=f"training images, all generated on the fly (default: {IMAGES}, "
                                                       f"or {FINE_TUNE_IMAGES} with --init)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, default=LOCALISER_DIR, help="output folder (default: %(default)s)")
        parser.add_argument("--backgrounds", type=Path, help="folder of photos to use as capture backgrounds")
        parser.add_argument("--init", type=Path, help="a localiser's folder to start from (fine-tuning)")
        parser.add_argument("--network", choices=list(NETWORKS), default=NETWORK,
                            help="a new network's kind (default: %(default)s); --init keeps the localiser's own")
        parser.add_argument("--encoder-weights",
                            help="ImageNet weights for a new network's encoder: a torchvision mobilenet_v3_small "
                                 "state_dict file (default: torchvision's own, downloaded on first use)")

    def handle(self, images, seed, out, backgrounds, init, network, encoder_weights, **options):
        try:
            metrics = train_localiser(images=images, seed=seed, out=out, backgrounds=background_photos(backgrounds),
                                      init=init, network=network, encoder_weights=encoder_weights,
                                      log=self.stdout.write, progress=options["verbosity"] > 0)
        except ClassifierError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"validation mean IoU {metrics['mean_iou']:.3f}, "
                          f"IoU >= 0.8 on {metrics['share_iou_0_8']:.1%}")

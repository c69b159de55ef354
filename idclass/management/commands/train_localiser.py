from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from classifier.localise_train import IMAGES, train_localiser

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class Command(BaseCommand):
    help = ("Train the document localiser from scratch on simulated captures and write "
            "localiser.safetensors and localiser.json (default: models/localiser/).")

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=IMAGES, help="training images, all generated on the fly")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, help="output folder (default: models/localiser)")
        parser.add_argument("--backgrounds", type=Path, help="folder of photos to use as capture backgrounds")

    def handle(self, images, seed, out, backgrounds, **options):
        photos = sorted(p for p in backgrounds.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if backgrounds else []
        if backgrounds and not photos:
            raise CommandError(f"no .jpg or .png photos in {backgrounds}")
        metrics = train_localiser(images=images, seed=seed, out=out, backgrounds=photos, log=self.stdout.write,
                                  progress=options["verbosity"] > 0)
        self.stdout.write(f"validation mean IoU {metrics['mean_iou']:.3f}, "
                          f"IoU >= 0.8 on {metrics['share_iou_0_8']:.1%}")

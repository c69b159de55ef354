from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from classifier.demo import make_demo_dataset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class Command(BaseCommand):
    help = ("Write synthetic identity documents of fictional states to OUT/<type>/ with corner "
            "files and labels.json: simulated photos, or flat renders with --flat.")

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)
        parser.add_argument("--per-class", type=int, default=60)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--flat", action="store_true", help="flat renders instead of simulated photos")
        parser.add_argument("--backgrounds", type=Path, help="folder of photos to use as backgrounds")
        parser.add_argument("--workers", type=int, help="processes (default: all CPUs)")

    def handle(self, out, per_class, seed, flat, backgrounds, workers, **options):
        photos = sorted(p for p in backgrounds.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if backgrounds else []
        if backgrounds and not photos:
            raise CommandError(f"no .jpg or .png photos in {backgrounds}")
        summary = make_demo_dataset(out, per_class, seed, flat=flat, backgrounds=photos, workers=workers,
                                    progress=options["verbosity"] > 0)
        self.stdout.write(f"{summary['images']} images of {summary['classes']} document types written to {out} "
                          f"in {summary['seconds']:.1f} s")

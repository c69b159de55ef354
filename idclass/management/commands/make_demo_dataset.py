from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from classifier.errors import ClassifierError
from classifier.synth.augment import FRAMINGS, background_photos
from classifier.synth.demo import make_demo_dataset


class Command(BaseCommand):
    help = ("Write synthetic identity documents of fictional states to OUT/<type>/ with corner "
            "files and labels.json: simulated photos, or flat renders with --flat.")

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)
        parser.add_argument("--per-class", type=int, default=60)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--flat", action="store_true", help="flat renders instead of simulated photos")
        parser.add_argument("--framing", choices=FRAMINGS, default="any",
                            help="any: photos, some partly out of frame; whole: wholly in frame; partial: partly "
                                 "out; scan: the document filling the frame, as a scan or a tight crop")
        parser.add_argument("--backgrounds", type=Path, help="folder of photos to use as capture backgrounds")
        parser.add_argument("--workers", type=int, help="processes (default: all CPUs)")

    def handle(self, out, per_class, seed, flat, framing, backgrounds, workers, **options):
        try:
            summary = make_demo_dataset(out, per_class, seed, flat=flat, framing=framing, workers=workers,
                                        backgrounds=background_photos(backgrounds),
                                        progress=options["verbosity"] > 0)
        except ClassifierError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{summary['images']} images of {summary['classes']} document types written to {out} "
                          f"in {summary['seconds']:.1f} s")

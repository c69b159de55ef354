import json
from pathlib import Path

from django.core.management.base import BaseCommand

from idclass.models import Prediction


class Command(BaseCommand):
    help = ("Write every confirmed or corrected image into OUT/<type>/<id>.<ext> with labels.json, "
            "to train on beside the original data: train_classifier DATA_DIR OUT.")

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)
        parser.add_argument("--reviewer-names", action="store_true",
                            help="let names reviewers gave replace a known type's name (by default they name "
                                 "only types no model knew)")

    def handle(self, out, reviewer_names, **options):
        reviewed = Prediction.objects.exclude(review_status=Prediction.Review.UNREVIEWED).order_by("created")
        known, given, exported, missing, untyped = {}, {}, 0, 0, 0  # names: the models' own, and reviewers'
        for prediction in reviewed.iterator():
            known.update((alt["document_type"], alt["label"]) for alt in prediction.top_k)
            if prediction.reviewed_name:  # a new type, named by its reviewer
                given[prediction.reviewed_label] = prediction.reviewed_name
            if not prediction.reviewed_type:  # reviewed as no document of a supported type
                untyped += 1
                continue
            if not prediction.image or not prediction.image.storage.exists(prediction.image.name):
                missing += 1
                continue
            # by the prediction's id: identical uploads share one stored file, but each has its own review
            target = out / prediction.reviewed_type / f"{prediction.id}{Path(prediction.image.name).suffix}"
            for stale in out.glob(f"*/{target.name}"):  # a relabelled image from an earlier export
                stale.unlink()
            target.parent.mkdir(parents=True, exist_ok=True)
            with prediction.image.open("rb") as fh:
                target.write_bytes(fh.read())
            exported += 1
        types = sorted(p.name for p in out.iterdir() if p.is_dir()) if out.is_dir() else []
        names = known | given if reviewer_names else given | known
        if types:
            labels = {t: names[t] for t in types if t in names}
            (out / "labels.json").write_text(json.dumps(labels, indent=2, sort_keys=True) + "\n")
        self.stdout.write(f"exported {exported} reviewed images to {out}")
        if missing:
            self.stdout.write(f"skipped {missing} reviewed predictions whose image was not stored or was purged")
        if untyped:
            self.stdout.write(f"skipped {untyped} reviewed as not a supported document (no type to train)")

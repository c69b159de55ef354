from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from idclass.models import Prediction, delete_unused_image
from idclass.storage import DocumentStorage
from idclass.rate_limit import forget_expired

# A file without a record younger than this may be an upload whose record is being written.
ORPHAN_MINUTES = 10


class Command(BaseCommand):
    help = ("Delete the images of predictions older than the retention period (and with --delete-records, the "
            "records), and image files no record names (left by interrupted uploads).")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, metavar="DAYS", default=settings.IDCLASS_RETENTION_DAYS,
                            help="retention in days (default: IDCLASS_RETENTION_DAYS, %(default)s)")
        parser.add_argument("--delete-records", action="store_true", help="delete the records too, not only images")
        parser.add_argument("--orphan-age", type=float, metavar="MINUTES", default=ORPHAN_MINUTES,
                            help="delete image files no record names once they are this old (default %(default)s; "
                                 "younger ones may be uploads in flight; 0 only while no server runs)")

    def handle(self, older_than, delete_records, orphan_age, **options):
        expired = Prediction.objects.filter(created__lt=timezone.now() - timedelta(days=older_than))
        if delete_records:
            count, _ = expired.delete()  # the post_delete signal deletes each image
            self.stdout.write(f"deleted {count} predictions older than {older_than} days, with their images")
        else:
            names = set(expired.exclude(image="").values_list("image", flat=True))
            count = expired.exclude(image="").update(image="")
            for name in names:  # identical uploads share a file, which a newer record may still name
                delete_unused_image(name)
            self.stdout.write(f"deleted the images of {count} predictions older than {older_than} days")
        in_use = set(Prediction.objects.exclude(image="").values_list("image", flat=True))
        orphans = DocumentStorage().orphans(in_use, timedelta(minutes=orphan_age))
        for path in orphans:
            path.unlink(missing_ok=True)
        self.stdout.write(f"deleted {len(orphans)} image files that no prediction names, "
                          f"{forget_expired()} expired upload counts")

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from idclass.models import Prediction


class Command(BaseCommand):
    help = "Delete the images of predictions older than the retention period (and with --delete-records, the records)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, metavar="DAYS", default=settings.IDCLASS_RETENTION_DAYS,
                            help="retention in days (default: IDCLASS_RETENTION_DAYS, %(default)s)")
        parser.add_argument("--delete-records", action="store_true", help="delete the records too, not only images")

    def handle(self, older_than, delete_records, **options):
        expired = Prediction.objects.filter(created__lt=timezone.now() - timedelta(days=older_than))
        if delete_records:
            count, _ = expired.delete()  # the post_delete signal deletes each image
            self.stdout.write(f"deleted {count} predictions older than {older_than} days, with their images")
            return
        with_image = expired.exclude(image="")
        for prediction in with_image:
            prediction.image.delete(save=False)
        count = with_image.update(image="")
        self.stdout.write(f"deleted the images of {count} predictions older than {older_than} days")

"""The upload rate limit: fixed windows per client, counted in the database so that every
server process (and machine, on PostgreSQL) counts together. Its cache-based libraries need
memcached or Redis, which the embedded default does not have."""
import math
import time
from datetime import datetime, timezone

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest

from idclass.clients import client_key
from idclass.models import UploadCount


def seconds_until_allowed(request: HttpRequest) -> int | None:
    """Count this upload in each window of IDCLASS_UPLOAD_RATES; the seconds until the client
    is under every limit again, or None when this upload is within them."""
    client, now, waits = client_key(request), time.time(), []
    with transaction.atomic():  # one commit for every window: each costs the upload a disk flush
        for limit, period in settings.IDCLASS_UPLOAD_RATES:
            window = int(now // period)
            ends = (window + 1) * period
            if count(f"{client}:{period}:{window}", datetime.fromtimestamp(ends, timezone.utc)) > limit:
                waits.append(math.ceil(ends - now))
    return max(waits, default=None)


def count(key: str, expires: datetime) -> int:
    """Add one to the counter `key` (made on first use) and return its new value; inside a transaction."""
    if not UploadCount.objects.filter(key=key).update(count=F("count") + 1):
        try:
            with transaction.atomic():
                UploadCount.objects.create(key=key, count=1, expires=expires)
                return 1
        except IntegrityError:  # another process made it first
            UploadCount.objects.filter(key=key).update(count=F("count") + 1)
    return UploadCount.objects.values_list("count", flat=True).get(key=key)


def forget_expired() -> int:
    """Delete the counters of windows that have ended; returns how many."""
    deleted, _ = UploadCount.objects.filter(expires__lt=datetime.now(timezone.utc)).delete()
    return deleted

"""The upload rate limit: fixed windows per client, counted in the database so that every
server process (and machine, on PostgreSQL) counts together. Its cache-based libraries need
memcached or Redis, which the embedded default does not have.

What is counted is what costs the server work: accepted uploads against IDCLASS_UPLOAD_RATES, and
uploads refused for what the client sent (not an image, damaged, too many pixels) against
IDCLASS_REFUSED_UPLOAD_RATES, a separate and higher ceiling. An answer 429 costs nothing and counts
nowhere, so a client that retries without waiting does not burn its day."""
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest

from idclass.clients import client_key
from idclass.models import UploadCount


@dataclass
class Reservation:
    """An upload counted as accepted before its body is read; ``refused`` takes it back."""

    client: str
    now: float
    keys: list[str] = field(default_factory=list)  # the windows it was counted in

    def refused(self, by_client: bool) -> None:
        """The upload was refused after all: out of the accepted windows, and, where what the client
        sent was at fault (not the server), into the refused ones. Best effort: a database that fails
        now costs the client one upload of its quota, never an answer."""
        try:
            with transaction.atomic():
                UploadCount.objects.filter(key__in=self.keys).update(count=F("count") - 1)
                if by_client:
                    for _, period in settings.IDCLASS_REFUSED_UPLOAD_RATES:
                        key, ends = window(self.client, "refused", period, self.now)
                        count(key, ends)
        except DatabaseError:
            pass


def reserve(request: HttpRequest) -> tuple[Reservation, int | None]:
    """Count this upload in each window of IDCLASS_UPLOAD_RATES, unless a window is full or the client's
    refused uploads reached IDCLASS_REFUSED_UPLOAD_RATES; then the seconds until it may try again
    (and nothing counted), else None."""
    reservation = Reservation(client_key(request), time.time())
    waits = []
    with transaction.atomic():  # one commit for every window: each costs the upload a disk flush
        for limit, period in settings.IDCLASS_REFUSED_UPLOAD_RATES:
            key, ends = window(reservation.client, "refused", period, reservation.now)
            if UploadCount.objects.filter(key=key, count__gte=limit).exists():
                waits.append(ends)
        for limit, period in settings.IDCLASS_UPLOAD_RATES if not waits else ():
            key, ends = window(reservation.client, "accepted", period, reservation.now)
            reservation.keys.append(key)
            if count(key, ends) > limit:
                waits.append(ends)
        if waits:
            UploadCount.objects.filter(key__in=reservation.keys).update(count=F("count") - 1)
            reservation.keys = []
    wait = max((math.ceil(ends.timestamp() - reservation.now) for ends in waits), default=None)
    return reservation, wait


def window(client: str, kind: str, period: int, now: float) -> tuple[str, datetime]:
    """The counter's key of the window of `period` seconds that `now` falls in, and when that window ends."""
    number = int(now // period)
    return f"{client}:{kind}:{period}:{number}", datetime.fromtimestamp((number + 1) * period, timezone.utc)


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

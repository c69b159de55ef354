"""Where uploaded identity documents are kept: private files with no URL, written whole or not at all."""
from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage


class StorageUnavailable(Exception):
    """Images cannot be written now: the volume is (nearly) full when `full`, else unwritable."""

    def __init__(self, full: bool):
        super().__init__("no room for images" if full else "images cannot be written")
        self.full = full


class DocumentStorage(FileSystemStorage):
    """Uploaded identity documents: readable by the server's user only, and without
    any URL, so only the session-guarded and staff-only views can stream them.

    An image is written whole or not at all (`save_document`), and it is there before the
    record that names it, so a process killed mid-upload leaves at most a file without a
    record, which `orphans` finds and purge_predictions deletes."""

    PARTIAL_DIR = ".partial"  # images being written, under names no record uses
    RENDITIONS_DIR = ".renditions"  # smaller JPEGs made from a stored image, kept and deleted with it

    def __init__(self):
        super().__init__(file_permissions_mode=0o600, directory_permissions_mode=0o700)

    def save_document(self, name: str, data: bytes) -> None:
        """Write `data` as `name`: to a private temporary file first, then renamed into place."""
        temporary = self.write_partial(data)
        try:
            self.place(temporary, name)
        finally:
            temporary.unlink(missing_ok=True)

    def write_partial(self, data: bytes) -> Path:
        """`data` in a new private temporary file, on disk when this returns; `place` names it."""
        with storage_errors():
            temporary, fd = self._partial_file()
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        return temporary

    def place(self, temporary: Path, name: str) -> None:
        """Rename a file from `write_partial` to `name`, replacing any file of that name."""
        with storage_errors():
            os.replace(temporary, self.path(name))

    def rendition(self, name: str, size: int, make: Callable[[], bytes]) -> bytes:
        """A smaller copy of the stored image ``name`` (a preview at most ``size`` pixels across), made by
        ``make`` the first time and read from disk after that: viewing an image again costs no decode.
        Where it cannot be kept (a full volume) it is made again next time."""
        path = self._rendition_path(name, size)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        data = make()
        try:
            temporary = self.write_partial(data)
            path.parent.mkdir(mode=0o700, exist_ok=True)
            os.replace(temporary, path)
        except (StorageUnavailable, OSError):
            pass
        return data

    def delete(self, name: str) -> None:
        """The image and every rendition made of it."""
        super().delete(name)
        for path in Path(self.path(self.RENDITIONS_DIR)).glob(f"{Path(name).stem}-*.jpg"):
            path.unlink(missing_ok=True)

    def _rendition_path(self, name: str, size: int) -> Path:
        return Path(self.path(self.RENDITIONS_DIR)) / f"{Path(name).stem}-{size}.jpg"

    def check_writable(self) -> None:
        """Raises StorageUnavailable when an image could not be written now."""
        with storage_errors():
            temporary, fd = self._partial_file()
            os.close(fd)
            temporary.unlink()

    def check_room(self, incoming: int) -> None:
        """Raises StorageUnavailable when `incoming` bytes would leave less than IDCLASS_MIN_FREE_BYTES free."""
        folder = Path(self.location)
        while not folder.exists() and folder != folder.parent:  # made by the first upload, on its parent's volume
            folder = folder.parent
        with storage_errors():
            free = shutil.disk_usage(folder).free
        if free - incoming < settings.IDCLASS_MIN_FREE_BYTES:
            raise StorageUnavailable(full=True)

    def _partial_file(self) -> tuple[Path, int]:
        """A new file only the server's user can read, and its descriptor, open for writing."""
        partial = Path(self.path(self.PARTIAL_DIR))
        partial.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private from the first upload on
        partial.mkdir(mode=0o700, exist_ok=True)
        temporary = partial / f"{uuid.uuid4().hex}.part"
        return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def orphans(self, in_use: set[str], older_than: timedelta) -> list[Path]:
        """Files no record names (`in_use`), left longer than `older_than` (uploads in flight are younger)."""
        root = Path(self.location)
        if not root.is_dir():
            return []
        cutoff = time.time() - older_than.total_seconds()
        files = [*root.iterdir(), *(root / self.PARTIAL_DIR).glob("*")]
        orphans = [f for f in files if f.is_file() and f.name not in in_use and f.stat().st_mtime < cutoff]
        stems = {Path(name).stem for name in in_use}
        return orphans + [f for f in (root / self.RENDITIONS_DIR).glob("*.jpg")
                          if f.stem.rsplit("-", 1)[0] not in stems and f.stat().st_mtime < cutoff]

    @property
    def base_location(self):
        # Read on use, so a changed IDCLASS_MEDIA_ROOT (tests, a moved volume) takes effect.
        return settings.IDCLASS_MEDIA_ROOT

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise NotImplementedError("Stored documents have no public URL.")


@contextmanager
def storage_errors():
    """The file system's errors as the one kind callers handle."""
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(full=exc.errno in (errno.ENOSPC, errno.EDQUOT)) from exc


def keep_private() -> None:
    """What idclass keeps on this machine is for the server's user only: the media folder (made 0700 by
    the first upload; one that exists is tightened) and an SQLite database (made 0600, its folder 0700).
    Where that cannot be done, idclass does not start, and says what to run."""
    media = Path(settings.IDCLASS_MEDIA_ROOT)
    if media.exists():
        tighten(media, 0o700, "IDCLASS_MEDIA_ROOT")
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3" or str(database["NAME"]).startswith((":memory:", "file:")):
        return
    path = Path(database["NAME"])
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # an empty file is an empty database
    except FileExistsError:
        tighten(path, 0o600, "The SQLite database")  # its -wal and -shm files take its permissions


def tighten(path: Path, mode: int, what: str) -> None:
    """Take away what other users may do with ``path``, or refuse to start."""
    current = path.stat().st_mode & 0o777
    if current & 0o077 == 0:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise ImproperlyConfigured(f"{what} ({path}) is open to other users of this machine (mode {current:o}) "
                                   f"and idclass cannot change that ({exc.strerror}): run chmod {mode:o} {path} "
                                   "as its owner.") from exc

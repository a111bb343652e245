"""The embedded broker: kombu's filesystem transport, made safe for several writers and readers.

kombu 5.7's `_put` opens the message file under its final name and then writes it, so a reader
listing the folder can open a file its writer has not filled yet and die on `JSONDecodeError`
(celery/kombu#1551: it killed the `make run` worker within ~54 checks). Its `_get` moves a claimed
file to the system temp folder, which is a copy and a delete when that is another filesystem, so two
readers could both take the same message.

Here a message is written and fsynced under a staging name, then renamed into the queue folder (a
rename within one filesystem is atomic: a reader sees the whole message or nothing), and a reader
claims a message by renaming it into its own claimed folder (only one rename can win). A file that
still cannot be decoded (written by an older version, a full disk) is set aside in `rejected/` and
logged, never raised into the worker's consumer loop."""

import logging
import os
import time
import uuid
from pathlib import Path
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _folder(self, name: str) -> Path:
        # Siblings of the queue folder, so every rename stays within one filesystem.
        folder = Path(self.data_folder_in).parent / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _put(self, queue, payload, **kwargs):
        """Write under a staging name, fsync, then rename into the queue folder in one step."""
        # Sorted listing is the delivery order: a nanosecond clock keeps FIFO between writers.
        name = f"{time.time_ns()}_{uuid.uuid4()}.{queue}.msg"
        staging = self._folder("staging") / name
        try:
            with open(staging, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
                file.flush()
                os.fsync(file.fileno())
            os.rename(staging, Path(self.data_folder_out) / name)
        except OSError as exc:
            staging.unlink(missing_ok=True)
            raise ChannelError(f"Cannot add message to the queue folder: {type(exc).__name__}") from exc

    def _get(self, queue):
        """Claim the oldest whole message of `queue` by renaming it; read it; remove it."""
        suffix = f".{queue}.msg"
        claimed_folder = self._folder("claimed")
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != suffix[1:]:
                continue
            claimed = claimed_folder / name
            try:
                os.rename(Path(self.data_folder_in) / name, claimed)
            except FileNotFoundError:
                continue  # another reader took it first
            try:
                payload = claimed.read_bytes()
                message = loads(bytes_to_str(payload))
            except (OSError, ValueError) as exc:
                self._reject(claimed, exc)
                continue
            claimed.unlink(missing_ok=True)
            return message
        raise Empty()

    def _reject(self, path: Path, exc: Exception) -> None:
        logger.error("broker: set aside an unreadable message %s (%s)", path.name, type(exc).__name__)
        try:
            os.rename(path, self._folder("rejected") / path.name)
        except OSError:
            path.unlink(missing_ok=True)


class Transport(filesystem.Transport):
    Channel = Channel
    driver_name = "filesystem (atomic)"

"""The batch input files uploaded to this sidecar, in bounded memory.

A client picks how many files it uploads; the sidecar keeps the newest, at most :data:`MAX_FILES`
of them and :data:`MAX_FILE_BYTES` of routed lines in all, evicting the oldest first and counting
each eviction (``modelroute_batch_evictions_total{store="files"}``). A batch keeps no reference to
its input file once its provider batches are created, so an evicted file only means its id can no
longer start a batch or be read back (404, as for any unknown file).
"""

from __future__ import annotations

from collections.abc import Callable

from modelroute.batch.routing import InputFile

MAX_FILES = 1000
MAX_FILE_BYTES = 256 * 1024 * 1024


class Files:
    def __init__(self, max_files: int = MAX_FILES, max_bytes: int = MAX_FILE_BYTES,
                 evicted: Callable[[], None] = lambda: None) -> None:
        self.items: dict[str, InputFile] = {}
        self.max_files, self.max_bytes = max_files, max_bytes
        self.evicted = evicted
        self.nbytes = 0

    def add(self, file: InputFile) -> None:
        self.items[file.id] = file
        self.nbytes += file.nbytes
        while len(self.items) > 1 and (len(self.items) > self.max_files or self.nbytes > self.max_bytes):
            oldest = self.items.pop(next(iter(self.items)))
            self.nbytes -= oldest.nbytes
            self.evicted()

    def get(self, ident: str) -> InputFile | None:
        return self.items.get(ident)

    def __contains__(self, ident: str) -> bool:
        return ident in self.items

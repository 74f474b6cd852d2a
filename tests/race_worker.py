"""One racing writer for tests/test_race.py: the file stages of one partition, run as a real process.

``python -m tests.race_worker SOURCE WORKDIR YEAR OUT [--lose]``. With ``--lose`` the writer is the
one whose lease expired: it starts every stage as if the other had not committed it yet (it never
takes a hit), does all its work, but holds each commit (every shard marker and done file) until
the other writer's commit of the same name is there, so its create-only commit fails and it must
adopt the winner's checkpoint. It writes what it ended with to OUT as JSON.
"""

from __future__ import annotations

import json
import sys
import time

from kademe.chunk import chunk_texts
from kademe.clean import clean_records
from kademe.embed.stage import embed_chunks
from kademe.settings import Settings
from kademe.sources import read_year
from kademe.lexical.stage import sparse_chunks
from tests.conftest import MODEL


def hold_commits() -> list[str]:
    """Make every create-only commit of this process wait for another writer's object of that name.

    Returns the list that collects the names whose commit this writer lost.
    """
    from kademe import storage

    lost: list[str] = []
    for cls in (storage.LocalStorage, storage.ObjectStorage):
        def put(self, name, data, create=False, _original=cls.put):
            if not create or "/manifest/" in name:
                return _original(self, name, data, create)
            deadline = time.monotonic() + 120
            while self.get(name) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            ok = _original(self, name, data, create=True)
            if not ok:
                lost.append(name)
            return ok

        cls.put = put
    from kademe.checkpoint import Checkpoint

    Checkpoint.hit = lambda self: None  # every stage was begun before the other writer committed it
    return lost


def main(argv: list[str]) -> None:
    source, workdir, year, out = argv[:4]
    lost = hold_commits() if "--lose" in argv else []
    s = Settings(source=source, workdir=workdir, collection="race", model=MODEL, device="cpu", shard_size=2,
                 chunk_tokens=64, chunk_overlap=8)
    y = int(year)
    read = read_year(y, s)
    clean = clean_records(read, y, s)
    chunks = chunk_texts(clean, y, s)
    sparse = sparse_chunks(chunks, y, s)
    embedded = embed_chunks(chunks, y, s)
    with open(out, "w") as f:
        json.dump({"keys": {"read": read.key, "clean": clean.key, "chunk": chunks.key, "lexical": sparse.key, "embed": embedded.key},
                   "cached": [n for n, r in (("read", read), ("clean", clean), ("chunk", chunks), ("lexical", sparse),
                                             ("embed", embedded)) if r.cached],
                   "chunks": chunks.count, "lost": lost}, f)


if __name__ == "__main__":
    main(sys.argv[1:])

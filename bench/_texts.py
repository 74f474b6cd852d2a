"""What the store benches share: the real decisions' texts as payloads, the vector width and name."""

from __future__ import annotations

import json
import re
from pathlib import Path

CORPUS = Path("/work/shared/corpus/real-decisions.ndjson")
DIM, SPACE = 1024, "bge-m3"


def texts() -> list[str]:
    """~800-character slices of real decisions (tags stripped), the payload's ``text``."""
    out = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        t = " ".join(re.sub(r"<[^>]+>|&quot;", " ", json.loads(line)["text"]).split())
        out += [t[i:i + 800] for i in range(0, len(t) - 800, 800)]
    return out or ["ç" * 800]

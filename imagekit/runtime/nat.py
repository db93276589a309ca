"""NAT for the bridge network, as Docker sets it up: masquerading out of the subnet and DNAT for published ports.

Two backends with one contract (`Nat`): nftables (table `ip imagekit`, chains prerouting, output, postrouting and
`ports`) where `nft` exists, else iptables (chain IMAGEKIT of the nat table, jumped to from PREROUTING and
OUTPUT, as Docker's DOCKER chain, and Docker's ACCEPT rules in FORWARD for hosts whose policy there is DROP; an
nftables accept cannot overrule another table's drop, so on such a host pick iptables with IMAGEKIT_NAT=iptables). Every per-container rule carries the container id as its comment, which is
how delete() and owners() find them after a crash without any state of ours. Connections to 127.0.0.1 never
reach DNAT (they stay on the host's loopback); the userland proxy of imagekit.runtime.ports serves those.

Every tool runs in the network namespace `netns` ("" is this process's), started by a thread that joined it
(imagekit.runtime.netns.within, no `nsenter`): tests pass one they made. `command` is also how
imagekit.runtime.network runs iproute2. nftables' table is looked for through netlink (no program), so ensure()
runs `nft` only to make it and delete() only when the table exists (one listing, one script).

Imports: stdlib, imagekit.errors, imagekit.runtime.{netlink,netns}.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Protocol

from imagekit.errors import NetworkError
from imagekit.runtime import netlink
from imagekit.runtime.netns import within
from imagekit.values import value

TABLE = "imagekit"
CHAIN = "IMAGEKIT"
BACKEND_ENV = "IMAGEKIT_NAT"
BACKENDS = ("nft", "iptables")


@value
class Dnat:
    """One published port: `proto` traffic for host_ip:host_port ("0.0.0.0": every local address) goes to
    address:container_port, unless it comes from the bridge itself."""

    proto: str
    host_ip: str
    host_port: int
    address: str
    container_port: int


class Nat(Protocol):
    def ensure(self) -> None:
        """Creates the base chains and the masquerading rule once; idempotent."""

    def add(self, container_id: str, rules: list[Dnat]) -> None:
        """Adds the container's DNAT rules, all or none."""

    def delete(self, container_id: str) -> None:
        """Deletes every rule commented with the container's id; none is fine."""

    def owners(self) -> set[str]:
        """The container ids that rules are commented with."""


def check_id(container_id: str) -> str:
    """A container id fit for a rule comment (the runner's ids are hex): no quotes, spaces or newlines to escape."""
    if not re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", container_id):
        raise NetworkError(f"container id {container_id!r} cannot name NAT rules: use letters, digits, '_', '.', '-'")
    return container_id


def backend(kind: str, netns: str, bridge: str, subnet: str) -> Nat:
    """The NAT of the bridge `bridge` (subnet `subnet`) in `netns`; `kind` "" picks $IMAGEKIT_NAT, else nft when
    installed, else iptables."""
    kind = kind or os.environ.get(BACKEND_ENV, "") or ("nft" if shutil.which("nft") else "iptables" if shutil.which("iptables") else "")
    if kind == "nft":
        return Nftables(netns, bridge, subnet)
    if kind == "iptables":
        return Iptables(netns, bridge, subnet)
    if not kind:
        raise NetworkError("neither nft nor iptables is installed: bridge networking needs one of them (apt-get install nftables)")
    raise NetworkError(f"unknown NAT backend {kind!r} (from ${BACKEND_ENV}): use one of {', '.join(BACKENDS)}")


def command(netns: str, argv: list[str], stdin: str = "", what: str = "") -> str:
    """Runs a network tool in `netns` and returns its output; a failure is one line naming the tool (or `what`)
    and its complaint (nft's `Error:` line, else the last one)."""
    import subprocess  # here: a run on a bridge already made runs no tool (imagekit.runtime.network)

    try:
        done = within(netns, lambda: subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False))
    except FileNotFoundError as err:
        raise NetworkError(f"{argv[0]} is not installed: bridge networking needs iproute2 and nftables or iptables") from err
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        complaint = next((line for line in lines if line.startswith("Error: ")), lines[-1])  # nft ends with the carets under it
        raise NetworkError(f"{what or argv[0]}: {complaint}")
    return done.stdout


@value
class Nftables:
    netns: str
    bridge: str
    subnet: str

    def ensure(self) -> None:
        """Nothing to do while the table exists; else one transaction that is right whatever another runner made
        meanwhile: `add` keeps a table and chains (the ports chain keeps its rules), and each base chain, whose
        one rule is ours, is flushed and filled again."""
        if netlink.nft_table_exists(self.netns, TABLE):
            return
        script = f"add table ip {TABLE}\nadd chain ip {TABLE} ports\n"
        for chain, hook, rule in (
            ("prerouting", "prerouting priority dstnat", "fib daddr type local jump ports"),
            ("output", "output priority -100", "ip daddr != 127.0.0.0/8 fib daddr type local jump ports"),
            ("postrouting", "postrouting priority srcnat", f'ip saddr {self.subnet} oifname != "{self.bridge}" masquerade'),
        ):
            script += (f"add chain ip {TABLE} {chain} {{ type nat hook {hook}; policy accept; }}\n"
                       f"flush chain ip {TABLE} {chain}\nadd rule ip {TABLE} {chain} {rule}\n")
        self._nft(script)

    def add(self, container_id: str, rules: list[Dnat]) -> None:
        script = ""
        for rule in rules:
            daddr = "" if rule.host_ip == "0.0.0.0" else f"ip daddr {rule.host_ip} "
            script += (
                f'add rule ip {TABLE} ports {daddr}iifname != "{self.bridge}" {rule.proto} dport {rule.host_port} '
                f'dnat to {rule.address}:{rule.container_port} comment "{container_id}"\n'
            )
        if script:
            self._nft(script)  # one transaction: all or none

    def delete(self, container_id: str) -> None:
        doomed = [rule for rule in self._rules() if rule.get("comment") == container_id]
        if doomed:
            self._nft("".join(f"delete rule ip {TABLE} {rule['chain']} handle {rule['handle']}\n" for rule in doomed))

    def owners(self) -> set[str]:
        return {rule["comment"] for rule in self._rules() if rule.get("comment")}

    def _rules(self) -> list[dict]:
        """The rules of the imagekit table (nft's JSON, with handles); none while there is no table."""
        if not netlink.nft_table_exists(self.netns, TABLE):
            return []
        listing = command(self.netns, ["nft", "-j", "-a", "list", "table", "ip", TABLE])
        return [item["rule"] for item in json.loads(listing).get("nftables", []) if "rule" in item]

    def _nft(self, script: str) -> None:
        command(self.netns, ["nft", "-f", "-"], script)


@value
class Iptables:
    netns: str
    bridge: str
    subnet: str

    def ensure(self) -> None:
        """One iptables-save shows what is there, one iptables-restore adds what is missing: a rule is there when
        iptables-save prints it as written here (its canonical form). Rules go at the end of a nat chain, and
        first in FORWARD (before any DROP)."""
        saved = self._saved()
        nat, filters = saved.get("nat", []), saved.get("filter", [])
        wanted = [f":{CHAIN}", f"-A PREROUTING -m addrtype --dst-type LOCAL -j {CHAIN}",
                  f"-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {CHAIN}",
                  f"-A POSTROUTING -s {self.subnet} ! -o {self.bridge} -j MASQUERADE"]
        forward = [f"-A FORWARD -i {self.bridge} -j ACCEPT",  # Docker's: a host where Docker runs has FORWARD's policy at DROP
                   f"-A FORWARD -o {self.bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT"]
        self._restore({"nat": [line + " - [0:0]" if line == f":{CHAIN}" else line for line in wanted if line not in nat],
                       "filter": ["-I" + line.removeprefix("-A") for line in forward if line not in filters]})

    def add(self, container_id: str, rules: list[Dnat]) -> None:
        lines = []
        for rule in rules:
            daddr = [] if rule.host_ip == "0.0.0.0" else ["-d", f"{rule.host_ip}/32"]
            words = [*daddr, "!", "-i", self.bridge, "-p", rule.proto, "-m", rule.proto, "--dport", str(rule.host_port)]
            words += ["-m", "comment", "--comment", container_id, "-j", "DNAT", "--to-destination", f"{rule.address}:{rule.container_port}"]
            lines.append(" ".join(["-A", CHAIN, *words]))  # iptables-restore would keep shlex's quotes
        self._restore({"nat": lines})

    def delete(self, container_id: str) -> None:
        self._restore({"nat": ["-D" + line.removeprefix("-A") for line in self._lines() if self._owner(line) == container_id]})

    def owners(self) -> set[str]:
        return {owner for owner in map(self._owner, self._lines()) if owner}

    def _lines(self) -> list[str]:
        """The rules of the IMAGEKIT chain as iptables-save prints them (`-A IMAGEKIT ...`)."""
        return [line for line in self._saved("nat").get("nat", []) if line.startswith(f"-A {CHAIN} ")]

    def _saved(self, table: str = "") -> dict[str, list[str]]:
        """What iptables-save prints of `table` ("" every table): each table's chain lines (only `:NAME`) and rules."""
        saved: dict[str, list[str]] = {}
        lines: list[str] = []
        for line in command(self.netns, ["iptables-save", *(["-t", table] if table else [])]).splitlines():
            if line.startswith("*"):
                lines = saved.setdefault(line[1:], [])
            elif line.startswith(":"):
                lines.append(line.split()[0])
            elif line.startswith("-"):
                lines.append(line)
        return saved

    @staticmethod
    def _owner(line: str) -> str:
        found = re.search(r'--comment ("[^"]*"|\S+)', line)
        return found.group(1).strip('"') if found else ""

    def _restore(self, tables: dict[str, list[str]]) -> None:
        """Applies each table's lines (chains to make, rules to add or delete) in one transaction per table, keeping
        every other rule; no program when there are none."""
        script = "".join(f"*{table}\n" + "\n".join(lines) + "\nCOMMIT\n" for table, lines in tables.items() if lines)
        if script:
            command(self.netns, ["iptables-restore", "-w", "--noflush"], script)

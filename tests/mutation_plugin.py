"""The pytest plugin of `make mutation` (not a test, not loaded by the suite): `-p tests.mutation_plugin` in
[tool.mutmut]'s pytest_add_cli_args, so it runs in mutmut's pytest sessions only. It owns two things.

- A test selection per module. mutmut maps each mutated function to every selected test that reaches it,
  however deep, and a surviving mutant runs them all: `layout.write_blob` and every `registry/transport`
  function were mapped to the registry suites (a real registry per flavour, fault proxies, servers that
  sleep), 10 to 40 s a survivor. While mutmut collects the map (MUTANT_UNDER_TEST=stats), a function of
  module M keeps only the tests of SELECTION[M]: the files that hold M's rules. A module without an
  entry keeps every selected test. The slowest of those tests count only for the functions whose rule
  they hold (NARROW): everywhere else faster tests run the same paths.
- Each mutant's pytest process in a process group of its own, so a mutant that signals its group (a fork
  mutated into the caller's part, `os.kill(0, SIGKILL)`) ends that mutant, not mutmut and `make`; and with
  default SIGCHLD and SIGINT handling, not what mutmut's worker process had.
- What killed each mutant: its failing test (each failing phase) and the error's last line go to `mutants/mutmut-kills.tsv`
  (mutmut keeps only the exit status), so a kill can be checked for what it says: a mutant that only fails
  beside another one, or for a reason of the machine's, is no kill.
- Each mutant's heap frozen as it starts (gc.freeze): the process is a fork of mutmut's server, which collected
  every selected test, and each collection pytest makes at the session's end walked all of that again: 0.17 s
  of a bare 0.27 s session. In full runs the gain stayed within the machine's noise (tests/MUTANTS.md).

Imports: pytest, mutmut, tests.mutation_report; nothing of imagekit.
"""

from __future__ import annotations

import gc
import os
import signal

import pytest
from mutmut.mutation.trampoline import get_mutant_under_test
from mutmut.state import state

from tests.mutation_report import module_of

_UNPACK = ("tests/layers/unpack/test_apply.py", "tests/layers/unpack/test_hostile.py", "tests/layers/unpack/test_unpack.py",
           "tests/layers/unpack/test_rootfs.py", "tests/layers/unpack/test_tarread.py")

#: Module (or package) -> the test files that hold its rules; the longest matching name wins.
SELECTION: dict[str, tuple[str, ...]] = {
    "imagekit.digest": ("tests/test_digest.py", "tests/store/test_store.py", "tests/registry/test_client.py"),
    "imagekit.fsutil": ("tests/test_fsutil.py", "tests/store/test_store.py"),
    "imagekit.layout": ("tests/store/test_store.py", "tests/test_fsutil.py"),
    "imagekit.layers": _UNPACK,
    "imagekit.registry.transport": ("tests/registry/test_transport_auth.py", "tests/registry/test_transport_failures.py", "tests/registry/test_redirects.py",
                                    "tests/registry/test_dockerhub_replay.py", "tests/registry/test_tls.py"),
    "imagekit.registry.client": ("tests/registry/test_client.py", "tests/registry/test_upload_cancel.py",
                                 "tests/registry/test_tls.py", "tests/registry/test_dockerhub_replay.py"),
    "imagekit.sandbox": ("tests/sandbox/",),
}


_TRANSPORT = "imagekit.registry.transport.xǁTransportǁ"
_TRANSPORT_MODULE = "imagekit.registry.transport.x_"
_CLIENT = "imagekit.registry.client.xǁRepositoryǁ"
_FAILURES = "tests/registry/test_transport_failures.py::"
_CONSOLE = "tests/sandbox/test_console.py::"
_CONSOLE_MODULE = "imagekit.sandbox.console.x_"

#: Where each mutant's failures are recorded, in mutmut's working directory (mutants/).
KILLS = "mutmut-kills.tsv"

#: Test -> the only functions it counts for. The rule each holds, and what it costs every other survivor:
NARROW: dict[str, tuple[str, ...]] = {
    # a token is fetched again once its expires_in ran out (sleeps 0.5 s)
    "tests/registry/test_transport_auth.py::test_expired_token_is_refreshed": (f"{_TRANSPORT}_token", f"{_TRANSPORT}_authorization"),
    # threads sharing a transport make one ping and fetch one token (twelve downloads, 0.25 s)
    "tests/registry/test_transport_auth.py::test_one_transport_shared_by_threads_fetches_one_token": (
        f"{_TRANSPORT}_token", f"{_TRANSPORT}_authorization", f"{_TRANSPORT}ping"),
    # redirects keep or drop the method and body, ten are followed and eleven refused (a server of its own, 0.3 s)
    "tests/registry/test_redirects.py::test_redirects_turn_a_post_or_put_into_a_get_without_body_or_query_and_stop_after_ten": (
        f"{_TRANSPORT}_send", f"{_TRANSPORT}_request_once", f"{_TRANSPORT}request"),
    # test_transport_failures.py, written for the transport's gaps (1.3 s together; every survivor of every function
    # they reach ran them all, about 1 s more each): each counts for the functions whose rules it was written for.
    f"{_FAILURES}test_a_token_server_answering_5xx_or_429_is_asked_again_and_one_that_keeps_failing_is_a_temporary_error": (
        f"{_TRANSPORT}_token", f"{_TRANSPORT}_error", f"{_TRANSPORT_MODULE}error_from_response"),
    f"{_FAILURES}test_a_token_realm_that_is_not_http_is_refused": (f"{_TRANSPORT}_token",),
    # two read timeouts, 0.4 s
    f"{_FAILURES}test_a_registry_that_never_answers_times_out_as_a_temporary_error": (
        f"{_TRANSPORT}__init__", f"{_TRANSPORT}_send_raw", f"{_TRANSPORT_MODULE}_describe"),
    f"{_FAILURES}test_netrc_credentials_reach_neither_the_token_server_nor_the_registry": (f"{_TRANSPORT}_token", f"{_TRANSPORT}_send_raw"),
    f"{_FAILURES}test_a_body_cut_off_or_a_server_error_is_retried": (f"{_TRANSPORT_MODULE}_read_capped", f"{_TRANSPORT_MODULE}error_from_response"),
    # 32 MiB served
    f"{_FAILURES}test_a_body_of_exactly_the_cap_is_read_whole_and_one_byte_more_is_refused_naming_the_url": (
        f"{_TRANSPORT_MODULE}_read_capped", f"{_TRANSPORT_MODULE}_read_up_to", f"{_TRANSPORT_MODULE}redact_url", f"{_TRANSPORT}_send_raw"),
    f"{_FAILURES}test_rate_limit_headers_without_a_window_or_half_there_and_the_allowance_only_on_a_429": (
        "imagekit.registry.transport.xǁRateLimitǁfrom_headers", f"{_TRANSPORT}_observe", f"{_TRANSPORT}_error"),
    f"{_FAILURES}test_a_401_naming_a_malformed_scope_is_one_line_and_blanks_between_scopes_are_one_separator": (
        f"{_TRANSPORT}_challenges_of", f"{_TRANSPORT_MODULE}_challenge_scopes"),
    f"{_FAILURES}test_a_401_whose_bearer_challenge_names_no_scope_renews_the_token_for_the_callers_scopes": (
        f"{_TRANSPORT_MODULE}_challenge_scopes", f"{_TRANSPORT}_request_once"),
    f"{_FAILURES}test_a_registry_answering_oddly_is_one_line_never_a_traceback": (
        f"{_TRANSPORT_MODULE}_body_detail", f"{_TRANSPORT}_challenges_of", f"{_TRANSPORT}_send_raw"),
    # written for the gaps left after the full run (0.05 to 0.25 s each, 2.3 s together; the TLS ones make a handshake,
    # the endless and over-the-cap ones serve 16 MiB or more)
    f"{_FAILURES}test_an_endless_body_of_no_announced_length_is_cut_at_the_cap": (
        f"{_TRANSPORT_MODULE}_read_up_to", f"{_TRANSPORT_MODULE}_read_capped", f"{_TRANSPORT_MODULE}_error_body"),
    f"{_FAILURES}test_a_v2_answering_200_with_a_challenge_is_open": (f"{_TRANSPORT}ping",),
    f"{_FAILURES}test_tokens_of_two_services_of_one_realm_are_kept_apart": (f"{_TRANSPORT}_token", f"{_TRANSPORT}_request_once"),
    f"{_FAILURES}test_a_401_from_another_host_is_not_answered_with_our_credentials": (f"{_TRANSPORT}_request_once", f"{_TRANSPORT}_carries_auth"),
    f"{_FAILURES}test_a_loopback_tls_registry_is_pinged_at_v2_and_its_first_request_carries_a_token": (f"{_TRANSPORT}_ping_once", f"{_TRANSPORT}ping"),
    f"{_FAILURES}test_the_ping_reads_its_answer_and_the_next_request_reuses_its_connection": (f"{_TRANSPORT}_ping_once", f"{_TRANSPORT}ping"),
    f"{_FAILURES}test_a_v2_answer_over_the_cap_is_refused": (f"{_TRANSPORT}_ping_once", f"{_TRANSPORT_MODULE}_read_capped"),
    f"{_FAILURES}test_a_tls_registry_whose_v2_answer_is_cut_off_is_asked_again_over_https": (f"{_TRANSPORT}_ping_once", f"{_TRANSPORT}ping"),
    # a port silent for 1 s to each connection (1.3 s)
    f"{_FAILURES}test_the_https_probe_gives_up_on_its_own_timeout_not_the_transports": (f"{_TRANSPORT}_ping_once",),
    # a plain-http registry's redirect up to https on its own port (a CA made, a TLS handshake, 0.14 s)
    "tests/registry/test_redirects.py::test_a_same_host_redirect_from_http_up_to_https_keeps_authorization": (
        f"{_TRANSPORT}_carries_auth", f"{_TRANSPORT}_send"),
    # the digest a registry names for an uploaded blob is checked (three uploads, 0.15 s)
    "tests/registry/test_client.py::test_a_registry_that_names_another_digest_for_an_uploaded_blob_is_a_mismatch": (f"{_CLIENT}upload_blob",),
    # a gzip-encoded manifest is hashed decompressed (an image pushed first, 0.2 s)
    "tests/registry/test_client.py::test_a_manifest_sent_gzip_compressed_is_read_and_hashed_decompressed": (f"{_CLIENT}get_manifest",),
    # the tty relay waits for a process quiet for 0.5 s, and for one that reads its input after 0.5 s (0.5 s each)
    f"{_CONSOLE}test_output_after_a_quiet_while_is_relayed": (f"{_CONSOLE_MODULE}_pump",),
    f"{_CONSOLE}test_input_beyond_what_the_pty_holds_waits_for_the_process_and_its_output_flows_meanwhile": (
        f"{_CONSOLE_MODULE}_pump", f"{_CONSOLE_MODULE}relay"),
    # the relay's select calls counted while the process sleeps (0.35 s)
    f"{_CONSOLE}test_the_relay_sleeps_while_the_process_is_quiet": (f"{_CONSOLE_MODULE}_pump",),
    # a signal placed between the relay's select and its read, or its write (a sandbox each, 0.2 s)
    f"{_CONSOLE}test_output_taken_from_the_pty_between_the_select_and_the_read_writes_nothing": (
        f"{_CONSOLE_MODULE}_pump", f"{_CONSOLE_MODULE}_read_pty"),
    f"{_CONSOLE}test_input_the_pty_has_no_room_for_after_the_select_waits_in_the_relay": (f"{_CONSOLE_MODULE}_pump",),
}


def _testing_a_mutant() -> bool:
    """Whether this session tests a mutant (mutmut names it in MUTANT_UNDER_TEST), not the map or the clean run."""
    return "__mutmut_" in get_mutant_under_test()


def files_for(module: str) -> tuple[str, ...] | None:
    """SELECTION's files for `module` (`imagekit.layers.apply` falls back to `imagekit.layers`), None: all tests."""
    while module:
        if module in SELECTION:
            return SELECTION[module]
        module = module.rpartition(".")[0]
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Before mutmut files this test's hits under the functions it reached: drop those it does not hold."""
    if get_mutant_under_test() != "stats":
        return
    nodeid = item.nodeid.removeprefix("mutants/")
    path = nodeid.split("::")[0]
    hits = state()._stats
    narrow = NARROW.get(nodeid) or NARROW.get(nodeid.partition("[")[0])  # a parametrized test by its name too
    if narrow is not None:
        hits.intersection_update(narrow)
    for function in list(hits):
        files = files_for(module_of(function))
        if files is not None and not path.startswith(files):
            hits.discard(function)


def pytest_configure(config: pytest.Config) -> None:
    """A mutant's session (MUTANT_UNDER_TEST names a mutant) leads a process group of its own, with the signal
    dispositions a test process has: mutmut's worker is forked from a process with a Python SIGCHLD handler
    (it wakes mutmut's own select) and SIGINT ignored. Inherited, the handler ran whenever a sandbox's child
    ended, interrupting the relay's select at moments the console tests place signals at, and an ignored SIGINT
    is inherited by every process a test starts: a mutant's tests then failed or hung where the suite passes.
    Its heap is frozen first (see the module's docstring)."""
    if _testing_a_mutant():
        gc.freeze()  # what the server made lives as long as this process: only the session's own objects are collected
        os.setpgid(0, 0)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A mutant's failing test (setup, call or teardown): one line, mutant, test, phase, the error's last line,
    written with one O_APPEND write so that two workers' lines never mix."""
    if report.failed and _testing_a_mutant():
        lines = report.longreprtext.strip().splitlines() or ["?"]
        line = "\t".join((get_mutant_under_test(), report.nodeid, report.when, lines[-1].strip()[:300].replace("\t", " "))) + "\n"
        fd = os.open(KILLS, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode(errors="replace"))
        finally:
            os.close(fd)

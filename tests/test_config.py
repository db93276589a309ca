"""imagekit.config: the image config value read from real docker/BuildKit JSON, written back, and edited as docker edits it."""

from __future__ import annotations

import json

import pytest

from imagekit.config import History, ImageConfig, parse_port_spec
from imagekit.errors import InvalidConfigEdit, InvalidManifest
from imagekit.oci import canonical_json

LAYER = "sha256:3d24ee258efc3bfe4066a1a9fb83febf6dc0b1548dfe896161533668281c9f4f"

#: busybox as the classic docker builder wrote it: every container field, nulls, and keys imagekit does not model.
CLASSIC = {
    "architecture": "amd64",
    "config": {
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "Tty": False,
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"], "Image": "sha256:" + "a" * 64, "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
    },
    "container": "b" * 64,
    "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ", "CMD [\"sh\"]"]},
    "created": "2023-07-18T23:19:33.655005962Z",
    "docker_version": "20.10.23",
    "history": [
        {"created": "2023-07-18T23:19:33.538571854Z", "created_by": "/bin/sh -c #(nop) ADD file:7e9002edaafd4e45 in / "},
        {"created": "2023-07-18T23:19:33.655005962Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": True},
    ],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [LAYER]},
}

#: What BuildKit writes (omitempty throughout), with a healthcheck and a buildinfo key.
BUILDKIT = {
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "created": "2024-01-02T03:04:05Z",
    "config": {
        "User": "app", "ExposedPorts": {"8080/tcp": {}}, "Env": ["A=1"], "Entrypoint": ["/app"], "Cmd": ["serve"],
        "Volumes": {"/data": {}}, "WorkingDir": "/srv", "Labels": {"org.example": "x"}, "StopSignal": "SIGTERM",
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "Retries": 3}, "Shell": ["/bin/bash", "-c"],
        "OnBuild": ["RUN make"], "ArgsEscaped": True,
    },
    "rootfs": {"type": "layers", "diff_ids": [LAYER]},
    "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "RUN make", "comment": "buildkit.dockerfile.v0", "author": "me"}],
    "moby.buildkit.buildinfo.v1": "e30=",
}


def test_a_buildkit_config_round_trips_exactly() -> None:
    config = ImageConfig.from_json(BUILDKIT)
    assert config.to_json() == BUILDKIT
    assert config.to_bytes() == canonical_json(BUILDKIT)
    assert (config.user, config.exposed_ports, config.entrypoint, config.cmd, config.shell) == ("app", ("8080/tcp",), ("/app",), ("serve",), ("/bin/bash", "-c"))
    assert config.healthcheck is not None and config.healthcheck.interval == 30_000_000_000 and config.healthcheck.retries == 3
    assert config.history == (History("2024-01-02T03:04:05Z", "RUN make", "buildkit.dockerfile.v0", False, "me"),)


def test_a_classic_docker_config_keeps_unknown_keys_and_drops_empty_known_ones() -> None:
    config = ImageConfig.from_json(json.loads(json.dumps(CLASSIC)))
    out = config.to_json()
    assert {k: out[k] for k in ("container", "container_config", "docker_version")} == {k: CLASSIC[k] for k in ("container", "container_config", "docker_version")}
    assert out["config"] == {
        "Hostname": "", "Domainname": "", "AttachStdin": False, "Tty": False, "Image": CLASSIC["config"]["Image"],
        "Env": CLASSIC["config"]["Env"], "Cmd": ["sh"],
    }
    assert out["history"] == CLASSIC["history"] and out["rootfs"] == CLASSIC["rootfs"]
    assert config.diff_ids == (LAYER,) and config.history[1].empty_layer


def test_an_empty_config_writes_what_docker_writes() -> None:
    assert ImageConfig(architecture="amd64", os="linux").to_json() == {
        "architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []},
    }


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ([], "image config is not a JSON object"),
        ({"config": []}, "(container config) is not a JSON object"),
        ({"config": {"Env": "A=1"}}, "(container config): 'Env' has the wrong type"),
        ({"config": {"Cmd": ["sh", 1]}}, "'Cmd' must be a list of strings"),
        ({"config": {"ExposedPorts": ["80/tcp"]}}, "'ExposedPorts' has the wrong type"),
        ({"config": {"Labels": {"a": 1}}}, "'Labels' must map strings to strings"),
        ({"config": {"Healthcheck": {"Retries": "3"}}}, "'Retries' has the wrong type"),
        ({"config": {"ArgsEscaped": 1}}, "'ArgsEscaped' has the wrong type"),
        ({"rootfs": {"diff_ids": [1]}}, "'diff_ids' must be a list of strings"),
        ({"history": [{"empty_layer": "yes"}]}, "history entry 0: 'empty_layer' has the wrong type"),
        ({"created": 5}, "'created' has the wrong type"),
    ],
)
def test_malformed_configs_are_invalid_manifests(obj: object, fragment: str) -> None:
    with pytest.raises(InvalidManifest) as info:
        ImageConfig.from_json(obj)
    assert fragment in str(info.value)


def test_env_replaces_a_variable_where_it_stands() -> None:
    config = ImageConfig(env=("PATH=/bin", "A=1", "B=2"))
    assert config.with_env("A", "x=y").env == ("PATH=/bin", "A=x=y", "B=2")
    assert config.with_env("C", "").env == ("PATH=/bin", "A=1", "B=2", "C=")
    assert config.with_env("a", "3").env[-1] == "a=3"  # names are case-sensitive on Linux
    for bad in ("", "A=B"):
        with pytest.raises(InvalidConfigEdit):
            config.with_env(bad, "1")


def test_entrypoint_clears_an_inherited_cmd_unless_one_was_set_in_this_stage() -> None:
    base = ImageConfig(cmd=("sh",))
    assert base.with_entrypoint(["/app"]).cmd == ()
    assert base.with_cmd(["serve"]).with_entrypoint(["/app"], keep_cmd=True).cmd == ("serve",)
    assert base.with_entrypoint(["/app"]).to_json()["config"] == {"Entrypoint": ["/app"]}


def test_shell_form_uses_the_shell_of_the_config() -> None:
    assert ImageConfig().shell_form("echo hi") == ("/bin/sh", "-c", "echo hi")
    assert ImageConfig(shell=("/bin/bash", "-eu", "-c")).shell_form("x") == ("/bin/bash", "-eu", "-c", "x")


def test_labels_volumes_and_workdir() -> None:
    config = ImageConfig().with_labels({"a": "1", "b": "2"}).with_labels({"a": "3"})
    assert dict(config.labels) == {"a": "3", "b": "2"}
    assert ImageConfig().with_volumes(["/data", "/logs", "/data"]).volumes == ("/data", "/logs")
    assert ImageConfig().with_working_dir("app").working_dir == "/app"
    assert ImageConfig(working_dir="/srv").with_working_dir("../www/./x").working_dir == "/www/x"
    assert ImageConfig(working_dir="/srv").with_working_dir("/abs/").working_dir == "/abs/"  # absolute: kept as given
    for edit in (lambda c: c.with_labels({"": "x"}), lambda c: c.with_volumes([" "]), lambda c: c.with_working_dir("")):
        with pytest.raises(InvalidConfigEdit):
            edit(ImageConfig())


@pytest.mark.parametrize(
    ("spec", "ports"),
    [("80", ("80/tcp",)), ("53/udp", ("53/udp",)), ("5000/SCTP", ("5000/sctp",)), ("8000-8002", ("8000/tcp", "8001/tcp", "8002/tcp")), ("65535", ("65535/tcp",))],
)
def test_port_specs(spec: str, ports: tuple[str, ...]) -> None:
    assert parse_port_spec(spec) == ports


@pytest.mark.parametrize("spec", ["abc", "", "0", "65536", "80-", "-80", "90-80", "80/", "80/icmp", "80/tcp/udp", "1.2.3.4:80:80", "８０"])
def test_bad_port_specs_are_refused(spec: str) -> None:
    with pytest.raises(InvalidConfigEdit, match="invalid port"):
        parse_port_spec(spec)
    with pytest.raises(InvalidConfigEdit):
        ImageConfig().with_exposed_ports(["80", spec])


def test_exposed_ports_accumulate_once() -> None:
    assert ImageConfig(exposed_ports=("80/tcp",)).with_exposed_ports(["80", "443", "53/udp"]).exposed_ports == ("80/tcp", "443/tcp", "53/udp")


def test_layers_and_history() -> None:
    config = (
        ImageConfig()
        .with_layer(LAYER, History(created="t1", created_by="RUN make", empty_layer=True))
        .with_history(created="t2", created_by="ENV A=1", comment="buildkit.dockerfile.v0")
    )
    assert config.diff_ids == (LAYER,)
    assert [entry.to_json() for entry in config.history] == [
        {"created": "t1", "created_by": "RUN make"},
        {"created": "t2", "created_by": "ENV A=1", "comment": "buildkit.dockerfile.v0", "empty_layer": True},
    ]
    assert ImageConfig.from_json(config.to_json()) == config

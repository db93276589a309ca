"""`imagekit inspect` without a type: containers, images and volumes, looked up in docker's order."""

from __future__ import annotations

import json
from pathlib import Path

from tests.runtime.conftest import Run, ok, one_line_error


def test_inspect_finds_a_container_an_image_and_a_volume_in_one_call(ik: Run, root: Path) -> None:
    ok(ik("run", "--network", "none", "--name", "done", "busybox", "true"))
    ok(ik("volume", "create", "kept"))
    image_id = json.loads(ok(ik("image", "inspect", "busybox")))[0]["Id"]
    container, image, volume = json.loads(ok(ik("inspect", "done", "busybox", "kept")))
    assert container["Name"] == "/done" and container["State"]["Status"] == "exited"
    assert image["Id"] == image_id and image["RepoTags"] == ["busybox:latest"]
    assert volume["Name"] == "kept" and volume["Mountpoint"] == str(root / "volumes" / "kept" / "_data")
    assert ok(ik("inspect", "-f", "{{.State.ExitCode}} {{.Id}} {{.Mountpoint}}", "done", "busybox", "kept")).splitlines() == [
        f"0 {container['Id']} <no value>", f"<no value> {image_id} <no value>", f"<no value> <no value> {volume['Mountpoint']}"]
    assert json.loads(ok(ik("inspect", container["Id"][:12])))[0]["Name"] == "/done"  # an ID prefix
    assert json.loads(ok(ik("inspect", image_id[7:19])))[0]["Id"] == image_id


def test_a_container_named_like_an_image_or_a_volume_wins_unless_a_type_is_given(ik: Run) -> None:
    ok(ik("run", "--network", "none", "--name", "busybox", "busybox", "true"))
    ok(ik("volume", "create", "busybox"))
    assert json.loads(ok(ik("inspect", "busybox")))[0]["Name"] == "/busybox"
    assert json.loads(ok(ik("inspect", "--type", "image", "busybox")))[0]["RepoTags"] == ["busybox:latest"]
    assert json.loads(ok(ik("inspect", "--type", "volume", "busybox")))[0]["Driver"] == "local"
    assert json.loads(ok(ik("inspect", "--type", "container", "busybox")))[0]["Name"] == "/busybox"
    ok(ik("volume", "create", "Images"))  # no valid image reference: the image lookup passes it on
    assert json.loads(ok(ik("inspect", "Images")))[0]["Name"] == "Images"


def test_a_type_restricts_the_lookup_to_its_own_error(ik: Run) -> None:
    ok(ik("volume", "create", "only-a-volume"))
    assert one_line_error(ik("inspect", "--type", "container", "only-a-volume")) == "imagekit: no such container: only-a-volume"
    assert "no image 'only-a-volume:latest'" in one_line_error(ik("inspect", "--type", "image", "only-a-volume"))
    assert one_line_error(ik("inspect", "--type", "volume", "busybox")) == "imagekit: no such volume: busybox"
    bad = ik("inspect", "--type", "network", "x")
    assert bad.returncode == 2 and "'network' is not one of 'container', 'image', 'volume'" in bad.stderr


def test_a_name_that_is_nothing_is_no_such_object_and_the_others_still_print(ik: Run) -> None:
    ok(ik("volume", "create", "kept"))
    done = ik("inspect", "nothere")
    assert (done.returncode, done.stdout, done.stderr) == (1, "[]\n", "imagekit: no such object: nothere\n")
    done = ik("inspect", "kept", "nothere", "Bad:ref", "../volumes/kept", "busybox")
    assert done.returncode == 1 and [o.get("Name", o.get("Id")) for o in json.loads(done.stdout)] == ["kept", json.loads(
        ok(ik("image", "inspect", "busybox")))[0]["Id"]]
    assert done.stderr.splitlines() == ["imagekit: no such object: nothere", "imagekit: no such object: Bad:ref",
                                        "imagekit: no such object: ../volumes/kept"]


def test_container_and_volume_inspect_take_a_format_too(ik: Run) -> None:
    assert ik("run", "--network", "none", "--name", "done", "busybox", "sh", "-c", "exit 3").returncode == 3
    ok(ik("volume", "create", "kept"))
    assert ok(ik("container", "inspect", "-f", "{{.State.ExitCode}}", "done")) == "3\n"
    assert ok(ik("volume", "inspect", "--format", "{{.Name}} {{.Driver}}", "kept")) == "kept local\n"
    done = ik("volume", "inspect", "kept", "../volumes/kept")
    assert done.returncode == 1 and done.stderr == "imagekit: no such volume: ../volumes/kept\n"

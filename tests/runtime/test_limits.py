"""Resource limits through cgroups: v1 for real on this machine, v2 against a fake cgroup tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagekit.errors import SandboxError
from imagekit.sandbox import cgroups
from tests.runtime.conftest import Run, cgroup_dirs, inspect, ok, one_line_error, wait_for


def test_memory_oom_kill_exits_137_and_says_oomkilled(ik: Run) -> None:
    result = ik("run", "--name", "hog", "-m", "16m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    assert result.returncode == 137
    assert inspect(ik, "hog")["State"]["OOMKilled"] is True
    assert inspect(ik, "hog")["HostConfig"]["Memory"] == 16 * 1024 * 1024
    assert "Exited (137) OOMKilled" in ok(ik("ps", "-a"))
    ok(ik("run", "--name", "fits", "-m", "128m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"))
    assert inspect(ik, "fits")["State"]["OOMKilled"] is False


def test_cgroup_files_carry_the_limits(ik: Run) -> None:
    container_id = ok(ik("run", "-d", "--cpus", "0.5", "-m", "100m", "--pids-limit", "50", "busybox", "sh", "-c", "sleep 100 & wait")).strip()
    memory, cpu, pids = cgroup_dirs(container_id)
    wait_for(lambda: (pids / "pids.current").read_text().strip() == "2")  # sh and its sleep
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (memory / "memory.limit_in_bytes").read_text().strip() == str(100 * 1024 * 1024)
    assert (pids / "pids.max").read_text().strip() == "50"
    pid = inspect(ik, container_id)["State"]["Pid"]
    members = [sorted((d / "cgroup.procs").read_text().split()) for d in (memory, cpu, pids)]
    assert str(pid) in members[0] and len(members[0]) == 2  # the process itself is inside, and what it forks
    assert members[0] == members[1] == members[2]  # in every controller's cgroup
    ok(ik("rm", "-f", container_id))
    assert not any(d.exists() for d in (memory, cpu, pids))


def test_fork_bomb_is_contained_by_pids_limit(ik: Run) -> None:
    # exec, not fork: PID 1 must outlive the refused forks, or the container (and its cgroup) ends first
    container_id = ok(ik("run", "-d", "--pids-limit", "20", "busybox", "sh", "-c", "bomb() { bomb | bomb & }; bomb; exec sleep 100")).strip()
    pids = cgroup_dirs(container_id)[2]
    wait_for(lambda: int((pids / "pids.events").read_text().split()[1]) > 0)  # forks were refused
    assert int((pids / "pids.current").read_text()) <= 20
    ok(ik("rm", "-f", container_id))


def test_limits_below_docker_minimum_are_refused(ik: Run, root: Path) -> None:
    assert one_line_error(ik("run", "--rm", "-m", "5m", "busybox", "true")) == "imagekit: Minimum memory limit allowed is 6MB"
    assert ik("run", "--rm", "-m", "5m", "busybox", "true").returncode == 125
    assert "--cpus" in one_line_error(ik("run", "--rm", "--cpus", "lots", "busybox", "true"))
    assert not (root / "containers").exists() or list((root / "containers").iterdir()) in ([], [root / "containers" / "lock"])


def fake_v2(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_v2_limits_written_to_a_fake_tree(tmp_path: Path) -> None:
    root = fake_v2(tmp_path)
    assert cgroups.version(str(root)) == 2
    group = cgroups.create("c1", cgroups.Limits(memory=64 << 20, cpus=1.5, pids=30), root=str(root))
    directory = root / "imagekit" / "c1"
    assert group == cgroups.Cgroup(2, (str(directory),)) == cgroups.find("c1", str(root))
    assert (directory / "memory.max").read_text() == str(64 << 20)
    assert (directory / "memory.swap.max").read_text() == str(64 << 20)
    assert (directory / "cpu.max").read_text() == "150000 100000"
    assert (directory / "pids.max").read_text() == "30"
    assert (root / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"  # delegated to the children
    assert not group.oom_killed()
    (directory / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.oom_killed()
    for name in ("memory.max", "memory.swap.max", "cpu.max", "pids.max", "memory.events"):
        (directory / name).unlink()  # a real cgroupfs has no files to delete first
    group.remove()
    assert not directory.exists()


def test_v2_without_controllers_falls_back_to_v1(tmp_path: Path) -> None:
    root = tmp_path / "hybrid"
    (root / "unified").mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text("hugetlb\n")  # this machine's empty v2
    assert cgroups.version(str(root / "unified")) == 1
    assert cgroups.version(str(root)) == 1
    group = cgroups.create("c2", cgroups.Limits(pids=5), root=str(root))
    assert group.version == 1 and (root / "pids" / "imagekit" / "c2" / "pids.max").read_text() == "5"
    assert not (root / "memory" / "imagekit" / "c2" / "memory.limit_in_bytes").exists()  # no memory limit asked


def test_a_process_joins_through_tasks_on_v1_and_cgroup_procs_on_v2(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1", fake_v2(tmp_path)
    v1.mkdir()
    for directory in (v1, v2):
        (directory / "cgroup.procs").write_text("")
    (v1 / "tasks").write_text("")  # v1 has both files; moving one thread through `tasks` skips an RCU grace period
    cgroups.join(cgroups.open_joins((str(v1), str(v2))))
    assert [(v1 / "tasks").read_text(), (v1 / "cgroup.procs").read_text(), (v2 / "cgroup.procs").read_text()] == ["0", "", "0"]
    with pytest.raises(FileNotFoundError):
        cgroups.open_joins((str(v2), str(tmp_path / "gone")))


def test_a_failing_limit_leaves_no_cgroup(tmp_path: Path) -> None:
    root = fake_v2(tmp_path)
    (root / "imagekit" / "c3").mkdir(parents=True)
    with pytest.raises(SandboxError, match="already exists"):
        cgroups.create("c3", cgroups.Limits(pids=5), root=str(root))
    with pytest.raises(SandboxError, match="Minimum memory"):
        cgroups.create("c4", cgroups.Limits(memory=1 << 20), root=str(root))
    assert sorted(p.name for p in (root / "imagekit").iterdir() if p.is_dir()) == ["c3"]

"""`imagekit build`: a Builderfile's stages, one step at a time, into an image in the store.

For each stage the target needs (and only those, as BuildKit's `--target` does), the base image comes
from the store or, when missing or with `--pull`, from the injected `pull` callable (the builder never
talks to a registry itself). Each instruction either edits the image config (imagekit.builder.dispatch,
an `empty_layer` history entry) or changes the filesystem (RUN, COPY, ADD): then the step's cache key
is looked up first, and on a miss the step runs on an overlay snapshot of the parent's layers
(imagekit.snapshots), in the sandbox, and the snapshot's upper directory becomes the layer.

Nothing is named until everything is written: layers, then config, then manifest, then the tags, all
inside the layout's `writing()` so garbage collection never takes a blob the build is about to name.
A failed or interrupted step removes its snapshot; a SIGKILLed build leaves only debris that
`imagekit prune` removes (unnamed blobs, snapshot directories whose owner is gone).

Imports: stdlib, builderfile, imagekit.errors, digest, oci, image, config, platforms, reference, layers,
layout, store, snapshots, sandbox, users, and the build package's own modules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from builderfile import expand as bf_expand
from builderfile import instructions as bf
from builderfile.errors import BuilderfileError
from imagekit import sandbox
from imagekit import values
from imagekit.builder import dispatch
from imagekit.builder.cache import BuildCache, Record, step_key
from imagekit.builder.context import BuildContext
from imagekit.builder.copy_apply import apply as apply_copy
from imagekit.builder.copy_apply import owner_for
from imagekit.builder.copy_from import stage_sources
from imagekit.builder.copy_plan import CopyPlan, plan_copy
from imagekit.builder.options import DEFAULT_FILES, BuildOptions
from imagekit.builder.output import BuildOutput
from imagekit.builder.run import RunStep, parse_mount
from imagekit.builder.state import Layer, StageState
from imagekit.config import History, ImageConfig
from imagekit.digest import Digest
from imagekit.errors import BuildError, ImageNotFound, ImagekitError
from imagekit.image import Image
from imagekit.layers.write import write_layer
from imagekit.layers.changes import as_container_root
from imagekit.layers.tarformat import source_date_epoch
from imagekit.oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
)
from imagekit.platforms import host as host_platform
from imagekit.platforms import parse_platform
from imagekit.reference import Reference, parse_reference
from imagekit.sandbox import Rootfs
from imagekit.snapshots import Snapshots
from imagekit.store import Store

#: IMAGEKIT_SNAPSHOTTER=copy forces the copy fallback (tests run both on one Builderfile); default: probe.
SNAPSHOTTER_ENV = "IMAGEKIT_SNAPSHOTTER"

#: pull(reference, platform) -> the image, now in the store. Injected: the builder never sees a registry.
Pull = Callable[[Reference, Platform], Image]


@values.value
class BuiltImage:
    """The result of a build: the image as stored, its ID (config digest) and the names it got."""

    image: Image
    tags: tuple[str, ...]

    @property
    def id(self) -> str:
        return str(self.image.manifest.config.digest)


class Builder:
    """One build of one Builderfile into `store`. Use `run()` once."""

    def __init__(self, store: Store, options: BuildOptions, pull: Pull, output: BuildOutput | None = None) -> None:
        self.store = store
        self.options = options
        self.pull = pull
        self.output = output or BuildOutput(options.quiet)
        self.layout = store.layout
        choice = os.environ.get(SNAPSHOTTER_ENV, "")
        self.snapshots = Snapshots(store, use_overlay={"overlay": True, "copy": False}.get(choice))
        self.cache = BuildCache(store.state_dir("cache") / "build")
        self.platform = parse_platform(options.platform) if options.platform else host_platform()
        self.file_name, text = self._read_builderfile()
        try:
            self.builderfile = bf.load(text)
        except BuilderfileError as err:
            raise BuildError(err.message, file=self.file_name, line=max(err.line, 1)) from None
        self.context = BuildContext(options.context, self.options.builderfile if options.builderfile_text is None else None,
                                    store.state_dir("cache") / "context")
        self.predefined = _predefined_args(self.platform, host_platform())
        self.results: dict[int, StageState] = {}
        self._epoch = source_date_epoch()
        self._tags = tuple(str(parse_reference(tag)) for tag in options.tags)
        if options.format == "docker" and options.compression != "gzip":
            raise BuildError(f"--format docker supports only gzip layers, not {options.compression}")

    # --- the whole build ---------------------------------------------------------------------------------
    def run(self) -> BuiltImage:
        target = self._target_stage()
        needed = self._stages_needed(target)
        total = sum(1 + len(self.builderfile.stages[i].instructions) for i in needed)
        counter = iter(range(1, total + 1))
        with self.layout.writing(), self.snapshots.hold(), tempfile.TemporaryDirectory(prefix="imagekit-build-") as scratch:
            self.scratch = Path(scratch)
            for index in needed:
                self.results[index] = self._build_stage(index, counter, total)
            built = self._commit(self.results[target.index])
        self.context.save()
        return built

    def _read_builderfile(self) -> tuple[str, bytes]:
        if self.options.builderfile_text is not None:
            return (str(self.options.builderfile) if self.options.builderfile else "-"), self.options.builderfile_text
        path = self.options.builderfile
        if path is None:
            assert self.options.context is not None
            found = [self.options.context / name for name in DEFAULT_FILES if (self.options.context / name).is_file()]
            if not found:
                raise BuildError(f"no {', '.join(DEFAULT_FILES)} in {self.options.context} (name one with -f)")
            path = found[0]
        try:
            return path.name if path.parent == self.options.context else str(path), path.read_bytes()
        except OSError as err:
            raise BuildError(f"cannot read {path}: {err.strerror}") from err

    def _target_stage(self) -> bf.Stage:
        if not self.options.target:
            return self.builderfile.stages[-1]
        try:
            return self.builderfile.stage(self.options.target)
        except KeyError:
            raise BuildError(f"target stage {self.options.target!r} could not be found") from None

    def _stages_needed(self, target: bf.Stage) -> list[int]:
        """The target and every stage it builds on or copies from, in file order."""
        global_args = bf_expand.global_args(self.builderfile, self.options.build_args, self.predefined)
        needed: set[int] = set()
        pending = [target.index]
        while pending:
            index = pending.pop()
            if index in needed:
                continue
            needed.add(index)
            stage = self.builderfile.stages[index]
            base = self._earlier_stage(bf_expand.expand_word(self.builderfile, stage.start.base, global_args), index)
            if base is not None:
                pending.append(base)
            for instruction in stage.instructions:
                sources = [getattr(instruction, "from_", "")]
                sources += [parse_mount(mount).get("from", "") for mount in getattr(instruction, "mounts", ())]
                for source in filter(None, sources):
                    earlier = self._earlier_stage(source, index)
                    if earlier is not None:
                        pending.append(earlier)
        return sorted(needed)

    def _earlier_stage(self, name: str, before: int) -> int | None:
        """The index of the stage `name` refers to (a name or an index), if it is an earlier stage."""
        if name.isdigit():
            return int(name) if int(name) < before else None
        for stage in self.builderfile.stages[:before]:
            if stage.name and stage.name == name.lower():
                return stage.index
        return None

    # --- one stage ---------------------------------------------------------------------------------------
    def _build_stage(self, index: int, counter: Iterator[int], total: int) -> StageState:
        raw = self.builderfile.stages[index]
        global_args = bf_expand.global_args(self.builderfile, self.options.build_args, self.predefined)
        base_name = bf_expand.expand_word(self.builderfile, raw.start.base, global_args)
        self.output.step(next(counter), total, f"FROM {base_name}" + (f" AS {raw.name}" if raw.name else ""))
        state, onbuild = self._base_state(base_name, raw, index)
        try:
            stage = bf_expand.expand_stage(self.builderfile, index, self.options.build_args, self.predefined,
                                           dict(item.partition("=")[::2] for item in state.config.env))
        except BuilderfileError as err:
            raise BuildError(err.message, file=self.file_name, line=max(err.line, 1)) from None
        for trigger in onbuild:  # the base image's ONBUILD triggers, before the stage's own steps, unnumbered
            state = self._step(state, trigger, 0, total)
        for instruction in stage.instructions:
            state = self._step(state, instruction, next(counter), total)
        return state

    def _base_state(self, base_name: str, stage: bf.Stage, index: int) -> tuple[StageState, list[bf.Instruction]]:
        """The state a stage starts from, and the ONBUILD triggers of its base image to run first."""
        earlier = self._earlier_stage(base_name, index)
        if earlier is not None:
            parent = self.results[earlier]
            return values.replace(parent, args={}, cmd_set=False, config=values.replace(parent.config, on_build=())), []
        if base_name.lower() == "scratch":
            config = ImageConfig(architecture=self.platform.architecture, os=self.platform.os, variant=self.platform.variant)
            return StageState(config, (), step_key("scratch", str(self.platform))), []
        image = self._base_image(base_name, stage.start.platform, stage.start.line)
        state = _image_state(image)
        triggers = [self._trigger(text, stage) for text in state.config.on_build]
        return values.replace(state, config=values.replace(state.config, on_build=())), triggers

    def _base_image(self, name: str, platform_text: str = "", line: int | None = None) -> Image:
        """The image `name` from the store, or pulled (always with --pull); BuildError at `line` (None:
        the caller's step adds its own line)."""
        what = f"FROM {name}" if line is not None else name
        try:
            ref = parse_reference(name)
        except ImagekitError as err:
            raise BuildError(f"{what}: {err}", file=self.file_name, line=line) from None
        platform = parse_platform(platform_text) if platform_text else self.platform
        if not self.options.pull:
            try:
                return self.store.find(str(ref)).image
            except ImageNotFound:
                pass
        try:
            return self.pull(ref, platform)
        except ImagekitError as err:
            raise BuildError(f"{what}: {err}", file=self.file_name, line=line) from None

    def _trigger(self, text: str, stage: bf.Stage) -> bf.Instruction:
        """An ONBUILD trigger of the base image, parsed as one instruction placed at the FROM line."""
        try:
            parsed = bf.load(f"FROM scratch\n{text}\n").stages[0].instructions
        except BuilderfileError as err:
            raise BuildError(f"ONBUILD trigger {text!r} of the base image: {err.message}", file=self.file_name,
                             line=stage.start.line) from None
        return dataclasses.replace(parsed[0], line=stage.start.line, end_line=stage.start.line)  # builderfile's dataclass

    # --- one step ----------------------------------------------------------------------------------------
    def _step(self, state: StageState, instruction: bf.Instruction, number: int, total: int) -> StageState:
        if number:
            self.output.step(number, total, _shown(instruction))
        try:
            if isinstance(instruction, bf.Run):
                return self._filesystem_step(state, instruction, self._run_key(state, instruction), self._do_run)
            if isinstance(instruction, (bf.Copy, bf.Add)):
                plan = self._copy_plan(state, instruction)
                key = step_key(state.key, _describe(instruction), plan.checksum())
                return self._filesystem_step(state, instruction, key, lambda s, i: self._do_copy(s, plan))
            return self._config_step(state, instruction)
        except BuilderfileError as err:
            raise BuildError(err.message, file=self.file_name, line=instruction.line) from None
        except BuildError as err:
            if err.line is None:
                raise BuildError(str(err), file=self.file_name, line=instruction.line) from None
            raise

    def _config_step(self, state: StageState, instruction: bf.Instruction) -> StageState:
        """A step that only edits the config; cached too, so a rebuild keeps the history's times and
        with them the image ID."""
        key = step_key(state.key, _describe(instruction))
        after = dispatch.apply(state, instruction, self._created())
        record = None if self.options.no_cache else self.cache.get(key)
        if record is not None and record.layer is None:
            return values.replace(after, config=ImageConfig.from_json(record.config), key=key)
        self.cache.put(key, Record(None, "", after.config.to_json()))
        return values.replace(after, key=key)

    def _run_key(self, state: StageState, run: bf.Run) -> str:
        secrets = sorted(o.get("id", "") for o in map(parse_mount, run.mounts) if o.get("type") == "secret")
        return step_key(state.key, _describe(run), self.options.network, secrets)

    def _filesystem_step(self, state: StageState, instruction: bf.Instruction, key: str,
                         perform: Callable[[StageState, bf.Instruction], tuple[Layer, str]]) -> StageState:
        """A step that makes a layer: from the cache when its key is known and its blob is still here."""
        if not self.options.no_cache:
            record = self.cache.get(key)
            if record is not None and record.layer is not None and self.layout.has_blob(record.layer.digest):
                self.output.cached()
                config = ImageConfig.from_json(record.config)
                return values.replace(state, config=config, layers=(*state.layers, Layer(record.layer, record.diff_id)), key=key)
        layer, created_by = perform(state, instruction)
        history = History(created=self._created(), created_by=created_by, comment=dispatch.HISTORY_COMMENT)
        config = state.config.with_layer(layer.diff_id, history)
        self.cache.put(key, Record(layer.descriptor, layer.diff_id, config.to_json()))
        self.output.done()
        return values.replace(state, config=config, layers=(*state.layers, layer), key=key)

    def _lowers(self, state: StageState) -> tuple[Path, ...]:
        """The extracted directories of the state's layers, topmost first (extracted now if they are not)."""
        config = values.replace(state.config, diff_ids=tuple(layer.diff_id for layer in state.layers))
        config_bytes = config.to_bytes()
        manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, Digest.of_bytes(config_bytes), len(config_bytes)),
                            tuple(layer.descriptor for layer in state.layers))
        return self.snapshots.lowers(self.layout.unstored_image(manifest.to_bytes(), config_bytes, OCI_MANIFEST))

    def _rootfs(self, state: StageState) -> tuple[str, Rootfs]:
        key = f"build-{uuid.uuid4().hex}"
        return key, self.snapshots.prepare(key, self._lowers(state))

    def _do_run(self, state: StageState, run: bf.Instruction) -> tuple[Layer, str]:
        assert isinstance(run, bf.Run)
        snapshot, rootfs = self._rootfs(state)
        try:
            step = RunStep(run, state, rootfs, self.options, self.context, self.store, self._stage_rootfs, self.output)
            removed = step.execute()
            return self._commit_layer(snapshot, removed), step.history()
        finally:
            self.snapshots.remove(snapshot)

    def _do_copy(self, state: StageState, plan: CopyPlan) -> tuple[Layer, str]:
        snapshot, rootfs = self._rootfs(state)
        try:
            sandbox.call(rootfs, _copy_into, plan)
            return self._commit_layer(snapshot, ()), " ".join(plan.history()) + " # buildkit"
        finally:
            self.snapshots.remove(snapshot)

    def _commit_layer(self, snapshot: str, removed: tuple[str, ...] | list[str]) -> Layer:
        changes = self.snapshots.commit(snapshot, remove_paths=tuple(removed))
        if self.options.isolation == "rootless":  # the step ran as root mapped onto us: give its files back to root
            changes = as_container_root(changes, os.getuid(), os.getgid())
        with self.layout.blob_writer() as writer:
            written = write_layer(changes, writer, self.options.compression)
        media_type = DOCKER_LAYER_GZIP if self.options.format == "docker" else written.media_type
        self.snapshots.adopt(snapshot, str(written.diff_id))
        return Layer(Descriptor(media_type, written.digest, written.size), str(written.diff_id))

    def _stage_rootfs(self, name: str) -> Rootfs:
        """A read-only root of an earlier stage or an image, for `COPY --from` and `RUN --mount=from=`."""
        current = max(self.results, default=-1) + 1
        earlier = self._earlier_stage(name, current)
        if earlier is not None and earlier in self.results:
            state = self.results[earlier]
        elif name.isdigit():
            raise BuildError(f"--from={name}: no such earlier stage")
        else:
            state = _image_state(self._base_image(name))
        lowers = self._lowers(state)
        if not lowers:  # scratch: an empty read-only root
            empty = self.scratch / "empty"
            empty.mkdir(exist_ok=True)
            lowers = (empty,)
        return Rootfs(lowers=tuple(str(lower) for lower in lowers), readonly=True)

    def _copy_plan(self, state: StageState, instruction: bf.Copy | bf.Add) -> CopyPlan:
        """The step's plan; `COPY --from` sources are first copied out of the stage's root into a
        scratch directory (the root is only mounted inside a sandbox child)."""
        staging = Path(tempfile.mkdtemp(dir=self.scratch))
        stage_root = None
        if isinstance(instruction, bf.Copy) and instruction.from_:
            stage_root = staging / "root"
            sandbox.call(self._stage_rootfs(instruction.from_), stage_sources, list(instruction.sources), str(stage_root))
        return plan_copy(instruction, self.context, state.config.working_dir or "/", file=self.file_name,
                         stage_root=stage_root, staging=staging / "downloads")

    def _created(self) -> str:
        when = dt.datetime.fromtimestamp(self._epoch, dt.timezone.utc) if self._epoch is not None else dt.datetime.now(dt.timezone.utc)
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if when.microsecond else "%Y-%m-%dT%H:%M:%SZ")

    # --- the image ---------------------------------------------------------------------------------------
    def _commit(self, state: StageState) -> BuiltImage:
        config = state.config.with_labels(self.options.labels) if self.options.labels else state.config
        last = config.history[-1].created if config.history else ""
        config = values.replace(config, created=last or self._created())  # a cached rebuild keeps its ID
        docker = self.options.format == "docker"
        config_bytes = config.to_bytes()
        config_descriptor = Descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, self.layout.write_bytes(config_bytes), len(config_bytes))
        layers = tuple(
            values.replace(layer.descriptor, media_type=DOCKER_LAYER_GZIP if docker else layer.descriptor.media_type)
            if docker and layer.descriptor.media_type == OCI_LAYER_GZIP else layer.descriptor
            for layer in state.layers
        )
        manifest = Manifest(DOCKER_MANIFEST if docker else OCI_MANIFEST, config_descriptor, layers)
        manifest_bytes = manifest.to_bytes()
        descriptor = Descriptor(manifest.media_type, self.layout.write_bytes(manifest_bytes), len(manifest_bytes))
        for tag in self._tags:
            self.layout.set_ref(tag, descriptor)
        if not self._tags:
            self.layout.add_unnamed(descriptor)  # a dangling image, as docker keeps an untagged build
        return BuiltImage(self.layout.image_at(descriptor), self._tags)


def _image_state(image: Image) -> StageState:
    """The state a stage starts from when it builds on `image` (its key: the image ID)."""
    layers = tuple(Layer(d, diff_id) for d, diff_id in zip(image.layers, image.diff_ids, strict=True))
    return StageState(ImageConfig.from_json(image.config), layers, step_key("image", str(image.manifest.config.digest)))


def _copy_into(root: str, plan: CopyPlan) -> None:
    """In a sandbox.call child with the step's root mounted at `root`: --chown resolved, then the copy."""
    apply_copy(root, plan, owner_for(root, plan))


def _predefined_args(target: Platform, build: Platform) -> dict[str, str]:
    """BuildKit's automatic platform ARGs (TARGETPLATFORM, BUILDARCH, ...)."""
    args: dict[str, str] = {}
    for prefix, platform in (("TARGET", target), ("BUILD", build)):
        args[f"{prefix}PLATFORM"] = str(platform)
        args[f"{prefix}OS"] = platform.os
        args[f"{prefix}ARCH"] = platform.architecture
        args[f"{prefix}VARIANT"] = platform.variant
    return args


def _describe(instruction: bf.Instruction) -> list[object]:
    """The instruction as its cache key sees it: its kind and every expanded field but the line numbers."""
    fields = dataclasses.asdict(instruction)  # builderfile's dataclass
    for name in ("line", "end_line", "original"):
        fields.pop(name, None)
    return [type(instruction).__name__, repr(sorted(fields.items()))]


def _shown(instruction: bf.Instruction) -> str:
    return instruction.original.strip().split("\n", 1)[0]

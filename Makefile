# Two set-up commands on a fresh Debian machine: `make demo` and `make test` (see README.md).
# Both are idempotent: a second run installs nothing and only re-runs.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
PYTEST_ARGS ?= -n auto -q

# Debian packages the tests use as real peers and real servers.
APT_TEST    := docker-registry skopeo umoci oci-image-tool buildah runc busybox-static \
               mmdebstrap pigz zstd openssl iproute2 nftables iptables ca-certificates curl
# What the demo needs: a static busybox to make a base image from.
APT_DEMO    := busybox-static

.PHONY: demo test bench mutation apt-test apt-demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.runtime

apt-test:
	@./.ci/apt-install $(APT_TEST)

apt-demo:
	@./.ci/apt-install $(APT_DEMO)

demo: apt-demo $(VENV)/.runtime
	@PATH="$(abspath $(BIN)):$$PATH" bash examples/demo.sh

# Each run gets its own temp root, removed afterwards: what other pytest runs left in the shared
# /tmp/pytest-of-$USER (a killed run, a mutation run) can never break this one's clean-up. Lowercase
# only: buildah derives an image name from an `oci:` path and refuses uppercase (mktemp's X's have it).
test: apt-test $(VENV)/.test
	@tmp="/tmp/imagekit-tests-$$$$-$$(date +%s%N)"; mkdir -m 700 "$$tmp" && \
	$(BIN)/python -m pytest $(PYTEST_ARGS) --basetemp="$$tmp"; status=$$?; rm -rf "$$tmp"; exit $$status

bench: apt-test $(VENV)/.test
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m bench

$(VENV)/.mutation: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,mutation]'
	touch $@ $(VENV)/.test $(VENV)/.runtime

# Mutation testing of the safety-critical modules ([tool.mutmut] in pyproject.toml); not part of `make test`
# or CI. One mutmut run for all the modules: its clean run, test listing and forced-fail run happen once, and
# its workers take the mutants of every module fastest first, so none waits at a module's end. Three workers
# on two cores: with two, a third of the CPU sat idle while sessions waited on their registries and sandboxes
# (vmstat, Dec 7); three took 6 minutes less (tests/MUTANTS.md). Results
# are saved mutant by mutant in mutants/ (its log in mutants/mutmut.log), so a stopped run keeps what it
# finished; MUTATION_MODULES="imagekit.digest" reruns one module. Subprocesses
# (the CLI) import the mutated copy through PYTHONPATH; pytest's temp dirs go to a directory of this run,
# removed at the end after a lazy unmount of what a killed mutant left mounted in it (a test's netns pin).
# Writes tests/MUTANTS-results.txt (kill rate per module); tests/MUTANTS.md explains the survivors.
MUTATION_MODULES ?= imagekit.digest imagekit.fsutil imagekit.layout imagekit.registry.client imagekit.registry.transport imagekit.layers.rootfs imagekit.layers.tarread imagekit.layers.apply imagekit.sandbox
MUTATION_CHILDREN ?= 3
mutation: apt-test $(VENV)/.mutation
	mkdir -p mutants  # it must exist when Python starts, or the path is skipped for good
	rm -f mutants/mutmut-stats.json mutants/mutmut-kills.tsv  # map the tests to functions again (tests/mutation_plugin.py's selection applies then), record the kills afresh
	@tmp="/tmp/imagekit-mutation-$$$$-$$(date +%s)"; mkdir -m 700 "$$tmp"; status=0; start=$$(date +%s); \
	TMPDIR="$$tmp" PYTHONPATH=$(abspath mutants) tests/mutation_jail.sh $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) \
		$(foreach module,$(MUTATION_MODULES),"$(module).*") > mutants/mutmut.log 2>&1 || { status=1; tail -5 mutants/mutmut.log; }; \
	echo "mutmut run: $$(( $$(date +%s) - start )) s"; \
	awk -v tmp="$$tmp/" 'index($$2, tmp) == 1 { print $$2 }' /proc/self/mounts | sort -r | xargs -r -n 1 umount -l; \
	rm -rf "$$tmp"; \
	$(BIN)/python -m tests.mutation_report > tests/MUTANTS-results.txt && cat tests/MUTANTS-results.txt; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis mutants

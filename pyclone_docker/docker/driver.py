"""The volume manager behind the Docker API: create, remove, mount, unmount, and state.

Locking: `_lock` guards the volume table and is only held for dictionary work, so Get and
List never wait; each volume's own lock serialises its slow work (mount, unmount, remove).

A volume's life, one rule: a Volume is alive while the table holds that very object. Every
operation on a volume takes its lock and then checks it is still alive (`_alive`); Remove
takes it out of the table under that lock. So a Mount, Unmount, Remove or remount that
waited on the lock of a volume removed meanwhile fails "volume not found" and touches
nothing. A removed volume's name stays in `_removing` until its clean-up (mountpoint, cache)
is done; a Create of that name waits for it, so a new volume never meets the old one's
clean-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import backends
from .. import fs as fsmod
from ..backends.base import Backend
from ..flags import OptionValues
from ..fuse import mount as mountmod
from .mounting import build_vfs, ensure_root
from .options import (
    OptionError,
    VolumeSpec,
    no_effect_warning,
    parse_volume_options,
    redact_options,
    saved_options,
)
from .state import StateFile
from .volume import Volume, check_mount_id, check_name

if TYPE_CHECKING:
    from ..vfs.rc import ActiveVFS

log = logging.getLogger("pyclone.driver")

ERR_NOT_FOUND = "volume not found"
ERR_IN_USE = "volume is in use"


class DriverError(Exception):
    """An error whose text goes back to Docker as {"Err": ...}."""


def vfs_name(backend: Backend) -> str:
    """rclone's fs.ConfigString: `name:root`, only the root for a plain local path.

    `/srv/x` -> "/srv/x"; `:local:/srv/x` -> ":local:/srv/x"; `remote:dir` -> "remote:dir";
    overridden options show as the `{hash}` suffix of the name, never as their values.
    """
    if backend.name == "local" and backend.type_name == "local":
        return str(backend.root)
    return f"{backend.name}:{backend.root}"


class Driver:
    def __init__(self, base_dir: str, state: StateFile, defaults: OptionValues,
                 explicit: frozenset[str], fs_ctx: fsmod.FsContext, cache_dir: str = "",
                 transfers: int = 4, buffer_size: int = 16 << 20) -> None:
        self.base_dir = base_dir
        self.cache_dir = cache_dir or os.path.dirname(state.path)
        self.transfers = transfers
        self.buffer_size = buffer_size  # --buffer-size is global in rclone, not a volume option
        self.state = state
        self.defaults = defaults
        self.explicit = explicit
        self.fs_ctx = fs_ctx
        self._volumes: dict[str, Volume] = {}
        self._removing: dict[str, Volume] = {}  # removed, clean-up still running
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()

    # --- helpers ----------------------------------------------------------------------

    def _spec(self, opts: dict[str, str] | None) -> VolumeSpec:
        spec = parse_volume_options(opts, self.defaults, self.explicit, self.fs_ctx.type_of_remote)
        # unknown backend / option / remote -> ValueError; the backend is built from this at Mount
        spec.resolved = fsmod.resolve(spec.remote, self.fs_ctx, spec.values)
        return spec

    def _get(self, name: Any) -> Volume:
        try:
            check_name(name)
        except ValueError as e:
            raise DriverError(str(e)) from None
        vol = self._volumes.get(name)
        if vol is None:
            raise DriverError(ERR_NOT_FOUND)
        return vol

    @contextlib.contextmanager
    def _alive(self, vol: Volume) -> Iterator[None]:
        """Hold the volume's lock, and fail "volume not found" if it was removed while this
        call waited for it (the rule in the module docstring)."""
        with vol.lock:
            if self._volumes.get(vol.name) is not vol:
                raise DriverError(ERR_NOT_FOUND)
            yield

    def _registered(self, name: str) -> Volume | None:
        """The live volume called `name`, or None once no Remove of that name is still
        cleaning up (it is waited for)."""
        while True:
            with self._lock:
                vol = self._volumes.get(name)
                gone = self._removing.get(name)
            if vol is not None or gone is None:
                return vol
            with gone.lock:  # its Remove holds it until the clean-up is done
                pass

    def _mountpoint(self, name: str) -> str:
        path = os.path.join(self.base_dir, name)
        # belt and braces: check_name already makes this impossible
        if os.path.dirname(path) != self.base_dir.rstrip("/"):
            raise DriverError("volume mountpoint escapes --base-dir")
        return path

    def save(self, durable: bool = True) -> None:
        """Write the state file. `durable=False` for a change of mount IDs alone: still atomic,
        not fsynced (a power cut ends every container anyway, and Docker mounts again); the
        volumes themselves (Create, Remove) always reach the disk before the answer."""
        with self._save_lock:
            with self._lock:
                records = [v.record() for v in self._volumes.values()]
            self.state.save(records, durable)

    # --- start-up ---------------------------------------------------------------------

    def load_state(self) -> None:
        """Fast part of start-up (no backend contact): Get and List can answer at once."""
        for rec in self.state.load():
            try:
                name = check_name(rec.get("name"))
            except ValueError as e:
                log.error("state: skipping a volume with a bad name: %s", e)
                continue
            self._volumes[name] = Volume.from_record(rec, self._mountpoint(name))
        if self._volumes:
            log.info("state: %d volume(s) restored", len(self._volumes))

    def clean_stale_mounts(self) -> None:
        """FUSE mounts left under --base-dir by a killed run. Runs before serving: done
        later, it could take a fresh mount made by an early request for a stale one."""
        for mp in mountmod.clean_stale_mounts(self.base_dir):
            log.info("cleaned stale mount %s", mp)

    def has_remounts(self) -> bool:
        """Whether restore() has volumes to mount again (mount IDs live before the restart)."""
        with self._lock:
            return any(v.mount_ids for v in self._volumes.values())

    def restore(self) -> None:
        """Slow part, run after the socket listens: clean dead mounts, check options, remount."""
        try:
            mountmod.fuse_binding()  # load libfuse now, so the first Mount doesn't pay for it
        except mountmod.MountError as e:
            log.error("%s", e)
        from ..fuse import ops  # noqa: F401  (and the VFS layer: imported after the socket answers)
        with self._lock:
            volumes = list(self._volumes.values())
        try:  # the backends the saved volumes and the configured remotes use, and what they connect with
            backends.warm_up({v.fs_type for v in volumes} | self.fs_ctx.named_types())
        except Exception:  # a warm-up only: the Create that needs the module will say what is wrong
            log.debug("backend warm-up failed", exc_info=True)
        for vol in volumes:
            try:
                vol.spec = self._spec(saved_options(vol.fs, vol.fs_type, vol.path, vol.options))
            except (OptionError, ValueError) as e:
                # never drop a volume: Docker would forget it. Show why in Get and retry on Mount.
                vol.error = f"cannot restore volume options: {e}"
                log.error('volume "%s": %s', vol.name, vol.error)
        for vol in volumes:
            with vol.lock:
                # under the lock: Docker may have unmounted, removed or mounted it meanwhile
                if self._volumes.get(vol.name) is not vol or not vol.mount_ids or vol.mount is not None:
                    continue
                try:
                    self._mount(vol)
                    log.info('volume "%s": remounted for %d mount ID(s) live before the restart',
                             vol.name, len(vol.mount_ids))
                except DriverError as e:
                    vol.mount_ids.clear()
                    vol.error = str(e)
                    log.error('volume "%s": remount after restart failed: %s', vol.name, e)
        if any(v.mount_ids or v.error for v in volumes):
            self.save()

    # --- the API ----------------------------------------------------------------------

    def create(self, name: Any, opts: dict[str, str] | None) -> None:
        try:
            check_name(name)
        except ValueError as e:
            raise DriverError(str(e)) from None
        opts = dict(opts or {})
        existing = self._registered(name)
        if existing is not None:
            self._check_same_options(existing, opts)
            return
        try:
            spec = self._spec(opts)
        except (OptionError, ValueError) as e:
            log.info('create volume "%s" with options %s', name, redact_options(opts))
            raise DriverError(str(e)) from None
        log.info('create volume "%s" with options %s', name, redact_options(opts, spec.fs_shown))
        if noop := no_effect_warning(spec):
            log.warning('volume "%s": %s', name, noop)
        try:
            # as rclone's Create (fs.NewFs): a network backend connects now, so a wrong host or
            # password fails `docker volume create`; the first Mount uses this backend
            backend = fsmod.new_fs(spec.resolved or spec.remote, self.fs_ctx)
        except (OSError, ValueError) as e:
            raise DriverError(f"{e.strerror or e}" if isinstance(e, OSError) else str(e)) from None
        try:
            self._register_new(name, spec, backend, opts)
        except BaseException:
            _call_quiet(backend.shutdown)
            raise

    def _register_new(self, name: str, spec: VolumeSpec, backend: Backend, opts: dict[str, str]) -> None:
        mountpoint = self._mountpoint(name)
        while True:
            created_dir = self._prepare_mountpoint(mountpoint)
            vol = Volume(name=name, mountpoint=mountpoint, created_ns=time.time_ns(), fs=spec.fs,
                         fs_type=spec.fs_type, path=spec.path, options=spec.options, spec=spec, backend=backend)
            with self._lock:
                raced = self._volumes.get(name)
                if raced is None and name not in self._removing:
                    self._volumes[name] = vol
                    break
            if raced is not None:
                _call_quiet(backend.shutdown)
                self._check_same_options(raced, opts)
                return
            self._registered(name)  # another Create's volume is being removed: wait, try again
        try:
            self.save()
        except OSError as e:
            with self._lock:
                self._volumes.pop(name, None)
            if created_dir:
                _rmdir_quiet(mountpoint)
            raise DriverError(f"failed to save state: {e}") from None

    def _check_same_options(self, vol: Volume, opts: dict[str, str]) -> None:
        saved = saved_options(vol.fs, vol.fs_type, vol.path, vol.options)
        given = {k: v for k, v in opts.items() if k}
        if "remote" in given and "fs" not in given:
            given["fs"] = given.pop("remote")
        if given != saved:
            raise DriverError(f'volume "{vol.name}" already exists with different options; to change them, '
                              f"remove the volume and create it again (docker volume rm {vol.name})")

    def _prepare_mountpoint(self, mountpoint: str) -> bool:
        """Create the mountpoint directory; True when this call created it."""
        os.makedirs(self.base_dir, mode=0o700, exist_ok=True)
        try:
            os.mkdir(mountpoint, 0o700)
            return True
        except FileExistsError:
            pass
        except OSError as e:
            if e.errno == 107:  # ENOTCONN: a dead FUSE mount from an earlier run
                mountmod.umount(mountpoint, lazy=True)
                return False
            raise DriverError(f"cannot create mountpoint {mountpoint}: {e}") from None
        if not os.path.isdir(mountpoint):
            raise DriverError(f"mountpoint {mountpoint} exists and is not a directory")
        return False

    def remove(self, name: Any) -> None:
        vol = self._get(name)
        with self._alive(vol):
            if vol.mount_ids:
                raise DriverError(ERR_IN_USE)
            with self._lock:
                del self._volumes[vol.name]
                self._removing[vol.name] = vol
            try:
                try:
                    self.save()
                except OSError as e:
                    with self._lock:
                        self._volumes[vol.name] = vol
                    raise DriverError(f"failed to save state: {e}") from None
                if vol.backend is not None:
                    vol.backend.shutdown()
                _rmdir_quiet(vol.mountpoint)
                self._drop_cache(vol.name)
            finally:
                with self._lock:
                    del self._removing[vol.name]
        log.info('removed volume "%s" (its data stays on the remote)', vol.name)

    def _drop_cache(self, name: str) -> None:
        """A new volume of the same name must not inherit this one's cache. Anything never
        uploaded is kept aside under <cache-dir>/removed/, never deleted (Cache.drop_volume)."""
        from ..vfs.cache import Cache

        Cache.drop_volume(self.cache_dir, name)

    def mount(self, name: Any, mount_id: Any) -> str:
        vol = self._get(name)
        try:
            check_mount_id(mount_id)
        except ValueError as e:
            raise DriverError(str(e)) from None
        with self._alive(vol):
            if vol.mount is not None and not vol.mount.alive:
                self._drop_dead_mount(vol)
            if vol.mount is None:
                self._mount(vol)
            if mount_id not in vol.mount_ids:
                vol.mount_ids.append(mount_id)
                try:
                    self.save(durable=False)
                except OSError as e:
                    vol.mount_ids.remove(mount_id)
                    if not vol.mount_ids:
                        self._unmount(vol)
                    raise DriverError(f"failed to save state: {e}") from None
        return vol.mountpoint

    def _mount(self, vol: Volume) -> None:
        """Build the backend and VFS and mount them. Called with vol.lock held."""
        try:
            if vol.spec is None:
                vol.spec = self._spec(saved_options(vol.fs, vol.fs_type, vol.path, vol.options))
            spec = vol.spec
            if vol.backend is None:
                vol.backend = fsmod.new_fs(spec.resolved or spec.remote, self.fs_ctx)
            backend = vol.backend
            ensure_root(backend)
            vfs = build_vfs(vol.name, backend, spec, self.cache_dir, self.transfers, self.buffer_size)
            self._prepare_mountpoint(vol.mountpoint)
            if mountmod.is_mountpoint(vol.mountpoint):
                mountmod.umount(vol.mountpoint, lazy=True)
            devname = spec.values.devname or fsmod.redact(spec.remote)
            from ..fuse.ops import FuseOps

            m = mountmod.FuseMount(vol.mountpoint, FuseOps(vfs), spec.values, devname, on_exit=self._mount_died)
            m.start(timeout=min(float(spec.values.daemon_wait) or 30.0, 60.0))
        except DriverError:
            raise
        except (OptionError, ValueError, mountmod.MountError) as e:
            raise DriverError(f"failed to mount FUSE fs: {e}") from None
        except OSError as e:
            raise DriverError(f"failed to mount FUSE fs: {e.strerror or e}"
                              f"{': ' + str(e.filename) if e.filename else ''}") from None
        vol.backend, vol.vfs, vol.mount, vol.error = backend, vfs, m, ""
        log.info('mounted volume "%s" at %s', vol.name, vol.mountpoint)

    def unmount(self, name: Any, mount_id: Any) -> None:
        vol = self._get(name)
        with self._alive(vol):
            if mount_id not in vol.mount_ids:
                # dockerd loses and repeats Unmounts; an unknown ID is not an error
                log.info('volume "%s": unmount of unknown mount ID ignored', vol.name)
                return
            vol.mount_ids.remove(mount_id)
            if not vol.mount_ids:
                self._unmount(vol)
            self.save(durable=False)

    def _unmount(self, vol: Volume, lazy: bool = False) -> None:
        m, vol.mount, vol.vfs = vol.mount, None, None
        if m is None:
            return
        try:
            m.unmount(lazy=lazy)
            log.info('unmounted volume "%s"', vol.name)
        except OSError as e:
            log.error('volume "%s": unmount failed: %s', vol.name, e)

    def _mount_died(self, m: mountmod.FuseMount) -> None:
        """The FUSE loop of a mount ended without us asking (external fusermount -u, crash)."""
        for vol in list(self._volumes.values()):
            if vol.mount is m:
                threading.Thread(target=self._cleanup_dead, args=(vol, m), daemon=True).start()

    def _cleanup_dead(self, vol: Volume, m: mountmod.FuseMount) -> None:
        with vol.lock:
            if vol.mount is m:
                log.warning('volume "%s" was unmounted externally; forgetting its %d mount ID(s)',
                            vol.name, len(vol.mount_ids))
                self._drop_dead_mount(vol)
                vol.mount_ids.clear()
                try:
                    self.save(durable=False)
                except OSError as e:
                    log.error("failed to save state: %s", e)

    def _drop_dead_mount(self, vol: Volume) -> None:
        vol.mount = vol.vfs = None
        try:
            if mountmod.is_mountpoint(vol.mountpoint):
                mountmod.umount(vol.mountpoint, lazy=True)
        except OSError as e:
            log.error('volume "%s": cannot remove dead mount: %s', vol.name, e)

    def path(self, name: Any) -> str:
        return self._get(name).mountpoint

    def get(self, name: Any) -> dict[str, Any]:
        return self._get(name).info()

    def list(self) -> list[dict[str, str]]:
        with self._lock:
            vols = sorted(self._volumes.values(), key=lambda v: v.name)
        return [{"Name": v.name, "Mountpoint": v.mountpoint} for v in vols]

    # --- signals and shutdown ---------------------------------------------------------

    def forget_caches(self) -> int:
        n = 0
        for vol in list(self._volumes.values()):
            vfs = vol.vfs
            if vfs is not None:
                vfs.forget_all()
                n += 1
        return n

    # --- remote control -------------------------------------------------------------------

    def active_vfses(self) -> list[ActiveVFS]:
        """The VFS of every mounted volume, by volume name."""
        from ..vfs.rc import ActiveVFS

        with self._lock:
            vols = sorted(self._volumes.values(), key=lambda v: v.name)
        out = []
        for vol in vols:
            vfs = vol.vfs
            if vfs is None:
                continue
            spellings = {vol.fs, vol.spec.fs_string if vol.spec is not None else ""} - {""}
            out.append(ActiveVFS(vol.name, vfs_name(vfs.backend), vfs, tuple(sorted(spellings))))
        return out

    def vfs_by_name(self, name: str) -> list[ActiveVFS]:
        """The active VFSes `name` designates: a Docker volume name designates one; rclone's VFS
        name or the fs string a volume was created with may designate several."""
        active = self.active_vfses()
        by_volume = [a for a in active if a.volume == name]
        if by_volume:
            return by_volume
        return [a for a in active if name == a.name or name in a.spellings]

    def has_volume(self, name: str) -> bool:
        return name in self._volumes

    def shutdown(self, timeout: float = 4.0) -> None:
        """Unmount everything (in parallel, bounded), forget mount IDs, save state."""
        vols = [v for v in list(self._volumes.values()) if v.mount is not None]
        threads = []
        for vol in vols:
            t = threading.Thread(target=self._unmount, args=(vol,), daemon=True)
            t.start()
            threads.append((vol, t))
        deadline = time.monotonic() + timeout
        for vol, t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.error('volume "%s": unmount still running at exit; detaching it', vol.name)
                _call_quiet(mountmod.umount, vol.mountpoint, True)
        for vol in list(self._volumes.values()):
            vol.mount_ids.clear()  # rclone: mounts are never persisted across a clean exit
            if vol.backend is not None:
                _call_quiet(vol.backend.shutdown)
        try:
            self.save()
        except OSError as e:
            log.error("failed to save state at exit: %s", e)


def _rmdir_quiet(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _call_quiet(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception as e:
        log.debug("ignored at exit: %s", e)

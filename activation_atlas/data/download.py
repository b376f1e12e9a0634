"""Fetching files by URL, verified by sha256, and extracting archives without escaping the target.

A download streams to `<name>.partial` beside its destination, with progress in the log, a timeout
per network operation and retries with exponential backoff; the file is renamed into place only
once its sha256 matches. Without a published checksum, the first download records its hash in a pin
file and every later download must match it (trust on first use).
"""

from __future__ import annotations

import hashlib
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from activation_atlas.runtime import RunError, atomic_output, write_text

CHUNK = 1 << 20


class ChecksumMismatch(RunError):
    """The downloaded bytes are not the expected ones; retrying will not help."""


class ArchiveRefused(RunError):
    """An archive member would land outside the target folder (or is a link or device)."""


def fetch_once(url: str, partial: Path, timeout: float, log) -> str:
    """Stream url into `partial`; returns the sha256 of what arrived. A short read is an error."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
        expected = response.headers.get("Content-Length")
        total = int(expected) if expected is not None else None
        received, last_report = 0, time.monotonic()
        for block in iter(lambda: response.read(CHUNK), b""):
            out.write(block)
            digest.update(block)
            received += len(block)
            if time.monotonic() - last_report > 2.0:
                of = f" of {total / 1e6:.1f}" if total else ""
                log(f"{received / 1e6:.1f}{of} MB")
                last_report = time.monotonic()
    if total is not None and received != total:
        raise OSError(f"truncated download of {url}: {received} of {total} bytes")
    log(f"received {received / 1e6:.2f} MB")
    return digest.hexdigest()


def download(
    url: str,
    dest: Path | str,
    *,
    sha256: str | None = None,
    pin_file: Path | str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 2.0,
    log=print,
) -> str:
    """Download url to dest and verify it; returns its sha256.

    The expected hash is `sha256` when given, otherwise the one in `pin_file` when that exists;
    with neither, the hash of this download is written to `pin_file`. A server error, a timeout or a
    truncated transfer is retried up to `retries` times (waits backoff, 2·backoff, ...); a checksum
    mismatch is not. No file is left behind on failure.
    """
    pin = Path(pin_file) if pin_file is not None else None
    expected = sha256.lower() if sha256 else (pin.read_text().split()[0] if pin and pin.exists() else None)
    with atomic_output(dest) as partial:
        for attempt in range(1, retries + 2):
            try:
                log(f"downloading {url} (attempt {attempt} of {retries + 1})")
                actual = fetch_once(url, partial, timeout, log)
                break
            except (urllib.error.URLError, OSError, TimeoutError) as error:
                if isinstance(error, urllib.error.HTTPError) and error.code < 500:
                    # 4xx: the request is wrong; repeating it will not help
                    raise RunError(f"download of {url} failed: {error}") from None
                if attempt > retries:
                    raise RunError(f"download of {url} failed after {attempt} attempts: {error}") from None
                wait = backoff * 2 ** (attempt - 1)
                log(f"attempt {attempt} failed ({error}); retrying in {wait:.1f} s")
                time.sleep(wait)
        if expected is not None and actual != expected:
            source = "the configured sha256" if sha256 else f"the pin file {pin}"
            raise ChecksumMismatch(f"sha256 of {url} is {actual}, but {source} expects {expected}")
    if expected is None and pin is not None:
        write_text(pin, f"{actual}  {url}\n")
        log(f"no checksum given: recorded {actual} in {pin}; later downloads must match it")
    log(f"verified sha256 {actual}")
    return actual


def safe_member_path(target: Path, name: str) -> Path:
    """Where an archive member named `name` would land, refusing anything outside target."""
    posix = PurePosixPath(name)
    if posix.is_absolute() or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRefused(f"archive member {name!r} has an absolute path")
    if ".." in posix.parts:
        raise ArchiveRefused(f"archive member {name!r} contains '..'")
    path = (target / posix).resolve()
    if path != target and target not in path.parents:
        raise ArchiveRefused(f"archive member {name!r} would be written outside {target}")
    return path


def check_tar_member(target: Path, member: tarfile.TarInfo) -> None:
    path = safe_member_path(target, member.name)
    if member.issym() or member.islnk():
        link_base = path.parent if member.issym() else target
        link_target = (link_base / member.linkname).resolve()
        if PurePosixPath(member.linkname).is_absolute() or (
            link_target != target and target not in link_target.parents
        ):
            raise ArchiveRefused(f"archive link {member.name!r} → {member.linkname!r} leaves {target}")
    elif not (member.isfile() or member.isdir()):
        raise ArchiveRefused(f"archive member {member.name!r} is a device or fifo")


def extract_archive(archive: Path | str, target: Path | str, log=print) -> Path:
    """Extract a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip into target, all or nothing.

    Every member is checked before anything is written: absolute paths, '..', links that leave the
    target and device files refuse the whole archive. Extraction goes to `<target>.partial` and is
    renamed when complete.
    """
    archive, target = Path(archive), Path(target)
    with atomic_output(target) as partial:
        partial.mkdir()
        root = partial.resolve()
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    safe_member_path(root, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise ArchiveRefused(f"archive member {info.filename!r} is a symbolic link")
                z.extractall(root)
                count = len(z.infolist())
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                members = t.getmembers()
                for member in members:
                    check_tar_member(root, member)
                t.extractall(root, filter="data")
                count = len(members)
        else:
            raise RunError(f"{archive} is not a tar or zip archive")
    log(f"extracted {count} members of {archive.name} into {target}")
    return target

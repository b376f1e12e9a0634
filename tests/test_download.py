import hashlib
import io
import tarfile
import zipfile

import pytest

from activation_atlas.data.download import ArchiveRefused, ChecksumMismatch, download, extract_archive
from activation_atlas.runtime import RunError
from tools.http_server import Routes, serve

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def quiet(_):
    pass


@pytest.fixture
def routes():
    r = Routes()
    r.files["/file.bin"] = PAYLOAD
    return r


def test_download_verifies_the_configured_checksum(routes, tmp_path):
    with serve(routes) as base:
        assert download(f"{base}/file.bin", tmp_path / "f.bin", sha256=PAYLOAD_SHA, log=quiet) == PAYLOAD_SHA
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_wrong_checksum_names_both_hashes_and_leaves_no_file(routes, tmp_path):
    wrong = "0" * 64
    with serve(routes) as base, pytest.raises(ChecksumMismatch) as error:
        download(f"{base}/file.bin", tmp_path / "f.bin", sha256=wrong, retries=0, log=quiet)
    assert PAYLOAD_SHA in str(error.value) and wrong in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_first_download_pins_the_hash_and_later_ones_must_match(routes, tmp_path):
    pin = tmp_path / "pins" / "file.sha256"
    with serve(routes) as base:
        download(f"{base}/file.bin", tmp_path / "a.bin", pin_file=pin, log=quiet)
        assert pin.read_text().split()[0] == PAYLOAD_SHA
        download(f"{base}/file.bin", tmp_path / "b.bin", pin_file=pin, log=quiet)  # same bytes: fine
        routes.files["/file.bin"] = PAYLOAD[::-1]  # the server changed
        with pytest.raises(ChecksumMismatch, match="pin file"):
            download(f"{base}/file.bin", tmp_path / "c.bin", pin_file=pin, log=quiet)
    assert not (tmp_path / "c.bin").exists()


def test_server_errors_are_retried_with_backoff(routes, tmp_path):
    routes.failures["/file.bin"] = 2
    messages = []
    with serve(routes) as base:
        download(
            f"{base}/file.bin", tmp_path / "f.bin", sha256=PAYLOAD_SHA, retries=3, backoff=0.01, log=messages.append
        )
    assert routes.requests.count("/file.bin") == 3
    assert sum("retrying in" in m for m in messages) == 2
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_persistent_failure_gives_up_after_the_retries(routes, tmp_path):
    routes.failures["/file.bin"] = 10
    with serve(routes) as base, pytest.raises(RunError, match="failed after 3 attempts"):
        download(f"{base}/file.bin", tmp_path / "f.bin", retries=2, backoff=0.01, log=quiet)
    assert routes.requests.count("/file.bin") == 3
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_is_detected_and_retried(routes, tmp_path):
    routes.truncate.add("/file.bin")
    with serve(routes) as base, pytest.raises(RunError, match="truncated"):
        download(f"{base}/file.bin", tmp_path / "f.bin", retries=1, backoff=0.01, log=quiet)
    assert routes.requests.count("/file.bin") == 2
    assert list(tmp_path.iterdir()) == []


def test_missing_file_is_not_retried(routes, tmp_path):
    with serve(routes) as base, pytest.raises(RunError, match="failed: HTTP Error 404"):
        download(f"{base}/nothing.bin", tmp_path / "f.bin", retries=3, backoff=0.01, log=quiet)
    assert routes.requests == ["/nothing.bin"]


def make_tar(members, mode="w:gz"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as t:
        for name, data, kind, link in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = link
                t.addfile(info)
    return buffer.getvalue()


def test_tgz_extracts_into_the_target(tmp_path):
    archive = tmp_path / "a.tgz"
    archive.write_bytes(
        make_tar(
            [
                ("imagenette/train/n01/a.JPEG", b"x", "file", None),
                ("imagenette/val/n01/b.JPEG", b"yy", "file", None),
                ("imagenette/link", None, "symlink", "train/n01/a.JPEG"),
            ]
        )
    )
    out = extract_archive(archive, tmp_path / "out", log=quiet)
    assert (out / "imagenette/val/n01/b.JPEG").read_bytes() == b"yy"
    assert (out / "imagenette/link").resolve() == (out / "imagenette/train/n01/a.JPEG").resolve()
    assert not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize(
    "member, message",
    [
        (("../evil.txt", b"x", "file", None), "contains '..'"),
        (("a/../../evil.txt", b"x", "file", None), "contains '..'"),
        (("/tmp/evil.txt", b"x", "file", None), "absolute path"),
        (("a/link", None, "symlink", "/etc/passwd"), "leaves"),
        (("a/link", None, "symlink", "../../outside"), "leaves"),
        (("a/hard", None, "hardlink", "../outside"), "leaves"),
    ],
)
def test_tar_members_leaving_the_target_refuse_the_whole_archive(tmp_path, member, message):
    archive = tmp_path / "a.tar"
    archive.write_bytes(make_tar([("ok.txt", b"fine", "file", None), member], mode="w"))
    with pytest.raises(ArchiveRefused, match=message):
        extract_archive(archive, tmp_path / "out", log=quiet)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_zip_with_dotdot_is_refused_and_a_clean_zip_extracts(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../evil.txt", "x")
    with pytest.raises(ArchiveRefused, match="contains '..'"):
        extract_archive(bad, tmp_path / "out", log=quiet)
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("d/ok.txt", "fine")
    assert (extract_archive(good, tmp_path / "out", log=quiet) / "d/ok.txt").read_text() == "fine"

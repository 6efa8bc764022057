"""`kubetune-job fetch` (a serving pod's init step) verifies a local directory exactly as an S3 one: the
`_COMPLETE` marker must be there, every file it lists must match its size and sha256, only listed files are
copied, each as a regular file, and no symbolic link is followed out of the model directory. Crafted
directories, through the command itself; the same crafted directory in S3 (moto) is refused alike."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kubetune_jobs import cli, storage

WEIGHTS = b"weights" * 100
PASSWD = Path("/etc/passwd")


def entry(data: bytes) -> dict[str, object]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def model_dir(root: Path, files: dict[str, bytes], marker: dict[str, object] | None) -> Path:
    """A model directory as a writer (honest or not) left it; `marker` None: no marker at all."""
    root.mkdir(parents=True)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    if marker is not None:
        (root / storage.COMPLETE_MARKER).write_text(json.dumps(marker))
    return root


def fetch(src: str, dest: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = cli.main(["fetch", "--model", src, "--dest", str(dest)])
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    return code, err


def copied(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()} \
        if dest.exists() else {}


def test_a_complete_local_directory_is_copied_verified_and_without_its_marker(tmp_path: Path, capsys) -> None:
    files = {"model.bin": WEIGHTS, "sub/config.json": b"{}"}
    src = model_dir(tmp_path / "model", files, {rel: entry(data) for rel, data in files.items()})
    code, err = fetch(str(src), tmp_path / "dest", capsys)
    assert code == 0, err
    assert copied(tmp_path / "dest") == files


def test_a_local_directory_without_its_marker_is_refused(tmp_path: Path, capsys) -> None:
    src = model_dir(tmp_path / "model", {"model.bin": WEIGHTS}, None)
    code, err = fetch(str(src), tmp_path / "dest", capsys)
    assert code == 1 and "is not a complete directory (no _COMPLETE marker)" in err
    assert copied(tmp_path / "dest") == {}


def test_a_local_file_that_does_not_match_its_digest_is_refused_and_removed(tmp_path: Path, capsys) -> None:
    tampered = b"WEIGHTS" + WEIGHTS[7:]  # the same size: only the digest tells
    src = model_dir(tmp_path / "model", {"model.bin": tampered}, {"model.bin": entry(WEIGHTS)})
    code, err = fetch(str(src), tmp_path / "dest", capsys)
    assert code == 1 and "'model.bin' does not match its _COMPLETE entry" in err
    assert copied(tmp_path / "dest") == {}


@pytest.mark.parametrize("listed", [True, False], ids=["listed", "unlisted"])
def test_a_link_to_etc_passwd_is_never_followed(tmp_path: Path, capsys, listed: bool) -> None:
    """Listed with passwd's own size and digest (a writer can know them), or only lying in the directory."""
    secret = PASSWD.read_bytes()
    marker = {"model.bin": entry(WEIGHTS)} | ({"passwd": entry(secret)} if listed else {})
    src = model_dir(tmp_path / "model", {"model.bin": WEIGHTS}, marker)
    (src / "passwd").symlink_to(PASSWD)
    code, err = fetch(str(src), tmp_path / "dest", capsys)
    if listed:
        assert code == 1 and "'passwd': a symbolic link on disk takes it outside the directory" in err
        assert copied(tmp_path / "dest") == {}
    else:
        assert code == 0, err
        assert copied(tmp_path / "dest") == {"model.bin": WEIGHTS}  # only what the marker lists
    assert not any(secret in data for data in copied(tmp_path / "dest").values())


def test_a_directory_link_out_is_not_followed(tmp_path: Path, capsys) -> None:
    secret = PASSWD.read_bytes()
    src = model_dir(tmp_path / "model", {}, {"etc/passwd": entry(secret)})
    (src / "etc").symlink_to("/etc")
    code, err = fetch(str(src), tmp_path / "dest", capsys)
    assert code == 1 and "'etc/passwd': a symbolic link on disk takes it outside the directory" in err
    assert copied(tmp_path / "dest") == {}


def test_a_link_that_stays_inside_is_not_copied_as_a_link_either(tmp_path: Path, capsys) -> None:
    src = model_dir(tmp_path / "model", {"model.bin": WEIGHTS}, {"model.bin": entry(WEIGHTS),
                                                                 "alias.bin": entry(WEIGHTS)})
    (src / "alias.bin").symlink_to("model.bin")
    code, err = fetch(str(src), tmp_path / "dest", capsys)
    assert code == 1 and "'alias.bin' is listed in _COMPLETE but is not a regular file" in err
    assert copied(tmp_path / "dest") == {}


@pytest.mark.parametrize("shape", ["self", "pair"])
def test_a_link_loop_is_refused(tmp_path: Path, capsys, shape: str) -> None:
    src = model_dir(tmp_path / "model", {"model.bin": WEIGHTS}, {"model.bin": entry(WEIGHTS),
                                                                 "loop.bin": entry(WEIGHTS)})
    if shape == "self":
        (src / "loop.bin").symlink_to("loop.bin")
    else:
        (src / "loop.bin").symlink_to("other.bin")
        (src / "other.bin").symlink_to("loop.bin")
    code, err = fetch(str(src), tmp_path / "dest", capsys)
    assert code == 1 and "'loop.bin': a symbolic link on disk loops" in err
    assert copied(tmp_path / "dest") == {}


def test_the_s3_path_refuses_the_same_tampered_file_with_the_same_words(s3_server: str, tmp_path: Path,
                                                                       capsys) -> None:
    loc = storage.location(f"{s3_server}/models/m")
    loc.child("model.bin").write_bytes(b"WEIGHTS" + WEIGHTS[7:])
    loc.child(storage.COMPLETE_MARKER).write_bytes(json.dumps({"model.bin": entry(WEIGHTS)}).encode())
    code, err = fetch(loc.uri, tmp_path / "dest", capsys)
    assert code == 1 and "'model.bin' does not match its _COMPLETE entry" in err
    assert copied(tmp_path / "dest") == {}
    storage.location(f"{s3_server}/models/bare").child("model.bin").write_bytes(WEIGHTS)
    code, err = fetch(f"{s3_server}/models/bare", tmp_path / "dest", capsys)
    assert code == 1 and "is not a complete directory (no _COMPLETE marker)" in err

"""A `_COMPLETE` manifest comes from the store and is not trusted: crafted ones are refused whole, with
the bad entry named and nothing written outside (or inside) the destination; downloads are verified.
Against S3 over HTTP (moto's server) and the local store."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from kubetune_jobs import models, storage
from kubetune_jobs.train.checkpoints import CheckpointStore

GOOD = b"weights" * 100
GOOD_ENTRY = {"size": len(GOOD), "sha256": hashlib.sha256(GOOD).hexdigest()}


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "s3":
        return request.getfixturevalue("s3_server")
    return str(tmp_path / "store")


def publish_crafted(loc: storage.Location, manifest: object, files: dict[str, bytes] | None = None) -> None:
    """Objects as a hostile (or broken) writer would leave them, the marker last."""
    for rel, data in (files or {"model.bin": GOOD}).items():
        loc.child(rel).write_bytes(data)
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    loc.child(storage.COMPLETE_MARKER).write_bytes(raw)


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


BAD_NAMES = [
    ("../escaped", "'.' or '..' component"),
    ("sub/../../escaped", "'.' or '..' component"),
    ("./model.bin", "'.' or '..' component"),
    ("sub//model.bin", "empty component"),
    ("sub/", "empty component"),
    ("", "is empty"),
    ("..\\escaped", "backslash"),
    ("sub\\..\\..\\escaped", "backslash"),
    ("C:escaped", "drive letter"),
    ("sub/_COMPLETE", "called _COMPLETE"),
    ("model\x00.bin", "control character"),
    ("model\n.bin", "control character"),
    ("\ud800.bin", "lone surrogate"),
    ("x" * 2000, "longer than"),
]


@pytest.mark.parametrize(("name", "why"), BAD_NAMES, ids=[repr(n)[:24] for n, _ in BAD_NAMES])
def test_a_name_that_could_leave_the_destination_refuses_the_directory(root: str, tmp_path: Path, name: str,
                                                                       why: str) -> None:
    loc = storage.location(f"{root}/evil")
    publish_crafted(loc, {"model.bin": GOOD_ENTRY, name: GOOD_ENTRY})
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(storage.ManifestError) as err:
        loc.download_dir(dest, copy=True)
    message = str(err.value)
    assert why in message and repr(name)[:40] in message and loc.uri in message
    assert files_under(tmp_path / "deep") == []  # refused whole: not even the good file was fetched
    assert not (tmp_path / "deep" / "escaped").exists() and not (tmp_path / "escaped").exists()


def test_an_absolute_name_would_have_written_outside_and_is_refused(root: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "escaped"
    loc = storage.location(f"{root}/evil")
    # The object exists where a naive `dest / name` download would fetch it from (key `evil/<abs path>`).
    publish_crafted(loc, {str(outside): GOOD_ENTRY}, {"model.bin": GOOD, str(outside).lstrip("/"): GOOD})
    with pytest.raises(storage.ManifestError, match="is absolute"):
        loc.download_dir(tmp_path / "dest", copy=True)
    assert not outside.exists() and not (tmp_path / "dest").exists()


BAD_ENTRIES = [
    ({"size": -1, "sha256": GOOD_ENTRY["sha256"]}, "size -1"),
    ({"size": 1.5, "sha256": GOOD_ENTRY["sha256"]}, "size 1.5"),
    ({"size": "700", "sha256": GOOD_ENTRY["sha256"]}, "size 700"),
    ({"size": True, "sha256": GOOD_ENTRY["sha256"]}, "size True"),
    ({"sha256": GOOD_ENTRY["sha256"]}, "size None"),
    ({"size": 10**400, "sha256": GOOD_ENTRY["sha256"]}, "more than"),
    ({"size": 700, "sha256": "abc"}, "sha256 'abc'"),
    ({"size": 700, "sha256": GOOD_ENTRY["sha256"].upper()}, "64 lower-case hex"),
    ({"size": 700, "sha256": None}, "sha256 'None'"),
    ({"size": 700, "sha256": ["a"] * 64}, "64 lower-case hex"),
    ("700", "is not an object"),
]


@pytest.mark.parametrize(("entry", "why"), BAD_ENTRIES, ids=[w for _, w in BAD_ENTRIES])
def test_malformed_sizes_and_digests_are_refused(root: str, tmp_path: Path, entry: object, why: str) -> None:
    loc = storage.location(f"{root}/evil")
    publish_crafted(loc, {"model.bin": entry})
    with pytest.raises(storage.ManifestError, match="'model.bin'") as err:
        loc.download_dir(tmp_path / "dest", copy=True)
    assert why in str(err.value)
    assert files_under(tmp_path / "dest") == []


@pytest.mark.parametrize(("manifest", "why"), [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"[]", "not a JSON object"),
    ({"a": GOOD_ENTRY, "a/b": GOOD_ENTRY}, "'a' is both a file and a directory"),
])
def test_unreadable_or_contradictory_manifests_are_refused(root: str, tmp_path: Path, manifest: object,
                                                           why: str) -> None:
    loc = storage.location(f"{root}/evil")
    publish_crafted(loc, manifest)
    with pytest.raises(storage.ManifestError, match="refusing the directory") as err:
        loc.download_dir(tmp_path / "dest", copy=True)
    assert why in str(err.value)


def test_total_size_has_a_limit(root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBETUNE_MAX_DIR_BYTES", str(len(GOOD) * 2 - 1))
    loc = storage.location(f"{root}/big")
    publish_crafted(loc, {"model.bin": GOOD_ENTRY, "copy.bin": GOOD_ENTRY}, {"model.bin": GOOD, "copy.bin": GOOD})
    with pytest.raises(storage.ManifestError, match="adds up to more than .* at entry 'copy.bin'"):
        loc.download_dir(tmp_path / "dest", copy=True)
    monkeypatch.setenv("KUBETUNE_MAX_DIR_BYTES", str(len(GOOD) * 2))
    back = loc.download_dir(tmp_path / "dest", copy=True)
    assert (back / "copy.bin").read_bytes() == GOOD


def test_more_than_the_free_disk_is_refused_before_fetching(s3_server: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setenv("KUBETUNE_MAX_DIR_BYTES", str(free * 4))
    loc = storage.location(f"{s3_server}/huge")
    publish_crafted(loc, {"model.bin": {"size": free + 2**30, "sha256": GOOD_ENTRY["sha256"]}})
    with pytest.raises(storage.StorageError, match="only .* free"):
        loc.download_dir(tmp_path / "dest")
    assert files_under(tmp_path / "dest") == []


@pytest.mark.parametrize("lie", ["sha256", "size"])
def test_a_download_that_does_not_match_its_entry_is_removed(s3_server: str, tmp_path: Path, lie: str) -> None:
    loc = storage.location(f"{s3_server}/tampered")
    entry = dict(GOOD_ENTRY, sha256=hashlib.sha256(b"other").hexdigest()) if lie == "sha256" else dict(
        GOOD_ENTRY, size=len(GOOD) + 1)
    publish_crafted(loc, {"config.json": {"size": 2, "sha256": hashlib.sha256(b"{}").hexdigest()},
                          "model.bin": entry}, {"config.json": b"{}", "model.bin": GOOD})
    dest = tmp_path / "dest"
    with pytest.raises(storage.StorageError, match="'model.bin' does not match its _COMPLETE entry"):
        loc.download_dir(dest)
    assert not (dest / "model.bin").exists()
    assert [p.name for p in files_under(dest)] in ([], ["config.json"])  # only verified files stay


def test_a_symlink_in_the_destination_cannot_redirect_a_write(s3_server: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    loc = storage.location(f"{s3_server}/plain")
    publish_crafted(loc, {"sub/model.bin": GOOD_ENTRY}, {"sub/model.bin": GOOD})
    with pytest.raises(storage.ManifestError, match="symbolic link"):
        loc.download_dir(dest)
    assert list(outside.iterdir()) == []


def test_a_local_store_refuses_links_out_and_truncated_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(GOOD)
    store = tmp_path / "store" / "model"
    store.mkdir(parents=True)
    (store / "model.bin").symlink_to(secret)
    loc = storage.location(store)
    loc.child(storage.COMPLETE_MARKER).write_text(json.dumps({"model.bin": GOOD_ENTRY}))
    with pytest.raises(storage.ManifestError, match="'model.bin': a symbolic link on disk takes it outside"):
        loc.download_dir(tmp_path / "copy", copy=True)
    assert not (tmp_path / "copy").exists()

    (store / "model.bin").unlink()
    (store / "real.bin").write_bytes(GOOD)
    (store / "model.bin").symlink_to(store / "real.bin")  # stays inside, but is still not what was published
    with pytest.raises(storage.ManifestError, match="'model.bin' is listed in _COMPLETE but is not a regular file"):
        loc.download_dir(tmp_path / "copy", copy=True)

    (store / "model.bin").unlink()
    (store / "model.bin").write_bytes(GOOD[:-1])
    with pytest.raises(storage.StorageError, match="has 699 bytes, its manifest says 700"):
        loc.download_dir(tmp_path / "copy")


def test_a_published_directory_round_trips_and_is_verified(root: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "model.bin").write_bytes(GOOD)
    (src / "sub" / "config.json").write_text("{}")
    loc = storage.location(f"{root}/fine")
    loc.upload_dir(src)
    assert set(loc.manifest()) == {"model.bin", "sub/config.json"}
    back = loc.download_dir(tmp_path / "back", copy=True)
    assert (back / "model.bin").read_bytes() == GOOD and (back / "sub" / "config.json").read_text() == "{}"


def test_an_s3_model_with_a_crafted_manifest_is_not_resolved(s3_server: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBETUNE_CACHE", str(tmp_path / "cache"))
    loc = storage.location(f"{s3_server}/ns/run/stages/chat/merged")
    publish_crafted(loc, {"config.json": GOOD_ENTRY, "../../../../escaped": GOOD_ENTRY}, {"config.json": GOOD})
    with pytest.raises(storage.ManifestError, match="'../../../../escaped'"):
        models.resolve(loc.uri)
    assert files_under(tmp_path) == []


def test_checkpoint_listing_ignores_names_that_are_not_plain_steps(root: str, tmp_path: Path) -> None:
    out = storage.location(f"{root}/stage")
    store = CheckpointStore(out, keep=5)
    src = tmp_path / "ckpt"
    src.mkdir()
    (src / "trainer_state.json").write_text("{}")
    store.publish(src, 4)
    for name in ("step-\u0661\u0662", "step-" + "9" * 40, "step-+5", "step-5 ", "step--1", "Step-6"):
        out.child("checkpoints", name, "trainer_state.json").write_bytes(b"{}")
        out.child("checkpoints", name, storage.COMPLETE_MARKER).write_bytes(b"{}")
    assert store.complete_steps() == [4]
    assert store.latest() == 4

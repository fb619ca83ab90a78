"""Raw files as downloaded: the triplet files inside .zip and .gz archives, read as streams, give
the deliverables of the unpacked files; a compressed file under a plain name is named as such."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
import zipfile

import numpy as np
import pytest

from msd_tasks.errors import InputError
from msd_tasks.formats.raw import CHALLENGE_ARCHIVE, RAW_FILES, RawSource, raw_source
from msd_tasks.graph.build import DELIVERABLES
from msd_tasks.stages.triplets import read_triplets
from tests.conftest import Pipeline

LINES = b"u1\tSOA\t3\nu2\tSOB\t1\r\nu1\tSOB\t12\n"
EVAL = "EvalDataYear1MSDWebsite"


def as_downloaded(raw_dir, target):
    """`raw_dir` with the triplet files packed as the real downloads are: train_triplets.txt.zip
    (member train_triplets.txt) and EvalDataYear1MSDWebsite.zip (a folder of that name, with
    a README beside the two files, as in the real archive)."""
    shutil.copytree(raw_dir, target)
    with zipfile.ZipFile(target / "train_triplets.txt.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(target / "train_triplets.txt", "train_triplets.txt")
    (target / "train_triplets.txt").unlink()
    with zipfile.ZipFile(target / CHALLENGE_ARCHIVE, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{EVAL}/README.txt", "year 1 evaluation data\n")
        for kind in ("visible", "hidden"):
            archive.write(target / RAW_FILES[kind], RAW_FILES[kind])
    shutil.rmtree(target / EVAL)
    return target


@pytest.mark.unit
def test_each_form_of_a_triplet_file_is_found_plain_first(tmp_path):
    assert raw_source(tmp_path, "train") == RawSource(tmp_path / "train_triplets.txt")  # missing
    (tmp_path / CHALLENGE_ARCHIVE).write_bytes(b"")
    assert raw_source(tmp_path, "hidden") == RawSource(
        tmp_path / CHALLENGE_ARCHIVE, "zip", "year1_test_triplets_hidden.txt"
    )
    (tmp_path / EVAL).mkdir()
    (tmp_path / f"{RAW_FILES['hidden']}.gz").write_bytes(b"")
    assert raw_source(tmp_path, "hidden") == RawSource(
        tmp_path / f"{RAW_FILES['hidden']}.gz", "gzip"
    )
    (tmp_path / RAW_FILES["hidden"]).write_bytes(b"")
    assert raw_source(tmp_path, "hidden") == RawSource(tmp_path / RAW_FILES["hidden"])
    (tmp_path / "train_triplets.txt.zip").write_bytes(b"")
    assert raw_source(tmp_path, "train").member == "train_triplets.txt"
    assert raw_source(tmp_path, "msd") == RawSource(tmp_path / RAW_FILES["msd"])  # never packed


@pytest.mark.unit
@pytest.mark.parametrize("member", ["train_triplets.txt", "some/folder/train_triplets.txt"])
def test_zip_and_gzip_streams_read_like_the_plain_file(tmp_path, member):
    plain = tmp_path / "train_triplets.txt"
    plain.write_bytes(LINES)
    packed = tmp_path / "train_triplets.txt.zip"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("other.txt", "not this one\n")
        archive.writestr(member, LINES)
    squeezed = tmp_path / "train_triplets.txt.gz"
    squeezed.write_bytes(gzip.compress(LINES))

    expected = read_triplets(plain)
    for source in (RawSource(packed, "zip", "train_triplets.txt"), RawSource(squeezed, "gzip")):
        got = read_triplets(source)
        assert got.user_ids.to_pylist() == ["u1", "u2"]
        for column in ("user_code", "song_code", "play_count"):
            assert np.array_equal(getattr(got, column), getattr(expected, column))
        assert got.song_ids.equals(expected.song_ids)
        assert source.text_bytes() == len(LINES)


@pytest.mark.unit
def test_a_bad_line_in_an_archive_is_named_by_archive_member_and_line(tmp_path):
    packed = tmp_path / "train_triplets.txt.zip"
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("train_triplets.txt", LINES + b"u3\tSOC\tmany\n")
    with pytest.raises(InputError) as error:
        read_triplets(RawSource(packed, "zip", "train_triplets.txt"))
    assert error.value.path == f"{packed} (member train_triplets.txt)"
    assert error.value.where == "line 4"
    assert "'many'" in error.value.found


@pytest.mark.unit
def test_a_missing_member_is_reported_with_the_members_there(tmp_path):
    packed = tmp_path / CHALLENGE_ARCHIVE
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr(f"{EVAL}/year1_valid_triplets_visible.txt", LINES)
        archive.writestr(f"{EVAL}/README.txt", "")
    with pytest.raises(InputError) as error:
        read_triplets(RawSource(packed, "zip", "year1_test_triplets_visible.txt"))
    assert error.value.expected == "one member named year1_test_triplets_visible.txt"
    assert error.value.found == (
        f"0 among: {EVAL}/year1_valid_triplets_visible.txt, {EVAL}/README.txt"
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("packed", "found"),
    [
        (gzip.compress(LINES), "gzip data: name it train_triplets.txt.gz"),
        (b"PK\x03\x04" + bytes(40), "zip data: name it train_triplets.txt.zip"),
        (b"BZh91AY&SY" + bytes(20), "bzip2 data: decompress it"),
    ],
)
def test_a_compressed_file_under_a_plain_name_is_named(tmp_path, packed, found):
    plain = tmp_path / "train_triplets.txt"
    plain.write_bytes(packed)
    with pytest.raises(InputError) as error:
        read_triplets(plain)
    assert (error.value.path, error.value.where, error.value.found) == (
        str(plain),
        "its first bytes",
        found,
    )


@pytest.mark.graph
def test_a_build_from_the_downloads_equals_the_build_from_unpacked_files(raw_files, tmp_path):
    raw_dir = raw_files("sample", scale=0.001, seed=8)
    downloads = as_downloaded(raw_dir, tmp_path / "downloads")
    manifests = []
    for number, source in enumerate((raw_dir, downloads)):
        pipeline = Pipeline(source, tmp_path / f"checkpoints-{number}", tmp_path / f"out-{number}")
        pipeline.configure(n_shards=2)
        pipeline.build_ok(workers=2)
        manifests.append(json.loads((pipeline.output_dir / "manifest.json").read_text()))
    unpacked, packed = manifests
    assert {name: packed["files"][name] for name in DELIVERABLES} == {
        name: unpacked["files"][name] for name in DELIVERABLES
    }
    # The digests are those of the files read: the archives, each once.
    assert sorted(packed["inputs"]) == sorted(
        [CHALLENGE_ARCHIVE, "train_triplets.txt.zip", RAW_FILES["msd"], RAW_FILES["genres"]]
    )
    assert packed["inputs"]["train_triplets.txt.zip"]["bytes"] == (
        (downloads / "train_triplets.txt.zip").stat().st_size
    )


@pytest.mark.unit
@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_every_zip_method_streams_the_member_whole(tmp_path, method):
    text = b"".join(b"user%d\tSO%d\t%d\n" % (i, i % 97, i % 9 + 1) for i in range(200_000))
    packed = tmp_path / "train_triplets.txt.zip"
    with zipfile.ZipFile(packed, "w", method) as archive:
        archive.writestr("train_triplets.txt", text)
    with RawSource(packed, "zip", "train_triplets.txt").open() as stream:
        assert stream.read() == text


@pytest.mark.unit
def test_a_damaged_zip_member_fails_on_its_crc(tmp_path):
    text = b"u1\tSOA\t3\n" * 50_000
    packed = tmp_path / "train_triplets.txt.zip"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train_triplets.txt", text)
    with zipfile.ZipFile(packed) as archive:
        info = archive.getinfo("train_triplets.txt")
    data = bytearray(packed.read_bytes())
    # Rewrite the CRC the central directory records: the inflated bytes no longer match it.
    central = data.rindex(b"PK\x01\x02")
    data[central + 16 : central + 20] = (info.CRC ^ 1).to_bytes(4, "little")
    packed.write_bytes(bytes(data))
    with pytest.raises(InputError) as error:
        read_triplets(RawSource(packed, "zip", "train_triplets.txt"))
    assert "a damaged archive" in error.value.found


@pytest.mark.unit
def test_a_stream_closed_early_stops_its_reader_thread(tmp_path):
    squeezed = tmp_path / "train_triplets.txt.gz"
    squeezed.write_bytes(gzip.compress(LINES * 2_000_000))  # many chunks
    before = threading.active_count()
    stream = RawSource(squeezed, "gzip").open()
    assert stream.read(len(LINES)) == LINES
    stream.close()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.daemon:
            thread.join(timeout=10)
    assert threading.active_count() <= before

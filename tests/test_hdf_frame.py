"""The metadata HDF5 file is data, never code: hostile and broken files fail with one clear line."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import numpy as np

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct
import pandas as pd
import pytest
import tables

from msd_tasks.errors import InputError
from msd_tasks.stages.hdf_frame import read_frame
from msd_tasks.stages.songs import read_msd

MSD = "full_msd_with_audio_features.h5"


class Payload:
    """Pickles as a call of os.mkdir: unpickling it creates the folder `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def write_frame(path: Path, frame: pd.DataFrame, key: str = "df", **options) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns that it pickles the object column
        frame.to_hdf(path, key=key, mode="w", **options)
    return path


@pytest.fixture
def msd_frame(raw_files) -> pd.DataFrame:
    return pd.read_hdf(raw_files("handmade") / MSD, key="df")


@pytest.mark.parametrize("object_columns", [True, False])
def test_reads_what_pandas_reads(raw_files, msd_frame, tmp_path, object_columns):
    # The handmade file holds one block of several object columns (as pandas 1 and 2 write);
    # pandas 3 writes each text column as a block of its own.
    if object_columns:
        path = raw_files("handmade") / MSD
    else:
        path = write_frame(tmp_path / "copy.h5", msd_frame)
    expected = pd.read_hdf(path, key="df").reset_index(drop=True)
    pd.testing.assert_frame_equal(read_frame(path, "df"), expected)


def test_a_pickled_payload_in_a_column_is_named_and_never_runs(msd_frame, tmp_path):
    marker = tmp_path / "payload-ran"
    frame = msd_frame.astype({"title": object})
    frame.loc[frame.index[2], "title"] = Payload(marker)
    path = write_frame(tmp_path / "hostile.h5", frame)
    with pytest.raises(InputError) as error:
        read_msd(path)
    assert not marker.exists(), "the pickled payload ran"
    message = str(error.value)
    assert message.startswith(f"{path}: key 'df', column 'title', row 3:"), message
    assert "a pickled reference to posix.mkdir" in message or "os.mkdir" in message, message
    assert "\n" not in message


def test_a_payload_in_a_node_attribute_never_runs(msd_frame, tmp_path):
    marker = tmp_path / "payload-ran"
    path = write_frame(tmp_path / "attribute.h5", msd_frame)
    with tables.open_file(path, "a") as h5:  # PyTables pickles the value as the attribute
        h5.root.df._v_attrs.note = Payload(marker)
    frame = read_msd(path)
    assert not marker.exists(), "the pickled attribute ran"
    assert len(frame) == len(msd_frame)
    # Why not PyTables (and so pandas.read_hdf): opening the node runs the payload.
    with tables.open_file(path, "r") as h5:
        h5.get_node("/df")._v_attrs  # noqa: B018
    assert marker.exists()


def test_a_block_that_is_not_an_array_is_refused(tmp_path):
    marker = tmp_path / "payload-ran"
    path = write_frame(tmp_path / "block.h5", pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]}))
    with tables.open_file(path, "a") as h5:
        h5.remove_node("/df/block0_values")
        values = h5.create_vlarray("/df", "block0_values", tables.ObjectAtom())
        values.append(Payload(marker))
        values.attrs.transposed = True
    with pytest.raises(InputError, match=r"key 'df', columns a: expected a pickled array .*mkdir"):
        read_frame(path, "df")
    assert not marker.exists()


def test_a_cell_holding_a_list_is_named(tmp_path):
    frame = pd.DataFrame({"a": np.array(["x", ["not", "plain"], "z"], dtype=object)})
    path = write_frame(tmp_path / "list.h5", frame)
    with pytest.raises(InputError, match=r"column 'a', row 2: .*found a list"):
        read_frame(path, "df")


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"", "an empty file"),
        (b"song_id,title\nSOA,x\n", "no HDF5 signature"),
    ],
)
def test_files_that_are_not_hdf5_are_named(tmp_path, content, found):
    path = tmp_path / MSD
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        read_msd(path)
    assert str(error.value).startswith(f"{path}: ")
    assert found in str(error.value)
    assert "\n" not in str(error.value)


def test_a_truncated_file_is_one_line(msd_frame, tmp_path, capfd):
    path = write_frame(tmp_path / MSD, msd_frame)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError) as error:
        read_msd(path)
    assert str(error.value).startswith(f"{path}: ")
    assert "\n" not in str(error.value)
    assert "HDF5-DIAG" not in capfd.readouterr().err  # no HDF5 C traceback


def test_a_series_under_the_key_is_named(tmp_path):
    path = tmp_path / MSD
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.Series([1.0, 2.0]).to_hdf(path, key="df", mode="w")
    with pytest.raises(
        InputError, match=r"key 'df': expected a DataFrame .*found pandas_type 'series'"
    ):
        read_msd(path)


def test_the_table_format_is_named(msd_frame, tmp_path):
    frame = msd_frame[["danceability", "energy"]]
    path = write_frame(tmp_path / MSD, frame, format="table")
    with pytest.raises(InputError, match=r"found pandas_type 'frame_table' \(the table format"):
        read_frame(path, "df")


def test_song_ids_stored_as_integers_are_named(msd_frame, tmp_path):
    frame = msd_frame.assign(song_id=np.arange(len(msd_frame)))
    path = write_frame(tmp_path / MSD, frame)
    with pytest.raises(
        InputError, match=r"key 'df', column 'song_id', row 1: expected an id as text"
    ):
        read_msd(path)


def test_a_feature_column_of_text_names_its_first_bad_row(msd_frame, tmp_path):
    frame = msd_frame.assign(energy="loud")
    path = write_frame(tmp_path / MSD, frame)
    with pytest.raises(InputError) as error:
        read_msd(path)
    assert (
        str(error.value)
        == f"{path}: key 'df', column 'energy', row 1: expected a number, found 'loud'"
    )


def test_a_feature_column_mixing_text_and_numbers_names_the_text(msd_frame, tmp_path):
    frame = msd_frame.astype({"energy": object})
    frame.loc[frame.index[4], "energy"] = "loud"
    path = write_frame(tmp_path / MSD, frame)
    with pytest.raises(InputError) as error:
        read_msd(path)
    message = str(error.value)
    assert message.startswith(f"{path}: key 'df', column 'energy', row 5: expected "), message
    assert "found 'loud'" in message, message


class Reduced:
    """An object that pickles as `callable(*args)`, then BUILD with `state` when given."""

    def __init__(self, callable_, args, state=None) -> None:
        self.reduced = (callable_, args) if state is None else (callable_, args, state)

    def __reduce__(self):
        return self.reduced


def object_dtype_with_flags(flags: int) -> Reduced:
    return Reduced(np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, flags))


HOSTILE_ARRAYS = {
    # numpy's own _reconstruct + BUILD trusts the state: a list shorter than the shape makes it
    # read past the list, forged dtype flags make it take bytes for object pointers.
    "list shorter than the shape": Reduced(
        _reconstruct,
        (np.ndarray, (0,), b"b"),
        (1, (1000, 1), np.dtype(object), False, ["x"]),
    ),
    "object dtype with forged flags": Reduced(
        _reconstruct,
        (np.ndarray, (0,), b"b"),
        (1, (1, 1), object_dtype_with_flags(0), False, b"AAAAAAAA"),
    ),
    "an ndarray built directly from bytes": Reduced(
        np.ndarray, ((1, 1), object_dtype_with_flags(0), b"AAAAAAAA")
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ARRAYS))
def test_hostile_array_pickles_are_refused_without_numpy_reading_them(case, tmp_path):
    path = write_frame(tmp_path / "block.h5", pd.DataFrame({"a": ["x"], "b": [1.0]}))
    with tables.open_file(path, "a") as h5:
        h5.remove_node("/df/block0_values")
        values = h5.create_vlarray("/df", "block0_values", tables.ObjectAtom())
        values.append(HOSTILE_ARRAYS[case])
        values.attrs.transposed = True
    with pytest.raises(InputError, match=r"key 'df', columns a: expected a pickled array"):
        read_frame(path, "df")


def test_numpy_scalars_in_an_object_column_are_plain_numbers(tmp_path):
    frame = pd.DataFrame({"a": np.array([np.float64(1.5), np.int64(3), None], dtype=object)})
    path = write_frame(tmp_path / "scalars.h5", frame)
    assert read_frame(path, "df")["a"].tolist()[:2] == [1.5, 3]


def test_a_key_linked_to_another_file_is_not_followed(msd_frame, tmp_path):
    elsewhere = write_frame(tmp_path / "elsewhere.h5", msd_frame)
    path = tmp_path / MSD
    with h5py.File(path, "w") as h5:
        h5["df"] = h5py.ExternalLink(str(elsewhere), "/df")
    with pytest.raises(InputError, match=r"key 'df': expected a node in this file"):
        read_msd(path)


def test_a_feature_column_of_python_numbers_and_none_is_read_as_floats(msd_frame, tmp_path):
    frame = msd_frame.astype({"energy": object})
    frame.loc[frame.index[0], "energy"] = None
    frame.loc[frame.index[1], "energy"] = 1  # an int among floats
    path = write_frame(tmp_path / MSD, frame)
    energy = read_msd(path)["energy"]
    assert energy.dtype == np.float64
    assert np.isnan(energy.iloc[0]) and energy.iloc[1] == 1.0

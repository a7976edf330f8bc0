"""``polylin fit --data FILE``: how CSV files are read (the rules in polylin.cli.data_files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polylin.cli.data_files import DataFileError, read_data


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("comma.csv", "a,b,y\n1,2,3\n4,5,6\n"),
        ("semicolon.csv", "a;b;y\n1;2;3\n4;5;6\n"),
        ("tab.txt", "a\tb\ty\n1\t2\t3\n4\t5\t6\n"),
        ("tab.tsv", "a\tb\ty\n1\t2\t3\n4\t5\t6\n"),
        ("spaces.csv", "a, b, y\n 1, 2 ,3\n4 , 5, 6\n"),
        ("quoted.csv", '"a","b","y"\n1,2,3\n4,5,6\n'),
        ("comments.csv", "# a comment\na,b,y\n\n1,2,3\n  # another\n4,5,6\n"),
    ],
)
def test_delimiters_and_headers(tmp_path: Path, name: str, text: str) -> None:
    data = read_data(write(tmp_path, text, name))
    np.testing.assert_array_equal(data.X, [[1.0, 2.0], [4.0, 5.0]])
    np.testing.assert_array_equal(data.y, [3.0, 6.0])
    assert data.feature_names == ("a", "b") and data.target_name == "y"
    assert data.X.dtype == np.float64


def test_a_byte_order_mark_and_no_header(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("1,2,3\n4,5,6\n".encode("utf-8-sig"))
    data = read_data(path)
    np.testing.assert_array_equal(data.y, [3.0, 6.0])
    assert data.feature_names == ("0", "1") and data.target_name == "2"


def test_choosing_the_target_and_the_features(tmp_path: Path) -> None:
    path = write(tmp_path, "volts,amps,temp\n2.3,0.5,20\n4.7,1.0,21\n")
    by_name = read_data(path, target="volts", features="amps")
    np.testing.assert_array_equal(by_name.y, [2.3, 4.7])
    np.testing.assert_array_equal(by_name.X, [[0.5], [1.0]])
    assert read_data(path, target="0").target_name == "volts"
    assert read_data(path, target="-1").target_name == "temp"
    assert read_data(path, target="volts").feature_names == ("amps", "temp")
    with pytest.raises(DataFileError, match=r"--target 'watts' is not a column .*columns: volts, amps, temp"):
        read_data(path, target="watts")
    with pytest.raises(DataFileError, match="both the target and a feature"):
        read_data(path, target="volts", features="volts,amps")
    with pytest.raises(DataFileError, match="out of range"):
        read_data(path, target="3")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("x,y\n1,2\n3,oops\n", ("line 3", "column 'y'", "'oops'", "not a number")),
        ("x,y\n1,2\n3,\n", ("line 3", "column 'y'", "an empty field")),
        ("# data\nx,y\n1,2\n\n3,4,5\n", ("line 5", "3 fields", "the header has 2")),
        ("1,2\n3\n", ("line 2", "1 fields", "the first row has 2")),
        ("1,2\n3,x\n", ("line 2", "column '1'", "'x'")),
        ("x,y,z\n1,2\n3,4\n", ("line 2", "2 fields", "the header has 3")),
        ("x,y\n", ("a header but no data rows",)),
        ("# only a comment\n\n", ("no data rows",)),
        ("x\n1\n2\n", ("at least two columns",)),
    ],
)
def test_problems_name_the_line_and_the_fix(tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    with pytest.raises(DataFileError) as caught:
        read_data(write(tmp_path, text))
    message = str(caught.value)
    assert "data.csv" in message
    for fragment in fragments:
        assert fragment in message, message

"""CSV exports never hand a spreadsheet a formula: cells from tenants are made safe."""

import csv
import io

import pytest

from hosting.exports import csv_lines, csv_response, safe_cell


@pytest.mark.parametrize("dangerous", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_that_would_start_a_formula_is_quoted(dangerous):
    assert safe_cell(dangerous) == "'" + dangerous


@pytest.mark.parametrize("value", ["SN-1", "crate 1", "", 3250, None, "a=b"])
def test_other_cells_are_left_as_they_are(value):
    assert safe_cell(value) == value


def test_an_export_escapes_every_text_cell_and_reads_back_as_csv():
    rows = [["SN-1", "=cmd|' /C calc'!A0", 3250], ["SN-2", "fine", -5]]
    text = "".join(csv_lines(["serial", "notes", "watts"], rows))
    assert list(csv.reader(io.StringIO(text))) == [
        ["serial", "notes", "watts"],
        ["SN-1", "'=cmd|' /C calc'!A0", "3250"],
        ["SN-2", "fine", "-5"],  # numbers are numbers: only text can carry a formula
    ]


def test_a_response_streams_a_named_attachment():
    response = csv_response("machines.csv", ["serial"], [["@x"]])
    assert response["Content-Disposition"] == 'attachment; filename="machines.csv"'
    assert b"".join(response.streaming_content).decode() == "serial\r\n'@x\r\n"

"""A sequencing problem's matrices: checked once, kept as tuples and as NumPy arrays."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge.sequencer import InvalidProblemError, SequencingProblem, Stop

TT = ((0, 5, 7), (5, 0, 3), (7, 3, 0))
STOPS = (Stop("a", 1), Stop("b", 2))


@pytest.mark.parametrize(
    "bad",
    [
        ((0, 5, 7), (5, 0), (7, 3, 0)),  # ragged
        ((0, 5), (5, 0), (7, 3)),  # not square
        (),  # empty
        ((0, "x", 7), (5, 0, 3), (7, 3, 0)),  # not a number
        ((0, -5, 7), (5, 0, 3), (7, 3, 0)),  # negative
        ((0, 2**70, 7), (5, 0, 3), (7, 3, 0)),  # too large
    ],
    ids=["ragged", "not-square", "empty", "not-a-number", "negative", "too-large"],
)
def test_a_bad_matrix_is_a_clear_error(bad: tuple) -> None:
    with pytest.raises(InvalidProblemError, match="matrix"):
        SequencingProblem(bad, TT, 0, 0, STOPS, 0)
    with pytest.raises(InvalidProblemError, match="matrix"):
        SequencingProblem(TT, bad, 0, 0, STOPS, 0)


def test_matrices_are_kept_as_int_tuples_and_read_only_arrays() -> None:
    floats = [[0.0, 5.9, 7.0], [5.0, 0.0, 3.0], [7.0, 3.0, 0.0]]
    prob = SequencingProblem(np.array(TT), floats, 0, 0, STOPS, 0)
    assert prob.travel_time == TT
    assert prob.distance == ((0, 5, 7), (5, 0, 3), (7, 3, 0))  # truncated, as int() does
    assert all(type(v) is int for row in prob.distance for v in row)
    tt, dm = prob.arrays()
    assert dm.tolist()[0] == [0, 5, 7]
    assert tt.dtype == np.int64 and tt.tolist() == [list(r) for r in TT]
    with pytest.raises(ValueError):
        tt[0, 1] = 1
    assert prob.reordered(("b", "a")).arrays()[0] is tt  # a warm-start copy shares them
    other = replace(prob, travel_time=((0, 1, 1), (1, 0, 1), (1, 1, 0)))
    assert other.arrays()[0].tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]

"""The shared argument checks: canonical values back, ``Invalid <name>: <value> (<rule>)`` otherwise."""

import math

import numpy as np
import pytest

from clipcore import validation as V


def test_message_names_the_argument_the_value_and_the_rule():
    err = V.invalid("lr", -0.5, "must be > 0")
    assert isinstance(err, ValueError) and str(err) == "Invalid lr: -0.5 (must be > 0)"
    with pytest.raises(ValueError, match=r"^Invalid eta: -2 \(must be a finite number > 0\)$"):
        V.check_positive("eta", -2)
    with pytest.raises(ValueError, match=r"^Invalid T: 2\.5 \(must be an integer\)$"):
        V.check_int("T", 2.5)


@pytest.mark.parametrize("bad", [True, False, np.bool_(True), "1.0", None, [1.0], np.array([1.0])])
def test_bools_strings_and_arrays_are_not_numbers(bad):
    assert not V.is_number(bad)
    with pytest.raises(ValueError, match="must be a finite number"):
        V.check_number("x", bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf")])
def test_nan_and_inf_are_rejected(bad):
    for check in (V.check_number, V.check_positive, V.check_nonnegative):
        with pytest.raises(ValueError, match=r"Invalid x: .*(nan|inf)"):
            check("x", bad)


def test_numbers_come_back_as_floats():
    for v in (3, 2.5, np.int64(4), np.float32(0.5)):
        out = V.check_number("x", v)
        assert type(out) is float and out == float(v)
    assert V.check_number("x", None, allow_none=True) is None
    assert V.check_positive("x", None, allow_none=True) is None


def test_bounds():
    assert V.check_number("x", 1.0, low=1.0) == 1.0
    with pytest.raises(ValueError, match=r"must be a finite number > 1"):
        V.check_number("x", 1.0, low=1.0, strict=True)
    with pytest.raises(ValueError, match=r"Invalid x: 0 \(must be a finite number > 0\)"):
        V.check_positive("x", 0)
    assert V.check_nonnegative("x", 0) == 0.0
    with pytest.raises(ValueError, match="Invalid x: -1e-300"):
        V.check_nonnegative("x", -1e-300)


def test_intervals():
    assert V.check_fraction("f", 1.0) == 1.0
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
            V.check_fraction("f", bad)
    assert V.check_unit_interval("u", 0.0) == 0.0
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
            V.check_unit_interval("u", bad)


def test_integers():
    assert V.check_int("n", np.int32(3), 1) == 3 and type(V.check_int("n", np.int32(3))) is int
    assert V.is_integer(7) and not V.is_integer(True) and not V.is_integer(7.0)
    for bad in (True, 3.0, "3", None):
        with pytest.raises(ValueError, match="must be an integer"):
            V.check_int("n", bad)
    with pytest.raises(ValueError, match=r"Invalid n: 0 \(must be an integer >= 1\)"):
        V.check_int("n", 0, 1)
    assert V.check_int("n", None, allow_none=True) is None


def test_choice():
    assert V.check_choice("order", "cyclic", ("cyclic", "iid")) == "cyclic"
    with pytest.raises(ValueError, match=r"^Invalid order: 'random' \(choose from cyclic, iid\)$"):
        V.check_choice("order", "random", ("cyclic", "iid"))
    with pytest.raises(ValueError, match="choose from"):
        V.check_choice("order", 1, (1, 2))  # only strings are choices


def test_positive_array():
    a = V.check_positive_array("h", [0.1, 2])
    assert a.dtype == np.float64 and a.tolist() == [0.1, 2.0]
    for bad in ([], [0.1, 0.0], [1.0, np.nan], [np.inf], [-1.0]):
        with pytest.raises(ValueError, match=r"^Invalid h: .* \(must be finite and > 0\)$"):
            V.check_positive_array("h", bad)

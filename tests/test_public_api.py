"""Every name the package re-exports resolves to a real object."""

import importlib
import sys

import pytest

import analog_ep


@pytest.mark.parametrize("name", sorted(set(analog_ep.__all__) - {"__version__"}))
def test_public_name_resolves(name):
    assert getattr(analog_ep, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        analog_ep.no_such_thing  # noqa: B018


@pytest.mark.parametrize("old, new", [
    ("analog_ep.families", "analog_ep.tasks.resistive"),
    ("analog_ep.oscillator_family", "analog_ep.tasks.oscillator"),
    ("analog_ep.quantum_family", "analog_ep.tasks.quantum"),
    ("analog_ep.learning.cost", "analog_ep.models.cost"),
    ("analog_ep.learning.periodic_cost", "analog_ep.models.periodic_cost"),
    ("analog_ep.learning.readout", "analog_ep.models.readout"),
])
def test_moved_modules_still_import_with_a_deprecation_warning(old, new):
    """Each old module warns once, on import, and hands on the very objects of its new home."""
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=old.replace(".", r"\.")):
        shim = importlib.import_module(old)
    target = importlib.import_module(new)
    shared = [n for n in shim.__all__ if hasattr(target, n)]
    assert shared and all(getattr(shim, n) is getattr(target, n) for n in shared)

"""Every name the package re-exports resolves to a real object."""

import pytest

import analog_ep


@pytest.mark.parametrize("name", sorted(set(analog_ep.__all__) - {"__version__"}))
def test_public_name_resolves(name):
    assert getattr(analog_ep, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        analog_ep.no_such_thing  # noqa: B018

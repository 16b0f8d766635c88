"""Shared pytest configuration."""

import pytest


# -- real serial boards (opt-in) -------------------------------------------------------

def pytest_addoption(parser):
    parser.addoption("--device", metavar="PORT", default=None,
                     help="also run the board conformance tests against a real board on PORT "
                          "(a device path or a pyserial URL)")
    parser.addoption("--device-profile", metavar="PROFILE", default="pico",
                     help="board profile of --device (file or bundled name; default: pico)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--device"):
        return
    skip = pytest.mark.skip(reason="needs a real board: pass --device PORT")
    for item in items:
        if "device" in item.keywords:
            item.add_marker(skip)

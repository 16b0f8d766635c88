"""Every file reader, fed random JSON shapes and random bytes, either reads the file or raises
an AnalogEPError whose message is one line naming the file; no other exception escapes.

Readers: network files (node-link .json, .graphml, SPICE .cir), calibration records (the
full record reader and the ADC table reader) and board profiles (.toml).
"""

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analog_ep.calibration import load_calibration
from analog_ep.errors import AnalogEPError
from analog_ep.graph import load_network
from analog_ep.hardware.profile import load_profile
from analog_ep.substrates.serial import load_adc_calibration

#: Keys the readers look for, so random objects reach past the first shape check.
KEYS = ["nodes", "edges", "links", "graph", "id", "source", "target", "role", "name",
        "element", "conductance", "voltage", "family", "adc", "gain", "offset", "board",
        "profile", "units", "created", "expires", "kind", "version", "conductances"]
scalars = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True)
           | st.sampled_from(["a", "b", "input", "output", "resistor", "diode", "resistive", ""]))
shapes = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner, max_size=5),
                      max_leaves=20)
junk = st.binary(max_size=200) | st.text(string.printable, max_size=200).map(str.encode)

READERS = {
    "network.json": load_network,
    "network.graphml": load_network,
    "network.cir": load_network,
    "calibration.json": load_calibration,
    "adc.json": load_adc_calibration,
    "board.toml": load_profile,
}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check(reader, path) -> None:
    try:
        reader(path)
    except AnalogEPError as exc:
        message = str(exc)
        assert "\n" not in message.strip(), message
        assert path.name in message, message


@pytest.mark.parametrize("filename", sorted(READERS))
@FUZZ
@given(data=junk)
def test_random_bytes(tmp_path, filename, data):
    path = tmp_path / filename
    path.write_bytes(data)
    check(READERS[filename], path)


@pytest.mark.parametrize("filename", ["network.json", "calibration.json", "adc.json"])
@FUZZ
@given(obj=shapes)
def test_random_json_shapes(tmp_path, filename, obj):
    path = tmp_path / filename
    path.write_text(json.dumps(obj))
    check(READERS[filename], path)


@FUZZ
@given(nodes=st.lists(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=4), max_size=4),
       edges=st.lists(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=5), max_size=4),
       graph=st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3))
def test_random_node_link_graphs(tmp_path, nodes, edges, graph):
    """Node-link objects of the right outer shape with random members."""
    path = tmp_path / "network.json"
    path.write_text(json.dumps({"nodes": nodes, "edges": edges, "graph": graph}))
    check(load_network, path)

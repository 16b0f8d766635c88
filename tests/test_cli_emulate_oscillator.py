"""``analog-ep emulate`` on oscillator networks: the minimum found and its report against
the closed form of one oscillator in a field, thermal statistics against the von Mises law
(tolerances in standard errors from the sampler's effective sample size), basin visits on
a multistable network, and one-line errors."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from scipy import special

from analog_ep.graph import save_network
from cli_helpers import assert_one_line_error, run_cli

J, PSI, A, C = 1.2, 0.9, -0.4, 0.5
H = J * np.exp(1j * PSI) + A + 1j * C          # the total field on the output: |H| cos(phi - arg H)


@pytest.fixture
def single(tmp_path):
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.0)
    G.add_node("o", role="output", a=A, c=C)
    G.add_edge("x", "o", coupling=J)
    path = tmp_path / "single.json"
    save_network(G, path)
    return str(path)


def test_the_minimum_of_one_oscillator_in_a_field_is_its_closed_form(capsys, single):
    status, out, _ = run_cli(capsys, "emulate", single, "--input", f"x={PSI}", "--format", "json")
    assert status == 0
    r = json.loads(out)
    assert r["nodes"]["x"] == pytest.approx(PSI)
    assert r["nodes"]["o"] == pytest.approx(np.angle(H), abs=1e-9)
    m = r["minimum"]
    assert m["energy"] == pytest.approx(-abs(H), rel=1e-12)
    assert m["min_eigenvalue"] == pytest.approx(abs(H), rel=1e-9)     # d2/dphi2 of -|H| cos(phi - arg H)
    assert m["n_minima"] == 1 and m["starts"] == 8
    status, out, _ = run_cli(capsys, "emulate", single, "--input", f"x={PSI}")
    assert status == 0 and "smallest Hessian eigenvalue" in out and " rad" in out


def test_thermal_statistics_follow_the_von_mises_law(capsys, single):
    T, n = 0.5, 4000
    status, out, _ = run_cli(capsys, "emulate", single, "--input", f"x={PSI}", "--temperature", str(T),
                             "--samples", str(n), "--seed", "3", "--format", "json")
    assert status == 0
    r = json.loads(out)
    kappa = abs(H) / T
    R = special.i1e(kappa) / special.i0e(kappa)                 # <cos(phi - mu)>
    i2 = special.ive(2, kappa) / special.i0e(kappa)
    var_cos, var_sin = (1 + i2) / 2 - R ** 2, (1 - i2) / 2
    ess = r["ess"]
    assert 0.2 * n < ess <= 1.05 * n
    R_hat = np.exp(-r["nodes"]["o"]["std"] ** 2 / 2)            # circular std = sqrt(-2 ln R)
    assert abs(R_hat - R) < 4 * np.sqrt(var_cos / ess)
    dmu = np.angle(np.exp(1j * (r["nodes"]["o"]["mean"] - np.angle(H))))
    assert abs(dmu) < 4 * np.sqrt(var_sin / ess) / R
    assert r["nodes"]["x"]["mean"] == pytest.approx(PSI) and r["nodes"]["x"]["std"] < 1e-7   # clamped
    assert len(r["basins"]) == 1 and r["basins"][0]["fraction"] == 1.0


def test_basin_visits_of_a_multistable_network(capsys):
    args = ("emulate", "oscillator_xor", "--input", "x0=0.785", "--input", "x1=-0.785", "--format", "json")
    status, out, _ = run_cli(capsys, *args)
    lowest = json.loads(out)["minimum"]
    assert status == 0 and lowest["n_minima"] >= 2 and lowest["min_eigenvalue"] > 0
    status, out, _ = run_cli(capsys, *args, "--samples", "1000", "--seed", "0")
    r = json.loads(out)
    energies = [b["energy"] for b in r["basins"]]
    assert status == 0 and r["temperature"] == 0.02             # the file's temperature
    assert energies == sorted(energies) and energies[0] == pytest.approx(lowest["energy"], abs=1e-9)
    assert sum(b["fraction"] for b in r["basins"]) == pytest.approx(1.0)
    status, out, _ = run_cli(capsys, *args[:-2], "--samples", "200")
    assert status == 0 and "basins visited" in out and "% of samples" in out


@pytest.mark.parametrize("argv, fragments", [
    (["--input", "y=1"], ["--input y: not an input oscillator", "x0, x1"]),
    (["--input", "x0=nan"], ["NaN"]),
    (["--temperature", "-1"], ["--temperature -1", "finite number >= 0"]),
    (["--samples", "1"], ["--samples must be at least 2"]),
    (["--restarts", "0"], ["--restarts must be >= 1"]),
])
def test_bad_input_is_a_one_line_error(capsys, argv, fragments):
    assert_one_line_error(*run_cli(capsys, "emulate", "oscillator_xor", *argv)[::2], *fragments)


def test_quantum_networks_are_refused_by_name(capsys):
    assert_one_line_error(*run_cli(capsys, "emulate", "quantum_xor")[::2], "resistive and oscillator", "quantum")

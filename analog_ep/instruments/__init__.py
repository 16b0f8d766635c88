"""Instrument drivers of a board in VISA mode (``docs/visa.md``), declared once from its
profile: :mod:`.declaration` (no extra dependencies) says what the board offers, with
units and ranges; :mod:`.pymeasure_board` (extra ``pymeasure``) and :mod:`.qcodes_board`
(extra ``qcodes``) expose it to PyMeasure and QCoDeS. The drivers are imported by their
module name, so this package needs neither extra."""

from .declaration import BoardDeclaration, Quantity, describe_board, raise_queued_error, read_block

__all__ = ["BoardDeclaration", "Quantity", "describe_board", "raise_queued_error", "read_block"]

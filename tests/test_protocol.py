"""Wire protocol v1: command table, codec, framer and both parsers, without any port."""

import ast
import binascii
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analog_ep.hardware import protocol as P
from analog_ep.hardware.boardcore import BoardCore, Session

ROOT = Path(__file__).resolve().parents[1]
CAPS = {"elements": 3, "levels": 256, "dacs": 2, "dac_bits": 12, "adcs": 2, "adc_bits": 12,
        "nudges": 1, "nudge_bits": 8, "maxline": 128, "maxblock": 64, "maxavg": 100,
        "maxinterval": 1000, "maxsettle": 5000}


def frames(data, maxline=128, maxblock=64, chunks=None):
    f = P.Framer(maxline, maxblock)
    out = []
    if chunks is None:
        out += f.feed(data)
    else:
        i = 0
        for c in chunks:
            out += f.feed(data[i:i + c])
            i += c
        out += f.feed(data[i:])
    return out


def test_block_encoding_matches_ieee4882_with_crc():
    payload = bytes(range(256))
    b = P.encode_block(payload)
    assert b[:5] == b"#3256"
    assert b[5:5 + 256] == payload
    assert struct.unpack(">I", b[-4:])[0] == binascii.crc32(payload) & 0xFFFFFFFF
    assert frames(b + b"\n", maxblock=256) == [(b"", payload, None)]


def test_framer_is_independent_of_chunking():
    stream = (P.format_command("ELEM:BULK", (0, P.pack_codes("H", [1, 2, 0x0A0D])), 7)
              + b"*IDN?\r\n" + P.format_block(b"\n#\r\x00" * 5, 9))
    whole = frames(stream)
    assert [f[2] for f in whole] == [None, None, None]
    assert whole[1] == (b"*IDN?", None, None)
    for chunks in ([1] * len(stream), [3, 5, 7, 11] * 20):
        assert frames(stream, chunks=chunks) == whole


@pytest.mark.parametrize("data, code", [
    (b"#0abc\n", P.E_BLOCK),                              # indefinite form forbidden
    (b"#x12\n", P.E_BLOCK),                               # digit count not a digit
    (b"#2a1xyz\n", P.E_BLOCK),                            # length not a number
    (b"#3999" + b"x" * 10 + b"\n", P.E_TOO_MUCH_DATA),    # longer than maxblock: never waited for
    (P.encode_block(b"abcd")[:-1] + b"\x00\n", P.E_BLOCK_CRC),
    (P.encode_block(b"abcd") + b"x\n", P.E_BLOCK),        # no LF right after the CRC
    (b"A" * 200 + b"\n", P.E_INPUT_OVERRUN),
])
def test_framer_reports_malformed_lines_once(data, code):
    out = frames(data + b"*IDN?\n")
    assert [f[2][0] if f[2] else None for f in out] == [code, None]
    assert out[-1][0] == b"*IDN?"


def test_hash_inside_text_is_not_a_block():
    assert frames(b"ERR -1,\"a#b\"\n") == [(b"ERR -1,\"a#b\"", None, None)]


def parse(line, caps=CAPS):
    fr = frames(line, maxline=caps["maxline"], maxblock=caps["maxblock"])
    assert len(fr) == 1
    return P.parse_command(fr[0], caps)


def test_parse_command_converts_and_checks_ranges():
    tag, row, args = parse(b"@42 elem:code 2,255\n")
    assert (tag, row[0], args) == (42, "ELEM:CODE", [2, 255])
    tag, row, args = parse(P.format_command("NUDG:BULK", (0, P.pack_codes("h", [-127])), 3))
    assert (tag, row[0], list(args[1])) == (3, "NUDG:BULK", [-127])


@pytest.mark.parametrize("line, code", [
    (b"@5 FOO:BAR 1\n", P.E_UNDEFINED_HEADER),
    (b"@5 ELEM:CODE 3,1\n", P.E_OUT_OF_RANGE),
    (b"@5 ELEM:CODE 1,256\n", P.E_OUT_OF_RANGE),
    (b"@5 ELEM:CODE 1,+5\n", P.E_NUMERIC),
    (b"@5 ELEM:CODE 1, 0x5\n", P.E_NUMERIC),
    (b"@5 ELEM:CODE 1\n", P.E_MISSING_PARAM),
    (b"@5 ELEM:CODE 1,2,3\n", P.E_PARAM_NOT_ALLOWED),
    (b"@5 NUDG:CODE 0,-128\n", P.E_OUT_OF_RANGE),
    (b"@5 ACQ? 0,10\n", P.E_OUT_OF_RANGE),
    (b"@5 DAC:CODE 0,-1\n", P.E_OUT_OF_RANGE),     # a number, just not an allowed one
    (b"@5 SETT:TIME -5\n", P.E_OUT_OF_RANGE),
    (b"@5 SETT:TIME --5\n", P.E_NUMERIC),
    (b"@5 SYST:SYNC? a-b\n", P.E_ILLEGAL_VALUE),
    (b"@5 *IDN?\xff\n", P.E_INVALID_CHAR),
    (b"@5 ELEM:BULK 0,1\n", P.E_DATA_TYPE),
    (P.format_command("ELEM:BULK", (0, b"\x00\x01\x00"), 5), P.E_BLOCK),
    (P.format_command("ELEM:BULK", (0, P.pack_codes("H", [1, 300])), 5), P.E_OUT_OF_RANGE),
    (P.format_command("ELEM:BULK", (0, P.pack_codes("H", [1])), 5)[:-5] + b"XXXX\n", P.E_BLOCK_CRC),
])
def test_parse_command_errors_keep_the_tag(line, code):
    with pytest.raises(P.ProtocolError) as exc:
        parse(line)
    assert exc.value.code == code
    assert exc.value.tag == 5
    assert "#" not in P.format_error(exc.value.code, exc.value.message, 5)[1:].decode()


def test_range_errors_state_the_allowed_range():
    with pytest.raises(P.ProtocolError) as exc:
        parse(b"ACQ? 0,10\n")
    assert exc.value.message == "ACQ? count=0 outside 1.."
    with pytest.raises(P.ProtocolError) as exc:
        parse(b"DAC:CODE 0,-1\n")
    assert exc.value.message == "DAC:CODE code=-1 outside 0..%d" % ((1 << CAPS["dac_bits"]) - 1)


def test_nudge_commands_need_the_capability():
    with pytest.raises(P.ProtocolError) as exc:
        parse(b"NUDG:CODE 0,1\n", dict(CAPS, nudges=0))
    assert exc.value.code == P.E_HARDWARE_MISSING


def test_parse_reply_kinds():
    def reply(data):
        return P.parse_reply(frames(data)[0])
    assert reply(b"@1 OK\n") == (1, P.R_OK, None)
    assert reply(b"@2 ANALOG-EP,X,1,2\n") == (2, P.R_VALUE, "ANALOG-EP,X,1,2")
    assert reply(P.format_block(b"\x00\xff", 3)) == (3, P.R_BLOCK, b"\x00\xff")
    assert reply(P.format_error(-222, "out, of #range", 4)) == (4, P.R_ERR, (-222, "out? of ?range"))
    for bad in (b"@x OK\n", b"ERR 12\n", b"\n", b"@1 a#3\x01\n", b"@7 x #11a\x00\x00\x00\x00\n"):
        with pytest.raises(P.ProtocolError):
            reply(bad)


def test_capabilities_round_trip():
    assert P.parse_capabilities(P.format_capabilities(CAPS)) == CAPS
    with pytest.raises(P.ProtocolError):
        P.parse_capabilities("elements=3,levels")


class NullHAL:
    def reset(self):
        pass

    def set_elements(self, start, codes):
        pass

    set_dacs = set_nudges = set_elements

    def measure(self, average):
        return P.pack_codes("I", [average * 7] * CAPS["adcs"])

    def acquire(self, count, interval_us):
        return P.pack_codes("H", [1] * count * CAPS["adcs"])

    def sleep_us(self, us):
        pass


LABELS = {"ELEM": ["R1", "R2", "R3"], "DAC": ["a", "b"], "ADC": ["x", "y"], "NUDG": ["y"]}


def core():
    return BoardCore(NullHAL(), ("A", "B", "C", "D"), CAPS, LABELS)


def test_board_core_answers_every_frame_once_and_queues_errors():
    c = core()
    stream = b"*IDN?\n\n@1 BAD\n@2 ACQ? 17,0\n@3 SYST:ERR?\n@4 SYST:ERR?\n@5 SYST:ERR?\n@6 ELEM:CODE? 0\n"
    replies = [c.handle(f) for f in frames(stream)]
    assert replies[1] == b""    # an empty line is not a command
    assert [r for r in replies if r] == [
        b"A,B,C,D\n", b"@1 ERR -113,\"undefined header BAD\"\n",
        b"@2 ERR -223,\"ACQ? 17 readings make 68 bytes > maxblock 64\"\n",
        b"@3 -113,\"undefined header BAD\"\n", b"@4 -223,\"ACQ? 17 readings make 68 bytes > maxblock 64\"\n",
        b"@5 0,\"No error\"\n", b"@6 0\n"]


def test_a_failing_hardware_layer_is_answered_not_fatal():
    class Flaky(NullHAL):
        def measure(self, average):
            raise OSError(5, "I2C bus error")
    c = BoardCore(Flaky(), ("A", "B", "C", "D"), CAPS, LABELS)
    reply = c.handle(frames(b"@3 MEAS? 4\n")[0])
    assert reply.startswith(b"@3 ERR -200,\"hardware error OSError(5? 'I2C bus error')")
    assert c.handle(frames(b"@4 *IDN?\n")[0]) == b"@4 A,B,C,D\n"


def test_board_core_version_negotiation():
    c = BoardCore(NullHAL(), ("A", "B", "C", "D"), CAPS, LABELS, versions=(1, 3))
    assert c.handle(frames(b"SYST:PROT?\n")[0]) == b"1,3\n"
    assert c.handle(frames(b"SYST:PROT 2\n")[0]) == b"OK\n"
    assert c.handle(frames(b"SYST:PROT 4\n")[0]).startswith(b"ERR 101,")


def test_error_queue_overflow_keeps_the_oldest():
    c = core()
    for _ in range(12):
        c.handle(frames(b"NOPE\n")[0])
    errs = [c.handle(frames(b"SYST:ERR?\n")[0]) for _ in range(9)]
    assert errs[0].startswith(b"-113,") and errs[7].startswith(b"-350,") and errs[8] == b"0,\"No error\"\n"


# -- VISA mode: untagged lines framed for stock VISA clients ---------------------------

def test_visa_block_carries_its_crc_inside_and_is_checked():
    data = bytes([0x0A, 0x00, 0x0A, 0x0D])
    block = P.encode_block(data, crc_inside=True)
    assert block == b"#18" + data + struct.pack(">I", binascii.crc32(data))
    assert P.split_crc(block[3:]) == data
    with pytest.raises(P.ProtocolError) as exc:
        P.split_crc(block[3:-1] + bytes([block[-1] ^ 1]))
    assert exc.value.code == P.E_BLOCK_CRC
    with pytest.raises(P.ProtocolError) as exc:
        P.split_crc(b"\x00\x01")
    assert exc.value.code == P.E_BLOCK


def visa_session():
    session = Session(core())
    assert session.feed(b"SYST:VISA 1\n") == []           # untagged SYST:VISA: never answered
    return session


def test_visa_mode_silences_untagged_set_commands_and_queues_their_errors():
    s = visa_session()
    assert s.feed(b"ELEM:CODE 0,5\nDAC:CODE 1,7\n*RST\nELEM:CODE 9,9\nNOPE\n") == []
    assert s.feed(b"ELEM:CODE? 0\nSYST:ERR?\nSYST:ERR?\nSYST:ERR?\nSYST:VISA?\n") == [
        b"0\n", b'-222,"ELEM:CODE channel=9 outside 0..2"\n', b'-113,"undefined header NOPE"\n',
        b'0,"No error"\n', b"1\n"]                        # *RST kept the mode
    assert s.feed(b"ELEM:CODE? 7\nNOPE?\n") == [b'ERR -222,"ELEM:CODE? channel=7 outside 0..2"\n',
                                                  b'ERR -113,"undefined header NOPE?"\n']
    # tagged lines are served as in version 1
    assert s.feed(b"@5 ELEM:CODE 0,5\n@6 NOPE\n") == [b"@5 OK\n", b'@6 ERR -113,"undefined header NOPE"\n']
    assert s.feed(b"SYST:VISA 0\nELEM:CODE 0,1\n") == [b"OK\n"]
    assert s.feed(b"SYST:VISA 1\n@7 SYST:VISA 0\n") == [b"@7 OK\n"]


def test_visa_mode_blocks_carry_the_crc_inside_both_ways_tagged_ones_after():
    s = visa_session()
    codes = P.pack_codes("H", [0x0A, 0x0D, 0x0A])
    assert s.feed(b"ELEM:BULK 0," + P.encode_block(codes, crc_inside=True) + b"\nELEM:CODE? 1\n") == [b"13\n"]
    assert s.feed(b"@1 ELEM:BULK 0," + P.encode_block(codes) + b"\n") == [b"@1 OK\n"]
    bad = bytearray(P.encode_block(codes, crc_inside=True))
    bad[-1] ^= 1
    assert s.feed(b"ELEM:BULK 0," + bytes(bad) + b"\nSYST:ERR?\n") == [b'-161,"block CRC mismatch"\n']
    meas = P.pack_codes("I", [4 * 7] * CAPS["adcs"])
    assert s.feed(b"MEAS? 4\n@2 MEAS? 4\n") == [P.format_block(meas, crc_inside=True), P.format_block(meas, 2)]
    # the mode applies from the line after SYST:VISA, even within one chunk
    s = Session(core())
    visa_block = P.encode_block(codes, crc_inside=True)
    assert s.feed(b"ELEM:CODE 0,1\nSYST:VISA 1\nELEM:BULK 0," + visa_block + b"\nELEM:CODE? 0\n") == \
        [b"OK\n", b"10\n"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=6), st.lists(st.integers(1, 9), max_size=30))
def test_visa_framing_is_independent_of_chunking(payloads, chunks):
    lines = b"".join(b"ELEM:BULK 0," + P.encode_block(p, crc_inside=True) + b"\n" for p in payloads)
    whole = visa_framer().feed(lines)
    f, got, i = visa_framer(), [], 0
    for n in chunks + [len(lines)]:
        got += f.feed(lines[i:i + n])
        i += n
    assert got == whole and [fr[1] for fr in whole] == [p if p else b"" for p in payloads]


def visa_framer():
    f = P.Framer(128, 64)
    f.crc_inside = True
    return f


def test_the_core_announces_visa_mode_pulses_and_replay_after_the_version_1_keys():
    reply = core().handle(frames(b"SYST:CAP?\n")[0]).decode().strip()
    assert reply == P.format_capabilities(CAPS) + ",visa=1,pulse=1,replay=1"
    caps = P.parse_capabilities(reply)
    assert caps["visa"] == caps["pulse"] == caps["replay"] == 1


class CountingHAL(NullHAL):
    """Readings that change at every conversion, so a repeated execution shows."""

    def __init__(self):
        self.calls = 0

    def measure(self, average):
        self.calls += 1
        return P.pack_codes("I", [self.calls] * CAPS["adcs"])


def test_a_repeated_tagged_line_is_answered_from_the_store_not_executed():
    hal = CountingHAL()
    c = BoardCore(hal, ("A", "B", "C", "D"), CAPS, LABELS)
    ask = lambda line: c.handle(frames(line)[0])       # noqa: E731
    first = ask(b"@7 MEAS? 2\n")
    assert ask(b"@7 MEAS? 2\n") == first and hal.calls == 1 and c.replayed == 1
    assert ask(b"@7 MEAS? 3\n") != first and hal.calls == 2      # same tag, another line: executed
    assert ask(b"@8 MEAS? 3\n") != first and hal.calls == 3      # another tag: executed
    assert ask(b"MEAS? 3\n") and ask(b"MEAS? 3\n") and hal.calls == 5      # untagged: never stored
    # set commands with blocks: the block is part of the line
    block = P.encode_block(P.pack_codes("H", [1, 2]))
    assert ask(b"@9 ELEM:BULK 0," + block + b"\n") == b"@9 OK\n"
    c.handle(frames(b"@10 ELEM:CODE 0,5\n")[0])
    assert ask(b"@9 ELEM:BULK 0," + block + b"\n") == b"@9 OK\n" and c.elements[0] == 5   # not re-applied
    # a stored error is replayed without queuing it twice
    err = ask(b"@11 ELEM:CODE 9,0\n")
    assert err.startswith(b"@11 ERR -222") and ask(b"@11 ELEM:CODE 9,0\n") == err and len(c.errors) == 1
    # *IDN? and SYST:SYNC? are never stored; SYST:ERR? (which pops) is
    assert "*IDN?" not in c.replies and "SYST:SYNC?" not in c.replies
    popped = ask(b"@12 SYST:ERR?\n")
    assert ask(b"@12 SYST:ERR?\n") == popped and popped.startswith(b"@12 -222") and not c.errors


# -- random input: no crash, no hang ------------------------------------------------

pieces = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"\n", b"#", b"#1", b"#9", b"#0", b"@", b"@12 ", b",", b" ", b"\r"]),
    st.builds(lambda p: P.encode_block(p), st.binary(max_size=70)),
    st.builds(lambda p: P.encode_block(p, crc_inside=True), st.binary(max_size=70)),
    st.sampled_from([ln.encode() + b" " for ln in P.INDEX]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=30), st.lists(st.integers(1, 50), max_size=10), st.booleans())
def test_random_bytes_never_crash_or_hang_either_parser(parts, chunks, visa):
    data = b"".join(parts)
    f = P.Framer(CAPS["maxline"], CAPS["maxblock"])
    f.crc_inside = visa
    c = core()
    c.visa = visa
    got = []
    i = 0
    for n in chunks + [len(data)]:
        got += f.feed(data[i:i + n])
        i += n
        assert len(f.buf) <= CAPS["maxline"] + CAPS["maxblock"] + 2 + 9 + 5
        assert f.need() >= 1
    assert len(got) <= data.count(b"\n")
    for frame in got:
        reply = c.handle(frame)        # board side: an error reply, never an exception
        assert reply == b"" or reply.endswith(b"\n")
        try:                           # host side: a reply or a ProtocolError
            P.parse_reply(frame)
        except P.ProtocolError as exc:
            assert isinstance(exc.code, int) and "#" not in exc.message


# -- the document and the table agree ------------------------------------------------

def test_protocol_document_lists_every_command_and_error_code():
    doc = (ROOT / "drivers" / "PROTOCOL.md").read_text()
    for row in P.COMMANDS:
        assert f"`{row[0]}" in doc, row[0]
    for code in P.ERROR_TEXT:
        if code:
            assert re.search(rf"\|\s*{code}\s*\|", doc), code
    for key in P.CAPABILITY_KEYS:
        assert f"`{key}`" in doc, key


def test_shared_modules_stay_micropython_compatible():
    for name in ("protocol.py", "boardcore.py"):
        src = (ROOT / "analog_ep" / "hardware" / name).read_text()
        tree = ast.parse(src)
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert imported <= {"struct", "binascii", "protocol"}, (name, imported)
        assert not any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree)), name
        assert not any(isinstance(n, ast.Constant) and isinstance(n.value, float) for n in ast.walk(tree)), name
        assert not any(isinstance(n, (ast.AnnAssign,)) or getattr(n, "returns", None) for n in ast.walk(tree)), name


def test_scripted_pairs_drive_the_client_without_a_port():
    from analog_ep.hardware.client import BoardClient, ScriptedPort
    from analog_ep.hardware.errors import BoardCommandError, BoardTimeoutError, CorruptBlockError
    block = P.pack_codes("H", [1, 2, 3, 4])
    bad = bytearray(P.encode_block(block))
    bad[7] ^= 4
    port = ScriptedPort(ScriptedPort.handshake(CAPS) + [
        ("ACQ? 2,0", bytes(bad)),            # corrupt: rejected, resync, retried
        ("ACQ? 2,0", P.encode_block(block)),
        ("ELEM:CODE 0,9", None),             # silence: a typed timeout, never retried
        ("ELEM:CODE? 0", "9"),
        ("DAC:CODE 9,1", 'ERR -222,"DAC:CODE channel=9 outside 0..1"'),
    ])
    c = BoardClient(transport=port, timeout=0.2, non_idempotent=("ELEM:CODE",))
    assert c.identity == ("ANALOG-EP", "SCRIPT", "0", "1") and c.caps == CAPS
    assert np.array_equal(np.frombuffer(c.query_block("ACQ?", 2, 0), ">u2"), [1, 2, 3, 4])
    assert c.stats["retries"] == 1
    with pytest.raises(BoardTimeoutError, match="ELEM:CODE 0,9.*not retried"):
        c.command("ELEM:CODE", 0, 9)
    assert c.query("ELEM:CODE?", 0) == "9"
    assert port.log[-2].startswith("SYST:SYNC? ")     # resynchronised before the next command
    with pytest.raises(BoardCommandError) as exc:
        c.command("DAC:CODE", 9, 1)
    assert exc.value.code == -222
    budget = c.attempts()               # of the failure rate seen so far
    port.script.extend([("ACQ? 2,0", bytes(bad))] * budget)
    with pytest.raises(CorruptBlockError):
        c.query_block("ACQ?", 2, 0)
    assert not port.script and budget > 3


def test_the_retry_budget_follows_the_observed_failure_rate():
    from analog_ep.hardware.client import GIVE_UP, MAX_ATTEMPTS, BoardClient, ScriptedPort
    c = BoardClient(transport=ScriptedPort(ScriptedPort.handshake(CAPS)), retries=2)
    for exchanges, failures in ((0, 0), (10, 0), (10 ** 6, 0), (1000, 100), (1000, 300), (100, 99)):
        c.stats["exchanges"], c.stats["failures"] = exchanges, failures
        p = (failures + 1) / (exchanges + 2)
        n = c.attempts()
        assert 3 <= n <= MAX_ATTEMPTS
        # the smallest n with p^n < GIVE_UP, unless a bound holds it
        assert n == 3 or n == MAX_ATTEMPTS or (p ** n < GIVE_UP <= p ** (n - 1))
    c.stats["exchanges"], c.stats["failures"] = 10 ** 6, 0
    assert c.attempts() == 3                       # a clean link: 1 + retries
    c.stats["exchanges"], c.stats["failures"] = 1000, 100
    assert c.attempts() == 10                      # p ~ 0.1: 0.1^9 is not below 1e-9, 0.1^10 is
    c.stats["exchanges"], c.stats["failures"] = 100, 99
    assert c.attempts() == MAX_ATTEMPTS


def test_scripted_version_mismatch_is_refused():
    from analog_ep.hardware.client import BoardClient, ScriptedPort
    from analog_ep.hardware.errors import BoardVersionError
    port = ScriptedPort([("*IDN?", "X,Y,Z,W")] * 3 + [("SYST:PROT?", "2,3")] * 2)
    with pytest.raises(BoardVersionError, match="protocol 2..3"):
        BoardClient(transport=port)


def test_an_endless_reply_line_is_garbage_not_a_wait():
    from analog_ep.hardware.client import BoardClient, ScriptedPort
    from analog_ep.hardware.errors import BoardProtocolError
    port = ScriptedPort(ScriptedPort.handshake(CAPS))
    c = BoardClient(transport=port, timeout=0.5)
    port.script.extend([("CHAN:MAP? ELEM", "R" * 70000)] * c.attempts())
    with pytest.raises(BoardProtocolError, match="line longer than 65536"):
        c.query("CHAN:MAP?", "ELEM")

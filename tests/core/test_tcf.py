"""Tests for the TCF v2 TC string decoder (gateway.core.tcf): the test vectors, hand-built edge
cases from a small test-only encoder, fuzzing and a round-trip property."""

from __future__ import annotations

import json
import string
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.tcf import TCFError, TCString, decode, parse_for_consent, validate

CODES = {
    "malformed", "not_version_2", "policy_version_below_4", "not_service_specific",
    "legitimate_interest_for_purposes_3_to_6", "disclosed_vendors_missing",
}
ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# the IAB reference encoder's strings and iabtcf-java's legacy ones: see tests/data/README.md
VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "tcf_vectors.json")
                     .read_text(encoding="utf-8"))


# --- a small test-only encoder -------------------------------------------------------------

class Bits:
    """Collects big-endian bit fields and renders them as one base64url segment."""

    def __init__(self) -> None:
        self.bits: list[str] = []

    def put(self, value: int, width: int) -> Bits:
        assert 0 <= value < (1 << width), (value, width)
        self.bits.append(format(value, f"0{width}b"))
        return self

    def flag(self, value: bool) -> Bits:
        return self.put(int(value), 1)

    def id_bitfield(self, ids, width: int) -> Bits:
        wanted = set(ids)
        self.bits.append("".join("1" if i in wanted else "0" for i in range(1, width + 1)))
        return self

    def drop(self, fields: int) -> Bits:
        """Forget the last ``fields`` fields written (to build truncated segments)."""
        del self.bits[-fields:]
        return self

    def letters(self, text: str) -> Bits:
        for char in text:
            self.put(ord(char) - ord("A"), 6)
        return self

    def ranges(self, spans) -> Bits:
        self.put(len(spans), 12)
        for start, end in spans:
            self.flag(start != end).put(start, 16)
            if start != end:
                self.put(end, 16)
        return self

    def vendors(self, ids=(), *, spans=None, max_id: int | None = None) -> Bits:
        """A vendor section: a bitfield, or range entries when ``spans`` is given."""
        if max_id is None:
            max_id = max([*ids, *(end for _, end in spans or ())], default=0)
        self.put(max_id, 16)
        if spans is None:
            return self.flag(False).id_bitfield(ids, max_id)
        return self.flag(True).ranges(spans)

    def text(self) -> str:
        bits = "".join(self.bits)
        bits += "0" * (-len(bits) % 8)  # whole bytes, zero-padded, like real encoders
        bits += "0" * (-len(bits) % 6)
        return "".join(ALPHABET[int(bits[i:i + 6], 2)] for i in range(0, len(bits), 6))


CORE = {
    "version": 2, "created": 17_700_000_000, "last_updated": 17_700_000_005, "cmp_id": 300,
    "cmp_version": 2, "consent_screen": 1, "consent_language": "EN", "vendor_list_version": 150,
    "policy_version": 5, "is_service_specific": True, "use_non_standard_texts": False,
    "special_feature_opt_ins": (1,), "purposes_consent": (1, 2, 7),
    "purposes_li_transparency": (2, 10), "purpose_one_treatment": False, "publisher_cc": "DE",
    "vendor_consents": (1, 5), "vendor_legitimate_interests": (5,), "publisher_restrictions": (),
}


def core_bits(vendor_sections=None, **fields) -> Bits:
    """The core segment from CORE overridden by ``fields``; ``vendor_sections`` may be a function
    writing both vendor sections itself (to test range encoding)."""
    f = {**CORE, **fields}
    w = Bits().put(f["version"], 6).put(f["created"], 36).put(f["last_updated"], 36)
    w.put(f["cmp_id"], 12).put(f["cmp_version"], 12).put(f["consent_screen"], 6)
    w.letters(f["consent_language"]).put(f["vendor_list_version"], 12)
    w.put(f["policy_version"], 6).flag(f["is_service_specific"])
    w.flag(f["use_non_standard_texts"]).id_bitfield(f["special_feature_opt_ins"], 12)
    w.id_bitfield(f["purposes_consent"], 24).id_bitfield(f["purposes_li_transparency"], 24)
    w.flag(f["purpose_one_treatment"]).letters(f["publisher_cc"])
    if vendor_sections is None:
        w.vendors(f["vendor_consents"]).vendors(f["vendor_legitimate_interests"])
    else:
        vendor_sections(w)
    w.put(len(f["publisher_restrictions"]), 12)
    for purpose_id, kind, spans in f["publisher_restrictions"]:
        w.put(purpose_id, 6).put(kind, 2).ranges(spans)
    return w


def vendors_segment(kind: int, ids=(), spans=None) -> str:
    return Bits().put(kind, 3).vendors(ids, spans=spans).text()


def disclosed(ids=(1, 5, 9), spans=None) -> str:
    return vendors_segment(1, ids, spans)


def publisher_tc(consent=(), li=(), custom_consent=(), custom_li=(), count=0) -> str:
    w = Bits().put(3, 3).id_bitfield(consent, 24).id_bitfield(li, 24).put(count, 6)
    return w.id_bitfield(custom_consent, count).id_bitfield(custom_li, count).text()


def tc(*segments: str, core: Bits | None = None, **fields) -> str:
    return ".".join([(core or core_bits(**fields)).text(), *segments])


def assert_code(text, code: str, *, decoding: bool = False) -> None:
    with pytest.raises(TCFError) as caught:
        (decode if decoding else parse_for_consent)(text)
    assert caught.value.code == code, caught.value.message


def subset(actual: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert actual.get(key, "<missing>") == value, key


# --- the test vectors (tests/data/tcf_vectors.json) ------------------------------------------

@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["tc_string"][:24])
def test_valid_vectors_decode_and_pass(vector):
    subset(decode(vector["tc_string"]).to_dict(), vector["expected"])
    assert parse_for_consent(vector["tc_string"]).to_dict() == decode(vector["tc_string"]).to_dict()


@pytest.mark.parametrize("vector", VECTORS["legacy_decodable"], ids=lambda v: v["tc_string"][:24])
def test_legacy_vectors_decode_but_fail_validation(vector):
    subset(decode(vector["tc_string"]).to_dict(), vector["expected"])
    assert_code(vector["tc_string"], vector["violates"])


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["violates"])
def test_invalid_vectors(vector):
    assert_code(vector["tc_string"], vector["violates"])


# --- hand-built edge cases -----------------------------------------------------------------

def _ranges_both(w: Bits) -> None:
    w.vendors(spans=[(10, 12), (3, 3), (11, 14)])  # overlapping, out of order
    w.vendors(spans=[(7, 7)])


DECODED_CASES = {
    "bitfield vendors": (tc(disclosed()), {"vendor_consents": [1, 5],
                                           "vendor_legitimate_interests": [5]}),
    "range vendors": (tc(disclosed(), core=core_bits(_ranges_both)),
                      {"vendor_consents": [3, 10, 11, 12, 13, 14],
                       "vendor_legitimate_interests": [7]}),
    "empty vendor sections": (tc(disclosed(()), vendor_consents=(),
                                 vendor_legitimate_interests=()),
                              {"vendor_consents": [], "vendor_legitimate_interests": [],
                               "disclosed_vendors": []}),
    "disclosed as ranges": (tc(disclosed(spans=[(1, 3), (700, 702)])),
                            {"disclosed_vendors": [1, 2, 3, 700, 701, 702]}),
    "publisher restrictions": (
        tc(disclosed(), publisher_restrictions=((2, 1, [(8, 8), (20, 22)]), (7, 0, [(9, 9)]))),
        {"publisher_restrictions": [
            {"purpose_id": 2, "restriction_type": 1, "vendors": [8, 20, 21, 22]},
            {"purpose_id": 7, "restriction_type": 0, "vendors": [9]}]}),
    "publisher tc": (tc(disclosed(), publisher_tc((1, 2), (7,), (1, 3), (2,), count=3)),
                     {"publisher_tc": {"pub_purposes_consent": [1, 2],
                                       "pub_purposes_li_transparency": [7],
                                       "num_custom_purposes": 3, "custom_purposes_consent": [1, 3],
                                       "custom_purposes_li_transparency": [2]},
                      "allowed_vendors": None}),
    "allowed vendors": (tc(vendors_segment(2, (4, 6)), disclosed()),
                        {"allowed_vendors": [4, 6], "disclosed_vendors": [1, 5, 9],
                         "publisher_tc": None}),
    "segments in any order": (tc(publisher_tc((1,)), disclosed((2,))),
                              {"disclosed_vendors": [2],
                               "publisher_tc": {"pub_purposes_consent": [1],
                                                "pub_purposes_li_transparency": [],
                                                "num_custom_purposes": 0,
                                                "custom_purposes_consent": [],
                                                "custom_purposes_li_transparency": []}}),
    "timestamps": (tc(disclosed()), {"created": "2026-02-02T02:40:00Z",
                                     "last_updated": "2026-02-02T02:40:00.5Z"}),
    "trailing padding": (tc(disclosed()) + "==", {"cmp_id": 300}),
}


@pytest.mark.parametrize("text, expected", DECODED_CASES.values(), ids=DECODED_CASES.keys())
def test_decoded_cases(text, expected):
    result = parse_for_consent(text)
    subset(result.to_dict(), expected)
    json.dumps(result.to_dict())


_VALID = tc(disclosed())
_CORE_TEXT = core_bits().text()

ERROR_CASES = {
    "unknown segment type": (tc(disclosed(), Bits().put(5, 3).put(0, 21).text()), "malformed"),
    "second core segment": (tc(disclosed(), core_bits().text()), "malformed"),
    "duplicate disclosed": (tc(disclosed(), disclosed()), "malformed"),
    # drop 5 fields: restriction count, the LI section (3 fields) and the consent bitfield
    "truncated vendor section": (tc(disclosed(), core=core_bits(vendor_consents=(1, 5, 40))
                                    .drop(5)), "malformed"),
    "truncated restrictions": (tc(disclosed(), core=core_bits(
        publisher_restrictions=((1, 0, [(5, 9)]),)).drop(1)), "malformed"),
    "truncated disclosed": (_CORE_TEXT + "." + disclosed(range(1, 200))[:10], "malformed"),
    "truncated publisher tc": (tc(disclosed(), publisher_tc(count=40)[:8]), "malformed"),
    "range end below start": (tc(disclosed(), core=core_bits(
        lambda w: w.vendors(spans=[(9, 4)], max_id=9).vendors())), "malformed"),
    "range with id 0": (tc(disclosed(spans=[(0, 3)])), "malformed"),
    "range beyond max vendor id": (tc(Bits().put(1, 3).vendors(spans=[(1, 50)], max_id=20)
                                      .text()), "malformed"),
    "restriction range with id 0": (tc(disclosed(), publisher_restrictions=((1, 0, [(0, 0)]),)),
                                    "malformed"),
    "language outside A-Z": (tc(disclosed(), consent_language="E["), "malformed"),
    "trailing dot": (_VALID + ".", "malformed"),
    "empty middle segment": (_VALID.replace(".", ".."), "malformed"),
    "leading space": (" " + _VALID, "malformed"),
    "trailing newline": (_VALID + "\n", "malformed"),
    "inner whitespace": (_VALID[:10] + " " + _VALID[10:], "malformed"),
    "standard base64 chars": (_VALID.replace("A", "+", 1), "malformed"),
    "padding in the middle": (_VALID[:10] + "=" + _VALID[10:], "malformed"),
    "too much padding": (_VALID + "===", "malformed"),
    "only a dot": (".", "malformed"),
    "single char version 2": ("C", "malformed"),
    "single char version 1": ("B", "not_version_2"),
    "version 3": ("D" + _VALID[1:], "not_version_2"),
    "bad base64 comes before version": ("B!", "malformed"),
    "version 1 with bad later segment": ("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA.!", "malformed"),
    "short version 1": ("BA", "not_version_2"),
}


@pytest.mark.parametrize("text, code", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_error_cases(text, code):
    assert_code(text, code, decoding=True)
    assert_code(text, code)


RULE_ORDER = [
    ({"policy_version": 2, "is_service_specific": False, "purposes_li_transparency": (3,)},
     False, "policy_version_below_4"),
    ({"policy_version": 4, "is_service_specific": False, "purposes_li_transparency": (3,)},
     False, "not_service_specific"),
    ({"purposes_li_transparency": (2, 6)}, False, "legitimate_interest_for_purposes_3_to_6"),
    ({"purposes_li_transparency": (2, 7, 11)}, False, "disclosed_vendors_missing"),
    ({"purposes_li_transparency": (4,)}, True, "legitimate_interest_for_purposes_3_to_6"),
]


@pytest.mark.parametrize("fields, with_disclosed, code", RULE_ORDER)
def test_rule_order(fields, with_disclosed, code):
    text = tc(*([disclosed()] if with_disclosed else []), **fields)
    decode(text)  # every one of these decodes
    assert_code(text, code)


def test_policy_version_4_accepted():
    assert parse_for_consent(tc(disclosed(), policy_version=4)).policy_version == 4


def test_decoded_types():
    result = decode(_VALID)
    assert isinstance(result, TCString)
    assert result.created == datetime(2026, 2, 2, 2, 40, tzinfo=UTC)
    assert result.created.tzinfo is not None
    assert result.version == 2 and result.consent_language == "EN"
    assert result.purpose_one_treatment is False and result.use_non_standard_texts is False
    assert result.disclosed_vendors == (1, 5, 9)
    validate(result)
    with pytest.raises(AttributeError):
        result.cmp_id = 1  # frozen


def test_error_shape():
    with pytest.raises(TCFError) as caught:
        decode("not a tc string!")
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == "malformed"
    assert caught.value.message == str(caught.value) == "TC string is not base64url."


@pytest.mark.parametrize("value", [None, b"CPc", 42])
def test_non_string_input_is_malformed(value):
    assert_code(value, "malformed", decoding=True)


def test_huge_range_lists_are_cheap_or_rejected():
    every_vendor = [(1, 0xFFFF)] * 4095
    started = time.perf_counter()
    one = tc(disclosed(), publisher_restrictions=((1, 0, every_vendor),))
    assert len(decode(one).publisher_restrictions[0][2]) == 0xFFFF
    many = tc(disclosed(), publisher_restrictions=tuple((p, 0, [(1, 0xFFFF)])
                                                        for p in range(1, 24)))
    assert_code(many, "malformed", decoding=True)
    assert time.perf_counter() - started < 5


# --- fuzzing -------------------------------------------------------------------------------

def _survives(text: str) -> None:
    for parse in (decode, parse_for_consent):
        try:
            result = parse(text)
        except TCFError as error:
            assert error.code in CODES
            assert isinstance(error.message, str) and error.message
        else:
            assert isinstance(result, TCString)
            json.dumps(result.to_dict())


@FUZZ
@given(st.text())
def test_fuzz_any_text(text):
    _survives(text)


@FUZZ
@given(st.text(alphabet=ALPHABET + ".=", max_size=300))
def test_fuzz_base64url_text(text):
    _survives(text)


@FUZZ
@given(st.text(alphabet=ALPHABET, min_size=1, max_size=120))
def test_fuzz_version_2_prefix(tail):
    _survives("C" + tail)
    _survives(_CORE_TEXT + "." + tail)


SEEDS = [v["tc_string"] for group in ("valid", "legacy_decodable") for v in VECTORS[group]]


def _flip(text: str, position: int) -> str:
    """Flip one bit of one base64url character, chosen by ``position``."""
    chars = [i for i, c in enumerate(text) if c in ALPHABET]
    index = chars[(position // 6) % len(chars)]
    flipped = ALPHABET[ALPHABET.index(text[index]) ^ (1 << (5 - position % 6))]
    return text[:index] + flipped + text[index + 1:]


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(st.integers(0, 10_000), max_size=6),
       st.integers(0, 500), st.text(alphabet=ALPHABET + ".", max_size=40))
def test_fuzz_mutated_vectors(seed, flips, cut, suffix):
    mutated = seed
    for position in flips:
        mutated = _flip(mutated, position)
    _survives(mutated)
    _survives(mutated[:cut])
    _survives(mutated + "." + suffix)


def test_flip_helper_flips_one_bit():
    assert _flip("A", 5) == "B" and _flip("A.A", 6) == "A.g"


# --- round trip ----------------------------------------------------------------------------

def _spans(ids: list[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if spans and spans[-1][1] == i - 1:
            spans[-1] = (spans[-1][0], i)
        else:
            spans.append((i, i))
    return spans


vendor_ids = st.lists(st.integers(1, 1500), max_size=25).map(lambda ids: tuple(sorted(set(ids))))
purpose_ids = st.lists(st.integers(1, 24), max_size=24).map(lambda ids: tuple(sorted(set(ids))))
letters = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)


@st.composite
def tc_values(draw):
    core = {
        "version": 2, "created": draw(st.integers(0, 2**36 - 1)),
        "last_updated": draw(st.integers(0, 2**36 - 1)), "cmp_id": draw(st.integers(0, 4095)),
        "cmp_version": draw(st.integers(0, 4095)), "consent_screen": draw(st.integers(0, 63)),
        "consent_language": draw(letters), "vendor_list_version": draw(st.integers(0, 4095)),
        "policy_version": draw(st.integers(0, 63)), "is_service_specific": draw(st.booleans()),
        "use_non_standard_texts": draw(st.booleans()),
        "special_feature_opt_ins": draw(st.lists(st.integers(1, 12)).map(
            lambda ids: tuple(sorted(set(ids))))),
        "purposes_consent": draw(purpose_ids), "purposes_li_transparency": draw(purpose_ids),
        "purpose_one_treatment": draw(st.booleans()), "publisher_cc": draw(letters),
        "vendor_consents": draw(vendor_ids), "vendor_legitimate_interests": draw(vendor_ids),
        "publisher_restrictions": tuple(
            (p, k, ids) for p, k, ids in draw(st.lists(st.tuples(
                st.integers(0, 63), st.integers(0, 3), vendor_ids), max_size=4))),
    }
    extras = {
        "disclosed_vendors": draw(st.none() | vendor_ids),
        "allowed_vendors": draw(st.none() | vendor_ids),
        "publisher_tc": draw(st.none() | st.tuples(purpose_ids, purpose_ids,
                                                   st.integers(0, 63), st.data())),
    }
    return core, extras, draw(st.booleans()), draw(st.randoms())


def _rfc3339(deciseconds: int) -> str:
    seconds, tenths = divmod(deciseconds, 10)
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{tenths}" if tenths else "") + "Z"


def _maybe_list(ids):
    return None if ids is None else list(ids)


@FUZZ
@given(tc_values())
def test_round_trip(values):
    core, extras, use_ranges, rng = values

    def sections(w: Bits) -> None:
        for key in ("vendor_consents", "vendor_legitimate_interests"):
            w.vendors(spans=_spans(core[key]))

    restrictions = tuple((p, k, _spans(ids)) for p, k, ids in core["publisher_restrictions"])
    w = core_bits(sections if use_ranges else None,
                  **{**core, "publisher_restrictions": restrictions})
    segments = []
    if extras["disclosed_vendors"] is not None:
        ids = extras["disclosed_vendors"]
        segments.append(disclosed(ids, _spans(ids) if use_ranges else None))
    if extras["allowed_vendors"] is not None:
        segments.append(vendors_segment(2, extras["allowed_vendors"]))
    pub = None
    if extras["publisher_tc"] is not None:
        consent, li, count, data = extras["publisher_tc"]
        custom = st.lists(st.integers(1, max(count, 1)), max_size=count).map(
            lambda ids: sorted(set(ids)))
        pub = {"pub_purposes_consent": list(consent), "pub_purposes_li_transparency": list(li),
               "num_custom_purposes": count, "custom_purposes_consent": data.draw(custom),
               "custom_purposes_li_transparency": data.draw(custom)}
        segments.append(publisher_tc(consent, li, pub["custom_purposes_consent"],
                                     pub["custom_purposes_li_transparency"], count))
    rng.shuffle(segments)

    result = decode(".".join([w.text(), *segments])).to_dict()

    expected = {key: list(value) if isinstance(value, tuple) else value
                for key, value in core.items()}
    expected["created"] = _rfc3339(core["created"])
    expected["last_updated"] = _rfc3339(core["last_updated"])
    expected["publisher_restrictions"] = [
        {"purpose_id": p, "restriction_type": k, "vendors": list(ids)}
        for p, k, ids in core["publisher_restrictions"]]
    expected["disclosed_vendors"] = _maybe_list(extras["disclosed_vendors"])
    expected["allowed_vendors"] = _maybe_list(extras["allowed_vendors"])
    expected["publisher_tc"] = pub
    assert result == expected

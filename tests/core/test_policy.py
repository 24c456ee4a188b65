"""The policy loader: the demo policy parses; every problem names file, entry and what."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.core.errors import PolicyInvalid
from gateway.core.policy import parse_policy
from gateway.core.taxonomy import fides_taxonomy

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def taxonomy():
    return fides_taxonomy()


def demo_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in POLICIES.glob("*.yaml")}


def test_demo_policy_parses(taxonomy):
    policy = parse_policy(demo_files(), taxonomy)
    assert {"personalization", "ads", "analytics", "service"} <= set(policy.purpose_ids)
    assert policy.version.startswith(policy.declared_version + "+")
    for p in policy.purposes:
        assert set(p.notices) >= {"en", "de", "nb"}, p.id


def test_version_hash_covers_content(taxonomy):
    files = demo_files()
    a = parse_policy(files, taxonomy)
    files["purposes.yaml"] += "\n# a comment changes the content\n"
    b = parse_policy(files, taxonomy)
    assert a.declared_version == b.declared_version and a.version != b.version


def test_notice_falls_back_to_english(taxonomy):
    policy = parse_policy(demo_files(), taxonomy)
    p = policy.purpose("personalization")
    assert p.notice("de")[0] == "de"
    assert p.notice("fr")[0] == "en"
    assert p.notice(None)[1] == p.notices["en"]


def mutate(change) -> dict[str, str]:
    files = demo_files()
    doc = yaml.safe_load(files["purposes.yaml"])
    change(doc)
    files["purposes.yaml"] = yaml.safe_dump(doc, allow_unicode=True)
    return files


def p0(doc):
    return doc["purposes"][0]


def by_id(doc, pid):
    return next(p for p in doc["purposes"] if p["id"] == pid)


CASES = [
    (lambda d: p0(d).update(legal_basis="vibes"), "purpose 'personalization'", "legal_basis"),
    (lambda d: p0(d).update(data_use="personalize.mind_reading"), "purpose 'personalization'",
     "not a data use of the Fides taxonomy"),
    (lambda d: p0(d).update(id="Personalization"), "purposes[0]", "must match"),
    (lambda d: p0(d).update(version=0), "purpose 'personalization'", "'version'"),
    (lambda d: p0(d).update(lifetime_days="a year"), "purpose 'personalization'", "lifetime_days"),
    (lambda d: p0(d).update(tcf_purposes=[12]), "purpose 'personalization'", "1 to 11"),
    (lambda d: p0(d).update(consent_mode=["cookie_storage"]), "purpose 'personalization'",
     "consent_mode"),
    (lambda d: p0(d).update(gpc="yes"), "purpose 'personalization'", "true or false"),
    (lambda d: p0(d).update(colour="blue"), "purpose 'personalization'", "unknown key 'colour'"),
    (lambda d: p0(d)["notice"].pop("en"), "purpose 'personalization' notice", "English"),
    (lambda d: p0(d)["notice"]["de"].pop("title"), "purpose 'personalization' notice 'de'",
     "'title' is required"),
    (lambda d: d["purposes"].append(dict(p0(d))), "purpose 'personalization'", "used twice"),
    (lambda d: d.pop("version"), "version", "required"),
    (lambda d: d["controller"].pop("contact"), "controller", "'contact' is required"),
    (lambda d: d.update(purposes=[]), "purposes", "non-empty list"),
    (lambda d: by_id(d, "service").update(gpc=True), "purpose 'service'", "gpc"),
    (lambda d: by_id(d, "analytics").update(tcf_purposes=[8]), "purpose 'analytics'",
     "tcf_purposes"),
]


@pytest.mark.parametrize("change, entry, words", CASES)
def test_purpose_problems_name_file_entry_and_problem(taxonomy, change, entry, words):
    with pytest.raises(PolicyInvalid) as err:
        parse_policy(mutate(change), taxonomy)
    problems = err.value.problems
    assert any(
        p.file == "purposes.yaml" and p.entry == entry and words in p.message for p in problems
    ), [str(p) for p in problems]
    assert "purposes.yaml" in str(err.value)


def test_invalid_yaml_names_the_line(taxonomy):
    files = demo_files()
    files["purposes.yaml"] = "version: '1'\npurposes: [\n  - id: x\n"
    with pytest.raises(PolicyInvalid) as err:
        parse_policy(files, taxonomy)
    (problem,) = err.value.problems
    assert problem.file == "purposes.yaml" and problem.entry.startswith("line ")


def test_missing_purposes_file(taxonomy):
    with pytest.raises(PolicyInvalid, match="purposes.yaml"):
        parse_policy({}, taxonomy)


ATTR = """
attributes:
  - id: health_interests
    type: list[string]
    data_category: user.health_and_medical
    special_category: true
    purposes: [personalization, nowhere]
  - id: shoe_size
    type: float
    data_category: user.feet
    purposes: []
"""


def test_attribute_contradictions(taxonomy):
    files = demo_files()
    files["attributes.yaml"] = ATTR
    with pytest.raises(PolicyInvalid) as err:
        parse_policy(files, taxonomy)
    messages = {(p.entry, p.message) for p in err.value.problems}
    text = "\n".join(f"{e}: {m}" for e, m in messages)
    assert "attribute 'health_interests': lists purpose 'nowhere'" in text
    assert "special category (Art. 9) but lists purpose 'personalization'" in text
    assert "attribute 'shoe_size': 'type' must be one of" in text
    assert "'user.feet' is not a data category" in text
    assert all(p.file == "attributes.yaml" for p in err.value.problems)

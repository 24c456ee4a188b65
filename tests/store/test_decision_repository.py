"""DecisionRepository on both engines: a decision's row as written and read back (its facts
as JSON), a subject's decisions oldest first, and erasure of one subject's only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.store.decisions import DecisionRepository
from gateway.store.policies import PolicyRepository

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ALICE, BOB = "a" * 64, "b" * 64
FACTS = {"placement": "home_hero", "engine": "rules", "rule": "r1", "personalized": True,
         "summaries": {"en": "Because you like tea."}, "used_attributes": ["interests"],
         "reasons": [], "fallback": None}


def _decide(repo: DecisionRepository, decision_id: str, subject: str, at: datetime) -> None:
    repo.add(decision_id=decision_id, subject=subject, placement="home_hero",
             purpose="personalization", policy_version="v1", personalized=True, engine="rules",
             rule="r1", content={"banner": "tea", "rank": 1}, explanation=FACTS, actor="cl_x",
             made_at=at)


def _with_decisions(db) -> None:
    with db.write() as s:
        PolicyRepository(s).store(version="v1", declared_version="1", content_hash="h" * 64,
                                  files={}, loaded_at=T0)
        repo = DecisionRepository(s)
        _decide(repo, "dec_late", ALICE, T0 + timedelta(hours=2))
        _decide(repo, "dec_early", ALICE, T0)
        _decide(repo, "dec_bob", BOB, T0 + timedelta(hours=1))


def test_a_decision_reads_back_as_written(db):
    _with_decisions(db)
    with db.read() as s:
        row = DecisionRepository(s).get("dec_early")
        missing = DecisionRepository(s).get("dec_nothing")
    assert row is not None and missing is None
    assert (row.subject, row.placement, row.purpose, row.policy_version, row.personalized,
            row.engine, row.rule, row.actor, row.made_at) == (
        ALICE, "home_hero", "personalization", "v1", True, "rules", "r1", "cl_x", T0)
    assert row.content == {"banner": "tea", "rank": 1}
    assert row.explanation == FACTS


def test_a_subjects_decisions_oldest_first_and_erasure_takes_only_theirs(db):
    _with_decisions(db)
    with db.read() as s:
        assert [d.id for d in DecisionRepository(s).of_subject(ALICE)] == ["dec_early", "dec_late"]
    with db.write() as s:
        assert DecisionRepository(s).erase(ALICE) == 2
    with db.write() as s:
        assert DecisionRepository(s).erase(ALICE) == 0
    with db.read() as s:
        repo = DecisionRepository(s)
        assert repo.of_subject(ALICE) == []
        assert [d.id for d in repo.of_subject(BOB)] == ["dec_bob"]

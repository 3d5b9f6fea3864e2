"""Which approvals count: never the plan's author, never the applier, each person once."""

from __future__ import annotations

from reconciler.core.approval import count_approvals, same_person


def test_same_person_ignores_case_and_spacing() -> None:
    assert same_person(" Alice  Smith", "alice smith")
    assert not same_person("alice", None) and not same_person("alice", "bob")


def test_only_other_people_count_once() -> None:
    auth = count_approvals(
        [
            (1, "ALICE", None),  # the author, another spelling
            (2, "bob", None),
            (3, "deploy-bot", None),  # the applier
            (4, "Bob ", None),  # bob again
            (5, "carol", "carol"),  # recorded as the author of the plan she approved
            (6, "dave", None),
        ],
        needed=2,
        author="alice",
        performer="deploy-bot",
    )
    assert auth.approvers == ("bob", "dave") and auth.approval_ids == (2, 6)
    assert auth.approved
    assert [why for _, why in auth.refused] == [
        "the plan's author",
        "the one applying",
        "the plan's author",
    ]


def test_not_enough() -> None:
    auth = count_approvals([(1, "bob", None)], needed=2, author="alice", performer="x")
    assert not auth.approved and auth.approvers == ("bob",)

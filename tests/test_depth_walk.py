"""The acceptance walk (controller/depth_walk.py): served rounds in, tokens per round at every depth out.

Label sequences are made here (1 = the draft's token matches at that position, 0 = it does not);
a small serving loop turns them into the rounds a server at depth γ would report (accepted and
emitted per request, requests joining and leaving the batch), and the walk's estimates are checked
against walking the true labels directly at each depth.
"""

from __future__ import annotations

import random

import pytest

from controller.depth_walk import AcceptanceWalk


def _run_length(labels, n):
    k = 0
    while n + k < len(labels) and labels[n + k]:
        k += 1
    return k


def direct(requests, depth):
    """E_depth on the true labels: a round at n accepts min(run, depth), emits that + 1 (never
    past the request's end), and the next starts after."""
    tokens = rounds = 0
    for labels in requests:
        n = 0
        while n < len(labels):
            k = min(_run_length(labels, n), depth)
            tokens, rounds, n = tokens + min(k + 1, len(labels) - n), rounds + 1, n + k + 1
    return tokens / rounds


def serve(requests, gamma, batch, walk):
    """Serve the requests at depth γ, `batch` at a time (a finished one's slot takes the next),
    reporting every round to the walk as a server would."""
    queue, live = list(enumerate(requests)), {}
    while queue or live:
        while queue and len(live) < batch:
            i, labels = queue.pop(0)
            live[i] = (labels, 0)
        ids, proposed, accepted, emitted = [], [], [], []
        for i, (labels, n) in list(live.items()):
            k = min(_run_length(labels, n), gamma)
            e = min(k + 1, len(labels) - n)
            ids.append(i), proposed.append(gamma), accepted.append(k), emitted.append(e)
            if n + e >= len(labels):
                del live[i]
            else:
                live[i] = (labels, n + e)
        walk.observe(ids, proposed, accepted, emitted)
    walk.observe([], [], [])  # the last requests leave


def _fresh(alpha=0.0):
    walk = AcceptanceWalk(6, alpha)
    walk.reset(weight=0)
    return walk


def test_walk_is_exact_at_every_depth_when_no_position_is_unknown():
    """Runs of accepted tokens shorter than the served γ: every round stops on a rejection, every
    position is verified, and the walk equals walking the true labels at depths 1-6 (deeper
    and shallower than served), request ends included."""
    rng = random.Random(7)
    requests = []
    for _ in range(60):
        labels = []
        while len(labels) < rng.randint(5, 90):
            labels += [1] * rng.randint(0, 3) + [0]  # runs of 0-3 < γ 4
        requests.append(labels)
    walk = _fresh()
    serve(requests, gamma=4, batch=5, walk=walk)
    for g in range(1, 7):
        assert walk.expected_tokens(g) == pytest.approx(direct(requests, g), rel=1e-12), g


def test_walk_recovers_other_depths_when_full_accepts_hide_the_bonus_positions():
    """iid acceptance 0.75 served at γ 3: after every full accept one position is never proposed
    (the bonus); it is filled with the acceptance measured after such runs."""
    rng = random.Random(3)
    requests = [[int(rng.random() < 0.75) for _ in range(64)] for _ in range(300)]
    walk = _fresh()
    serve(requests, gamma=3, batch=8, walk=walk)
    assert walk.expected_tokens(3) == pytest.approx(direct(requests, 3), rel=1e-12)  # served: exact
    for g in (1, 2, 4, 5, 6):
        assert walk.expected_tokens(g) == pytest.approx(direct(requests, g), rel=0.02), g


def test_walk_follows_a_change_in_traffic_within_its_window():
    walk = _fresh(alpha=0.01)
    serve([[1] * 200] * 10, gamma=4, batch=2, walk=walk)
    assert walk.expected_tokens(1) == pytest.approx(2.0)
    serve([[0] * 200] * 3, gamma=4, batch=1, walk=walk)  # 600 rejections ≈ 6 windows
    assert walk.expected_tokens(1) < 1.01 and walk.expected_tokens(4) < 1.05


def test_decode_rounds_break_the_labels_and_add_nothing():
    walk = _fresh()
    for _ in range(20):
        walk.observe(["a"], [3], [1])  # accepted, rejected, ...
    walk.observe(["a"], [0], [0])  # a decode step: the pending rounds are walked as far as known
    before = [walk.expected_tokens(g) for g in range(7)]
    assert before[1] == pytest.approx(2.0) and before[3] == pytest.approx(2.0)
    for _ in range(50):
        walk.observe(["a"], [0], [0])
    assert [walk.expected_tokens(g) for g in range(7)] == before


def test_an_untried_depth_is_priced_optimistically():
    walk = AcceptanceWalk(4, 0.001)
    walk.reset(weight=8)  # the optimistic prior: g + 1 tokens at depth g
    assert [walk.expected_tokens(g) for g in range(5)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    walk.reset([1.5, 1.7, 1.8, 1.8], weight=8)  # a measured profile instead
    assert walk.expected_tokens(2) == pytest.approx(1.7)


def test_a_rejection_decides_a_deep_round_at_once():
    """A round of 6 that meets a rejection at its first position is decided by that one label:
    a poor draft is priced after one round, not after six."""
    walk = _fresh()
    walk.observe(["a", "b"], [6, 6], [0, 0])
    assert [walk.expected_tokens(g) for g in range(1, 7)] == [1.0] * 6

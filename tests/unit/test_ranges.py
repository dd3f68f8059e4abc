"""RangeSet against a brute-force byte map (random operations) and rclone's Rs form."""

from __future__ import annotations

import random

from pyclone_docker.vfs.cache.ranges import RangeSet


def test_merges_touching_and_overlapping() -> None:
    rs = RangeSet()
    rs.add(10, 20)
    rs.add(30, 40)
    assert list(rs) == [(10, 20), (30, 40)]
    rs.add(20, 30)  # touching both: one range, as rclone's merge
    assert list(rs) == [(10, 40)]
    rs.add(0, 5)
    rs.add(3, 12)
    assert list(rs) == [(0, 40)]
    rs.add(50, 50)  # empty: ignored
    assert list(rs) == [(0, 40)]


def test_contains_and_missing() -> None:
    rs = RangeSet([(0, 10), (20, 30)])
    assert rs.contains(0, 10) and rs.contains(22, 25) and rs.contains(5, 5)
    assert not rs.contains(5, 15) and not rs.contains(10, 11)
    assert rs.missing(0, 40) == [(10, 20), (30, 40)]
    assert rs.missing(5, 25) == [(10, 20)]
    assert rs.missing(12, 18) == [(12, 18)]
    assert rs.missing(0, 10) == []
    assert RangeSet().missing(3, 7) == [(3, 7)]


def test_truncation() -> None:
    rs = RangeSet([(0, 10), (20, 30), (40, 50)])
    rs.remove_from(25)
    assert list(rs) == [(0, 10), (20, 25)]
    rs.remove_from(10)
    assert list(rs) == [(0, 10)]
    rs.remove_from(0)
    assert list(rs) == []


def test_rclone_rs_round_trip() -> None:
    rs = RangeSet.from_rclone([{"Pos": 0, "Size": 65536}, {"Pos": 5000000, "Size": 65536}])
    assert rs.to_rclone() == [{"Pos": 0, "Size": 65536}, {"Pos": 5000000, "Size": 65536}]
    assert rs.size() == 131072
    assert RangeSet().to_rclone() is None
    assert RangeSet.from_rclone(None) == RangeSet()


def test_random_against_a_byte_map() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        size = 200
        have = [False] * size
        rs = RangeSet()
        for _ in range(rng.randint(1, 15)):
            op = rng.random()
            a, b = sorted((rng.randrange(size + 1), rng.randrange(size + 1)))
            if op < 0.8:
                rs.add(a, b)
                for k in range(a, b):
                    have[k] = True
            else:
                rs.remove_from(a)
                for k in range(a, size):
                    have[k] = False
        # the set is exactly the byte map, in canonical (merged) form
        expect, k = [], 0
        while k < size:
            if have[k]:
                j = k
                while j < size and have[j]:
                    j += 1
                expect.append((k, j))
                k = j
            else:
                k += 1
        assert list(rs) == expect
        a, b = sorted((rng.randrange(size + 1), rng.randrange(size + 1)))
        assert rs.contains(a, b) == all(have[a:b])
        gaps = rs.missing(a, b)
        assert sum(e - s for s, e in gaps) == sum(not x for x in have[a:b])

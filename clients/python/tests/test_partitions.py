"""Placement over a queue's partitions: the hash and the names, as docs/PROTOCOL.md gives them."""

from __future__ import annotations

import pytest

from flotilla_client.partitions import fnv1a, parse_count, partition_for, partition_name, split_partition


@pytest.mark.parametrize(
    ("key", "hashed", "count", "partition"),
    [
        ("report-7", 0x657ABA5F, 6, 3),
        ("user-1", 0xF5537974, 6, 4),
        ("user-2", 0xF8537E2D, 6, 1),
        ("order-8", 0x227FBF42, 8, 2),
        ("a", 0xE40C292C, 4, 0),
    ],
)
def test_keys_place_jobs_by_the_protocols_test_vectors(key: str, hashed: int, count: int, partition: int) -> None:
    assert fnv1a(key) == hashed
    assert partition_for(key, count) == partition


def test_a_key_of_any_script_hashes_its_utf8_bytes() -> None:
    assert fnv1a("") == 0x811C9DC5
    assert fnv1a("é") == fnv1a("\u00e9") != fnv1a("e")
    assert partition_for("anything", 1) == 0


def test_only_a_partition_number_splits_a_name() -> None:
    assert split_partition("mail#3") == ("mail", 3)
    assert split_partition("a#b#2") == ("a#b", 2)
    for whole in ["mail", "mail#0", "mail#03", "mail#x", "mail#+3", "#3", "mail#", "mail#1024"]:
        assert split_partition(whole) == (whole, 0), whole
    assert partition_name("mail", 0) == "mail"
    assert partition_name("mail", 5) == "mail#5"


def test_a_stored_count_reads_as_workers_read_it() -> None:
    assert [parse_count(v) for v in [b"6", "6", b"1024", None]] == [6, 6, 1024, 1]
    # Anything but 1-1024 in digits is one partition, so no job goes where no worker reads.
    for bad in [b"2000", b"0", b"abc", "6_0", "+6", "0x6", " 6", b""]:
        assert parse_count(bad) == 1, bad

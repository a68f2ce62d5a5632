"""Keeping a stream whole after a store was recovered from corruption.

Two ways a recovered outbox can break a stream, and what is done about each:

- **A hole**: entries between the last ack and the counter are gone with a damaged page.
  The receiver would wait for them forever. Each lost number is filled with an ``exception``
  entry (category ``entry_lost``, critical) so the loss is visible where people look and the
  stream moves on.
- **A damaged entry**: its row was copied but its bytes are not the envelope they were (no
  longer decodable, or another number's). The receiver would refuse it at every resend and
  wait forever for that number; it is dropped (:func:`drop_damaged`) and so becomes a hole,
  filled as above.
- **A counter that went backwards**: the row holding ``next_seq`` was lost, so new entries
  reuse numbers the peer already applied and would be dropped as duplicates. The peer's ack
  then names a number beyond anything this node has sent; every unacked entry is renumbered
  to follow it and sent again. Only a store that was recovered does this (it is marked
  ``counter_unsure`` in ``sync_meta`` until the first ack it takes): anywhere else an ack
  beyond the counter is no honest peer's and is refused (:mod:`sync.bounds`), since
  following it would leave the stream waiting forever for numbers that were never sent.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from protocol import ExceptionReport, ProtocolError, decode, encode, make_envelope

__all__ = ["counter_unsure", "drop_damaged", "fill_holes", "mark_counter", "renumber_after"]

log = logging.getLogger(__name__)


def drop_damaged(conn: sqlite3.Connection, node_id: str, max_bytes: int) -> int:
    """Delete the unacked entries whose bytes are not this node's envelope of that number;
    return how many (:func:`fill_holes` then reports each as lost)."""
    rows = conn.execute(
        "SELECT o.peer, o.seq, o.payload FROM sync_outbox o LEFT JOIN sync_out s USING (peer) "
        "WHERE o.seq > coalesce(s.acked_upto, 0)"
    ).fetchall()
    damaged = []
    for peer, seq, payload in rows:
        try:
            env = decode(bytes(payload), max_bytes=max_bytes)
        except (ProtocolError, TypeError):
            damaged.append((peer, seq))
            continue
        if env.src != node_id or env.seq != seq:
            damaged.append((peer, seq))
    for peer, seq in damaged:
        conn.execute("DELETE FROM sync_outbox WHERE peer = ? AND seq = ?", (peer, seq))
        log.critical("stream to %s: entry %d was damaged in the store; reported as lost", peer, seq)
    return len(damaged)


def fill_holes(conn: sqlite3.Connection, node_id: str, tick: Callable[[], int]) -> int:
    """Fill every missing unacked sequence number with an ``entry_lost`` entry; return how many."""
    filled = 0
    streams = conn.execute("SELECT peer, next_seq, acked_upto FROM sync_out").fetchall()
    for peer, next_seq, acked in streams:
        top = conn.execute(
            "SELECT coalesce(max(seq), 0), count(*) FROM sync_outbox WHERE peer = ? AND seq > ?",
            (peer, acked),
        ).fetchone()
        last = max(next_seq - 1, top[0])
        if top[1] == last - acked:
            if last >= next_seq:
                conn.execute("UPDATE sync_out SET next_seq = ? WHERE peer = ?", (last + 1, peer))
            continue
        have = {
            r[0]
            for r in conn.execute(
                "SELECT seq FROM sync_outbox WHERE peer = ? AND seq > ?", (peer, acked)
            )
        }
        for seq in range(acked + 1, last + 1):
            if seq in have:
                continue
            body = ExceptionReport(
                exception_id=f"{node_id}-lost-{peer}-{seq}",
                category="entry_lost",
                severity="critical",
                at=int(time.time() * 1000),
                detail=f"entry {seq} to {peer} was lost with a damaged page of {node_id}'s store",
                data={"seq": seq},
            )
            env = make_envelope(src=node_id, seq=seq, lc=tick(), body=body)
            conn.execute(
                "INSERT INTO sync_outbox (peer, seq, id, kind, payload, created_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (peer, seq, env.id, env.kind, encode(env), env.ts),
            )
            filled += 1
        conn.execute("UPDATE sync_out SET next_seq = ? WHERE peer = ?", (last + 1, peer))
        log.critical("stream to %s: %d lost entries replaced by entry_lost reports", peer, filled)
    return filled


def counter_unsure(conn: sqlite3.Connection) -> bool:
    """Whether this store's stream counters may have gone backwards (it was recovered and
    has taken no ack since)."""
    row = conn.execute("SELECT value FROM sync_meta WHERE key = 'counter_unsure'").fetchone()
    return bool(row and row[0])


def mark_counter(conn: sqlite3.Connection, *, unsure: bool) -> None:
    """Record that the counters may have gone backwards (a recovered store), or no longer."""
    if unsure:
        conn.execute(
            "INSERT INTO sync_meta (key, value) VALUES ('counter_unsure', 1) "
            "ON CONFLICT(key) DO UPDATE SET value = 1"
        )
    else:
        conn.execute("DELETE FROM sync_meta WHERE key = 'counter_unsure'")


def renumber_after(conn: sqlite3.Connection, peer: str, upto: int, acked: int) -> int:
    """The peer acked ``upto``, beyond anything sent: renumber unacked entries to follow it.

    Returns the new ``next_seq``."""
    rows = conn.execute(
        "SELECT seq, payload FROM sync_outbox WHERE peer = ? AND seq > ? ORDER BY seq",
        (peer, acked),
    ).fetchall()
    conn.execute("DELETE FROM sync_outbox WHERE peer = ?", (peer,))
    seq = upto
    for _, payload in rows:
        seq += 1
        env = decode(payload, max_bytes=1 << 30).model_copy(update={"seq": seq})
        conn.execute(
            "INSERT INTO sync_outbox (peer, seq, id, kind, payload, created_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (peer, seq, env.id, env.kind, encode(env), env.ts),
        )
    conn.execute(
        "INSERT INTO sync_out (peer, next_seq, acked_upto) VALUES (?, ?, ?) "
        "ON CONFLICT(peer) DO UPDATE SET next_seq = excluded.next_seq, "
        "acked_upto = excluded.acked_upto",
        (peer, seq + 1, upto),
    )
    log.critical(
        "stream to %s: the peer has applied up to %d, beyond this store's counter; "
        "%d unacked entries renumbered from %d",
        peer,
        upto,
        len(rows),
        upto + 1,
    )
    return seq + 1

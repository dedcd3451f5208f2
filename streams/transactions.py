"""Send every output of a record in the transaction of the record's own partition.

Under ``exactly_once`` faust-streaming 0.15.3 keeps one transactional producer per
partition it consumes, and picks a send's producer from the partition the send goes
to. That partition comes from the consumer's metadata, which only has the topics the
worker consumes. A send to any other topic (``accepted``, ``quarantine``, ``banned``,
``invalid``, the state and event topics) gets no transaction at all: it is visible at
once, survives an abort, and is sent again when the record is processed again.

:func:`send_in_source_transaction` gives such a send the transaction of the record
being processed, the one that also commits that record's offset. Sends outside any
record, such as those of the periodic sweep, keep faust's choice.
"""

from __future__ import annotations

from typing import Any

import faust


def source_transactional_id(app: Any, event: Any) -> str:
    """Return the transactional id faust uses for the partition of ``event``'s record."""
    tp = event.message.tp
    return f"{app.conf.id}-{app.assignor.group_for_topic(tp.topic)}-{tp.partition}"


def send_in_source_transaction(app: Any) -> None:
    """Make ``app``'s exactly-once sends to topics it does not consume transactional."""
    transactions = app.consumer.transactions
    if getattr(transactions, "_stemedb_source_transaction", False):
        return
    send = transactions.send

    async def send_in_transaction(
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        event = faust.current_event()
        if event is not None and app.consumer.key_partition(topic, key, partition) is None:
            return await transactions.producer.send(
                topic,
                key,
                value,
                partition,
                timestamp,
                headers,
                transactional_id=source_transactional_id(app, event),
            )
        return await send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )

    transactions.send = send_in_transaction
    transactions._stemedb_source_transaction = True

"""Baseline for the gate benchmark: a plain aiokafka consume-then-produce loop.

Run by ``benchmarks.gate_bench`` as a child process until SIGTERM::

    python -m benchmarks.passthrough --bootstrap-servers HOST:PORT \\
        --input IN --output OUT --group GROUP

Each input record is produced unchanged, with the same key, to ``--output``. A header
names the source partition and offset, so the benchmark can pair inputs with outputs.
The consumer and producer use the faust-streaming 0.15.3 defaults that the gate worker
runs with: ``producer_linger`` 0, ``producer_max_batch_size`` 16384, acks ``all`` and
fetches of up to 1 MiB per partition. Offsets are committed as faust commits them
under at_least_once, every 10,000 records or every 2.8 s, and only after the broker
has acknowledged the outputs of the committed records.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

logger = logging.getLogger(__name__)

# faust-streaming 0.15.3 defaults: broker_commit_every, broker_commit_interval,
# consumer_max_fetch_size, producer_max_batch_size, producer_linger.
COMMIT_EVERY_RECORDS = 10_000
COMMIT_INTERVAL_SECONDS = 2.8
MAX_PARTITION_FETCH_BYTES = 1_048_576
PRODUCER_MAX_BATCH_BYTES = 16_384
PRODUCER_LINGER_MS = 0
SOURCE_HEADER = "x-bench-source"


async def pass_through(
    bootstrap_servers: str, input_topic: str, output_topic: str, group: str, stop: asyncio.Event
) -> int:
    """Copy ``input_topic`` to ``output_topic`` until ``stop`` is set; return the count."""
    consumer = AIOKafkaConsumer(
        input_topic,
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        linger_ms=PRODUCER_LINGER_MS,
        max_batch_size=PRODUCER_MAX_BATCH_BYTES,
    )
    copied = 0
    async with consumer, producer:
        pending: list[asyncio.Future[object]] = []
        offsets: dict[TopicPartition, int] = {}
        since_commit = 0
        last_commit = time.monotonic()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for tp, messages in batches.items():
                for message in messages:
                    header = f"{tp.partition}:{message.offset}".encode()
                    pending.append(
                        await producer.send(
                            output_topic,
                            key=message.key,
                            value=message.value,
                            headers=[(SOURCE_HEADER, header)],
                        )
                    )
                    offsets[tp] = message.offset + 1
                    since_commit += 1
                    copied += 1
            due = time.monotonic() - last_commit >= COMMIT_INTERVAL_SECONDS
            if offsets and (since_commit >= COMMIT_EVERY_RECORDS or due):
                # At least once: commit only offsets whose outputs the broker has acknowledged.
                await asyncio.gather(*pending)
                pending.clear()
                await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
                offsets.clear()
                since_commit = 0
                last_commit = time.monotonic()
        await asyncio.gather(*pending)
        if offsets:
            await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    return copied


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    logger.info("passthrough %s -> %s (group %s) starting", args.input, args.output, args.group)
    copied = await pass_through(args.bootstrap_servers, args.input, args.output, args.group, stop)
    logger.info("passthrough stopped after copying %d records", copied)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.passthrough",
        description="Copy one topic to another with aiokafka until SIGTERM.",
    )
    parser.add_argument("--bootstrap-servers", required=True, help="Kafka to use")
    parser.add_argument("--input", required=True, help="topic to consume")
    parser.add_argument("--output", required=True, help="topic to produce to")
    parser.add_argument("--group", required=True, help="consumer group id")
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

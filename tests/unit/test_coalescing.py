"""The API's routing enqueuer: ids of requests answered close together share one message."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from workers.broker import CoalescingEnqueuer
from workers.names import ROUTE_CHUNK, ROUTING_QUEUE


def routing_messages(broker: StubBroker) -> list[list[str]]:
    queue = broker.queues[ROUTING_QUEUE]
    found = []
    while not queue.empty():
        message = dramatiq.Message.decode(queue.get_nowait())
        found.append(list(message.args[0]))
    return found


@pytest.fixture
def broker() -> StubBroker:
    stub = StubBroker()
    stub.declare_queue(ROUTING_QUEUE)
    return stub


def test_ids_handed_over_together_go_in_one_message_and_the_caller_never_waits(broker: StubBroker) -> None:
    failures: list[tuple[int, Exception]] = []
    enqueuer = CoalescingEnqueuer(broker, linger=0.2, on_failure=lambda n, e: failures.append((n, e)))
    threads = [threading.Thread(target=enqueuer.route_events, args=([f"e{i}"],)) for i in range(20)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 0.15  # handed over, not sent
    enqueuer.close()

    messages = routing_messages(broker)
    assert len(messages) == 1
    assert sorted(messages[0]) == sorted(f"e{i}" for i in range(20))
    assert failures == []


def test_more_ids_than_a_message_holds_are_split_and_none_is_lost(broker: StubBroker) -> None:
    enqueuer = CoalescingEnqueuer(broker, linger=0.05, on_failure=lambda n, e: None)
    ids = [f"e{i}" for i in range(ROUTE_CHUNK * 2 + 3)]
    enqueuer.route_events(ids)
    enqueuer.close()

    messages = routing_messages(broker)
    assert [len(m) for m in messages] == [ROUTE_CHUNK, ROUTE_CHUNK, 3]
    assert [i for m in messages for i in m] == ids


def test_a_broker_that_refuses_is_reported_with_the_count_for_the_relay(broker: StubBroker) -> None:
    failures: list[tuple[int, Exception]] = []
    done = threading.Event()

    def refuse(*args: Any, **kw: Any) -> None:
        raise ConnectionError("redis is down")

    def report(count: int, exc: Exception) -> None:
        failures.append((count, exc))
        done.set()

    broker.enqueue = refuse  # type: ignore[method-assign]
    enqueuer = CoalescingEnqueuer(broker, linger=0.01, on_failure=report)
    enqueuer.route_events(["a", "b", "c"])

    assert done.wait(5)
    assert failures[0][0] == 3 and "redis is down" in str(failures[0][1])
    enqueuer.close()


def test_after_close_ids_are_refused_so_the_caller_leaves_them_to_the_relay(broker: StubBroker) -> None:
    enqueuer = CoalescingEnqueuer(broker, linger=0.01, on_failure=lambda n, e: None)
    enqueuer.route_events(["a"])
    enqueuer.close()
    with pytest.raises(RuntimeError):
        enqueuer.route_events(["b"])
    assert routing_messages(broker) == [["a"]]

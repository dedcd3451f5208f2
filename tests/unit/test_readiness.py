"""/readyz fails when any consumer or agent task has exited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from streams.app import readiness_problems


@dataclass
class _Task:
    crashed: bool = False
    should_stop: bool = False
    crash_reason: BaseException | None = None


@dataclass
class _Agent:
    _actors: list[_Task] = field(default_factory=lambda: [_Task()])


@dataclass
class _Recovery:
    completed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Tables:
    recovery: _Recovery = field(default_factory=_Recovery)


@dataclass
class _App:
    agents: dict[str, _Agent]
    consumer: _Task = field(default_factory=_Task)
    tables: _Tables = field(default_factory=_Tables)
    started: bool = True
    rebalancing: bool = False
    in_recovery: bool = False


def _ready_app() -> Any:
    app = _App(agents={"gate": _Agent(), "commands": _Agent()})
    app.tables.recovery.completed.set()
    return app


def test_readiness_all_tasks_running() -> None:
    assert readiness_problems(_ready_app()) == []


def test_readiness_agent_task_crashed() -> None:
    app = _ready_app()
    app.agents["gate"]._actors[0].crashed = True
    app.agents["gate"]._actors[0].crash_reason = RuntimeError("boom")
    problems = readiness_problems(app)
    assert len(problems) == 1
    assert "'gate' task exited" in problems[0]


def test_readiness_agent_without_task() -> None:
    app = _ready_app()
    app.agents["commands"]._actors.clear()
    assert readiness_problems(app) == ["agent 'commands' has no running task"]


def test_readiness_consumer_crashed() -> None:
    app = _ready_app()
    app.consumer.crashed = True
    assert readiness_problems(app)[0].startswith("consumer crashed")


def test_readiness_waits_for_recovery() -> None:
    app = _ready_app()
    app.tables.recovery.completed.clear()
    assert readiness_problems(app) == ["restoring tables from changelogs"]

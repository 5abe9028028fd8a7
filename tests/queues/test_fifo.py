"""FifoQueue and TodoFifoQueue on their own: order, lookups, push messages, bad questions."""

from __future__ import annotations

import asyncio
from unittest.mock import ANY

import anyio
import pytest

from queues import MAX_QUESTION_CHARS, FifoQueue, Job, QuestionError, QueueError, TodoFifoQueue
from queues.errors import EmptyQuestionError, QuestionTooLongError
from queues.fifo import THINKING, waiting_message
from queues.models import validate_question
from tests.queues.helpers import Recorder


def _jobs(count: int) -> list[Job]:
    return [Job(question=f"q{index}") for index in range(count)]


def test_fifo_order_head_pop_and_newest_first_listing() -> None:
    queue = FifoQueue("done")
    assert queue.is_empty() and queue.size() == 0
    assert queue.pop() is None and queue.head() is None
    first, second, third = _jobs(3)
    for job in (first, second, third):
        queue.push(job)
    assert queue.size() == len(queue) == 3 and not queue.is_empty()
    assert queue.head() is first
    assert queue.jobs() == [third, second, first]
    assert list(queue) == [first, second, third]
    assert queue.pop() is first
    assert queue.head() is second and queue.size() == 2


def test_fifo_lookup_and_delete_by_id_hash() -> None:
    queue = FifoQueue("todo")
    first, second, third = _jobs(3)
    for job in (first, second, third):
        queue.push(job)
    assert queue.get_by_id_hash(second.id_hash) is second
    assert second.id_hash in queue
    assert queue.delete_by_id_hash(second.id_hash) is second
    assert queue.get_by_id_hash(second.id_hash) is None
    assert queue.delete_by_id_hash(second.id_hash) is None
    assert [queue.pop(), queue.pop(), queue.pop()] == [first, third, None]


def test_push_front_goes_first_and_duplicates_are_refused() -> None:
    queue = FifoQueue("todo")
    first, second = _jobs(2)
    queue.push(first)
    queue.push_front(second)
    assert queue.head() is second
    with pytest.raises(QueueError, match="already in the todo queue"):
        queue.push(first)
    assert queue.size() == 2


def test_event_names_follow_the_original_ui() -> None:
    assert FifoQueue("done").event == "done_update"
    assert FifoQueue("running", event="run_update").event == "run_update"


def test_waiting_message_wording() -> None:
    assert waiting_message(0) == THINKING == "hmm... let me think"
    assert waiting_message(1) == "1 job before this one"
    assert waiting_message(7) == "7 jobs before this one"


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_refused(question: str) -> None:
    with pytest.raises(EmptyQuestionError) as caught:
        validate_question(question)
    assert caught.value.code == "empty_question"
    assert isinstance(caught.value, QuestionError) and isinstance(caught.value, ValueError)


def test_oversized_question_is_refused_with_the_limit() -> None:
    assert validate_question("x" * MAX_QUESTION_CHARS) == "x" * MAX_QUESTION_CHARS
    with pytest.raises(QuestionTooLongError) as caught:
        validate_question("x" * (MAX_QUESTION_CHARS + 1))
    assert caught.value.code == "question_too_long"
    assert "5001" in str(caught.value) and "5000" in str(caught.value)


def test_non_text_question_is_refused() -> None:
    with pytest.raises(QuestionError, match="must be text"):
        validate_question(42)


@pytest.mark.anyio
async def test_push_job_speaks_the_wait_and_counts() -> None:
    recorder = Recorder()
    todo = TodoFifoQueue(recorder.emit_audio, recorder.emit_event)
    first = await todo.push_job("  what time is it  ", client_id="a")
    await todo.push_job("what day is it", client_id="b")
    await todo.push_job("2 plus 2", client_id="a")
    assert first.question == "what time is it" and first.client_id == "a"
    assert recorder.audio == [
        (THINKING, "a"),
        ("1 job before this one", "b"),
        ("2 jobs before this one", "a"),
    ]
    # Each asker is told its job's id, then every client the new count.
    assert recorder.events == [
        event
        for n, job_client in zip((1, 2, 3), ("a", "b", "a"), strict=True)
        for event in (("queued", {"id_hash": ANY}, job_client), ("todo_update", {"value": n}, None))
    ]
    assert recorder.events[0][1] == {"id_hash": first.id_hash}


@pytest.mark.anyio
async def test_push_job_refuses_bad_questions_without_queueing() -> None:
    recorder = Recorder()
    todo = TodoFifoQueue(recorder.emit_audio, recorder.emit_event)
    with pytest.raises(QuestionError):
        await todo.push_job("")
    with pytest.raises(QuestionTooLongError):
        await todo.push_job("y" * 6000)
    assert todo.is_empty() and recorder.audio == [] and recorder.events == []


@pytest.mark.anyio
async def test_take_sleeps_until_a_push_wakes_it() -> None:
    recorder = Recorder()
    todo = TodoFifoQueue(recorder.emit_audio, recorder.emit_event)
    taken: list[Job] = []

    async def consumer() -> None:
        taken.append(await todo.take())

    task = asyncio.create_task(consumer())
    await asyncio.sleep(0)
    assert not task.done() and taken == []
    job = await todo.push_job("hello")
    with anyio.fail_after(5):
        await task
    assert taken == [job] and todo.is_empty()

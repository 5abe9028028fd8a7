"""Framework-free asyncio job queues: todo -> running -> done | dead."""

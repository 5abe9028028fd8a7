"""Benchmarks: python -m bench.<name> (speech: bench.tts)."""

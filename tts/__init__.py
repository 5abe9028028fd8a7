"""Speech: providers, sentence-first streaming, encoding, cache and fallback chain."""

"""Corpora (TFDS builders over text, the offline default included) and the grain pipeline."""

"""Tokenizers at three granularities behind one interface: char/byte, subword, word."""

from llm_input.tokenizers.base import KINDS, Tokenizer, TokenizerError, byte_length, load
from llm_input.tokenizers.training import train

__all__ = ["KINDS", "Tokenizer", "TokenizerError", "byte_length", "load", "train"]

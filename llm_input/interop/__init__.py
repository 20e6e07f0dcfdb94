"""Formats made elsewhere: Hugging Face checkpoints in (`import_hf`) and out (`export_hf`).

Tokenizers made elsewhere are a tokenizer kind (`llm_input.tokenizers.pretrained`); checkpoints
made elsewhere become a run folder like any other (`llm_input.interop.huggingface`).
"""

"""A Hugging Face model folder of a real architecture's size, written by `transformers` itself,
to measure import-hf, report, export-hf and check-hf at scale without a download.

The weights are transformers' own random initialisation (no trained checkpoint can be had
offline) and the tokenizer a 50,257-id GPT-2-style byte-level BPE trained by `tokenizers` on the
default corpus (experiments/tokenizer_compare/byte_level_bpe.py). Needs the hf extra:

    python experiments/hf_interop/make_model.py --arch gpt2 --out /tmp/hf_gpt2
"""

import argparse
import pathlib
import subprocess
import sys

import torch
import transformers

HERE = pathlib.Path(__file__).parent


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--arch", choices=("gpt2", "llama"), default="gpt2")
  parser.add_argument("--out", required=True)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  args = parser.parse_args()
  out = pathlib.Path(args.out)
  subprocess.run([sys.executable, str(HERE.parent / "tokenizer_compare/byte_level_bpe.py"),
                  "--vocab-size", "50257", "--out", str(out)], check=True)
  if args.arch == "gpt2":  # GPT-2 small: 124M parameters, 1024 positions
    config = transformers.GPT2Config(vocab_size=50257, bos_token_id=50256, eos_token_id=50256)
  else:  # a Llama of GPT-2 small's width, with grouped K/V heads and an untied head
    config = transformers.LlamaConfig(vocab_size=50257, hidden_size=768, intermediate_size=2048,
                                      num_hidden_layers=12, num_attention_heads=12,
                                      num_key_value_heads=4, max_position_embeddings=1024,
                                      tie_word_embeddings=False, bos_token_id=50256,
                                      eos_token_id=50256)
  torch.manual_seed(0)
  dtype = getattr(torch, args.dtype)
  model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
  model.save_pretrained(out)
  print(f"{type(model).__name__}: {model.num_parameters():,} parameters ({args.dtype}) -> {out}")


if __name__ == "__main__":
  main()

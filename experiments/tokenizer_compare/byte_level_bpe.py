"""A GPT-2-style byte-level BPE trained by Hugging Face `tokenizers` on the default corpus.

It stands in for a pretrained tokenizer made elsewhere (nothing is downloaded): written as a
`tokenizer.json` by the library itself, then brought in with `llm-input tokenizer import`.

    python experiments/tokenizer_compare/byte_level_bpe.py --vocab-size 4096 --out tok/hf_src
"""

import argparse
import pathlib

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from llm_input.data import pipeline


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--vocab-size", type=int, default=4096, help="ids, <|endoftext|> included")
  parser.add_argument("--corpus", default="shakespeare")
  parser.add_argument("--out", required=True, help="folder to write tokenizer.json into")
  args = parser.parse_args()
  texts = list(pipeline.documents(pipeline.PipelineConfig(corpus=args.corpus), "train"))
  tokenizer = Tokenizer(models.BPE())
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's
  tokenizer.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=args.vocab_size - 1, show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tokenizer.train_from_iterator(texts, trainer)
  tokenizer.add_special_tokens([AddedToken("<|endoftext|>", special=True)])  # after the ranks
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  tokenizer.save(str(out / "tokenizer.json"))
  print(f"wrote {out / 'tokenizer.json'} ({tokenizer.get_vocab_size():,} ids)")


if __name__ == "__main__":
  main()

"""The `llm-input` command. Each subcommand is a thin wrapper over a library function."""

from __future__ import annotations

import argparse
import errno
import glob
import importlib.util
import json
import os
import pathlib
import platform
import sys
import threading
import time


def _split_overrides(rest: list[str]) -> list[str]:
  overrides, bad = [], []
  i = 0
  while i < len(rest):
    item = rest[i]
    if item.startswith("--config.") and "=" not in item and i + 1 < len(rest):
      item = f"{item}={rest[i + 1]}"  # --config.a.b VALUE
      i += 1
    (overrides if item.startswith("--config.") else bad).append(item)
    i += 1
  if bad:
    raise SystemExit(f"llm-input: unrecognised arguments {bad}; config overrides look like "
                     "--config.model.d_model=1024")
  return overrides


def cmd_params(args, overrides) -> int:
  from llm_input import config as config_lib
  from llm_input.errors import ConfigError

  if bool(args.config) == bool(args.run):
    raise ConfigError("params needs --config configs/NAME.py or --run RUN (a run folder, trained "
                      "or imported), one of them")
  # The config is read (and a bad file or flag refused) before the model's modules are imported.
  if args.run:
    from llm_input import tokenizers
    from llm_input.runs import RunFolder

    folder = RunFolder(args.run)
    cfg = config_lib.load_like(folder.read_config(), overrides)
    vocab_size = tokenizers.read_metadata(folder.tokenizer_dir)["vocab_size"]
  else:
    cfg, vocab_size = config_lib.load(args.config, overrides), None
  from llm_input.model import transformer
  from llm_input.train import sections as sections_lib

  model_cfg = sections_lib.model_config(cfg, vocab_size)
  rows = transformer.param_table(model_cfg)
  total = sum(r[3] for r in rows)
  if args.compile:
    return _params_compile(args, cfg, total)
  if args.json:
    print(json.dumps({"params": total, "table": [
        {"name": n, "shape": list(s), "axes": list(a), "count": c} for n, s, a, c in rows]}))
    return 0
  width = max(len(r[0]) for r in rows)
  for name, shape, axes, count in rows:
    print(f"{name:<{width}}  {str(shape):<22} {str(axes):<40} {count:>14,}")
  print(f"{'total':<{width}}  {'':<22} {'':<40} {total:>14,}")
  if args.devices:
    from llm_input.train import metrics, sharding

    memory = metrics.estimate_memory(model_cfg, cfg.data.batch_size, cfg.data.seq_len,
                                        sharding.mesh_sizes(cfg.mesh), args.devices)
    print(f"estimated training memory per device on {args.devices} devices (mesh "
          f"{memory['mesh']}): "
          f"{memory['total_bytes'] / 2**30:.2f} GiB (state {memory['state_bytes'] / 2**30:.2f}, "
          f"activations {memory['activation_bytes'] / 2**30:.2f}, logits {memory['logits_bytes'] / 2**30:.2f}, "
          f"gathered weights {memory['gathered_bytes'] / 2**30:.2f}); `--compile` asks XLA")
  print(f"parameters: {total:,}")
  return 0


def _params_compile(args, cfg, total: int) -> int:
  """params --compile: the real step compiled for N simulated CPU devices (nothing runs)."""
  import jax

  from llm_input.errors import ConfigError
  from llm_input.train import compiled, sharding

  devices = args.devices or 1
  try:
    jax.config.update("jax_num_cpu_devices", devices)
  except RuntimeError:
    pass  # the backend is up already: then it must have enough devices (checked below)
  available = jax.devices("cpu")
  if len(available) < devices:
    raise ConfigError(f"--devices {devices}: this process has {len(available)} CPU devices; run "
                      f"params in a fresh process or set XLA_FLAGS=--xla_force_host_platform_device_count={devices}")
  mesh = sharding.make_mesh(sharding.mesh_sizes(cfg.mesh), available[:devices])
  report = compiled.compile_report(cfg, mesh, f"{devices} simulated CPU")
  report["params"] = total
  if args.json:
    print(json.dumps(report))
  else:
    print(f"parameters: {total:,}")
    print(compiled.format_report(report))
    print("XLA:CPU's memory figures are an upper bound for TPU/GPU (no fusion into matmuls, "
          "fewer rematerialisation passes); `llm-input preflight --topology` asks XLA:TPU.")
  return 0


def cmd_preflight(args, overrides) -> int:
  from llm_input import config as config_lib

  cfg = config_lib.load(args.config, overrides)  # a bad config refused before JAX is imported
  from llm_input.train import compiled

  report = compiled.preflight(cfg, args.topology, compiled.parse_mesh(args.mesh))
  if args.json:
    print(json.dumps(report))
  else:
    print(f"{args.config} on {args.topology}: " + compiled.format_report(report))
  return 0 if report["fits"] else 1


def _corpus_documents(args) -> list[str]:
  from llm_input.data import pipeline

  cfg = pipeline.PipelineConfig(corpus=args.corpus, data_dir=args.data_dir)
  return list(pipeline.documents(cfg, args.split))


def _tokenizer_texts(args) -> list[str]:
  from llm_input.errors import TokenizerError
  from llm_input.tokenizers import inputs as inputs_lib

  if getattr(args, "corpus", None):
    if args.input:
      raise TokenizerError("give either --input or --corpus, not both")
    return _corpus_documents(args)
  if not args.input:
    raise TokenizerError("give --input FILE_OR_GLOB... or --corpus NAME")
  return inputs_lib.read_inputs(args.input)


def cmd_data_prepare(args, overrides) -> int:
  from llm_input.data import builders

  builder = builders.prepare(args.corpus, args.data_dir, args.doc_split,
                             validation_percent=args.validation_percent)
  splits = {name: info.num_examples for name, info in builder.info.splits.items()}
  print(f"{args.corpus}: prepared at {builder.data_dir} ({splits})")
  return 0


def cmd_data_stats(args, overrides) -> int:
  from llm_input.data import pipeline

  tokenizer = None
  if args.tokenizer:
    from llm_input import tokenizers

    tokenizer = tokenizers.load(args.tokenizer)
  cfg = pipeline.PipelineConfig(corpus=args.corpus, data_dir=args.data_dir, doc_split=args.doc_split)
  result = {}
  for split in ("train", "validation"):
    docs = list(pipeline.documents(cfg, split))
    row = {"documents": len(docs), "bytes": sum(len(d.encode("utf-8")) for d in docs),
           "words": sum(len(d.split()) for d in docs)}
    if tokenizer is not None:
      row["tokens"] = sum(len(ids) for ids in tokenizer.encode_batch(docs))
    result[split] = row
  if args.json:
    print(json.dumps(result))
  else:
    for split, row in result.items():
      print(f"{split:<11} " + "  ".join(f"{k} {v:,}" for k, v in row.items()))
  return 0


def cmd_data_bench(args, overrides) -> int:
  from llm_input import tokenizers
  from llm_input.data import pipeline

  cfg = pipeline.PipelineConfig(corpus=args.corpus, data_dir=args.data_dir, seq_len=args.seq_len,
                                batch_size=args.batch_size)
  tokenizer = tokenizers.load(args.tokenizer)
  say = (lambda *a: None) if args.json else print
  result = {"read": pipeline.benchmark(cfg, tokenizer, seconds=args.seconds, say=say)}
  workers = sorted({1, os.cpu_count() or 1})
  result["tokenize"] = [pipeline.tokenize_benchmark(cfg, tokenizer, args.tokenizer, w) for w in workers]
  if args.json:
    print(json.dumps(result))
  else:
    read = result["read"]
    print(f"training batches from the token store: {read['tokens_per_s']:,.0f} tokens/s "
          f"({read['batches']} batches of {args.batch_size}x{args.seq_len} in {read['seconds']:.1f} s)")
    base = result["tokenize"][0]["mb_per_s"]
    for row in result["tokenize"]:
      print(f"tokenization with {row['workers']} worker(s): {row['mb_per_s']:.2f} MB/s "
            f"({row['mb_per_s'] / base:.2f}x one worker; {row['bytes'] / 1e6:.1f} MB)")
  return 0


def cmd_data_tokenize(args, overrides) -> int:
  from llm_input import tokenizers
  from llm_input.data import pipeline

  cfg = pipeline.PipelineConfig(corpus=args.corpus, data_dir=args.data_dir, doc_split=args.doc_split,
                                add_bos=not args.no_bos, add_eos=not args.no_eos,
                                tokenize_workers=args.workers)
  store = pipeline.open_store(cfg, tokenizers.load(args.tokenizer))
  print(f"token store: {store.folder}")
  for split, row in store.meta["splits"].items():
    print(f"  {split}: {row['documents']:,} documents, {row['tokens']:,} tokens ({row['dtype']}), "
          f"{row['bytes']:,} bytes")
  return 0


def _check_tokenizer_out(out: str) -> None:
  """`--out` of `tokenizer train/import`: a folder, and not inside a run being trained."""
  from llm_input.errors import TokenizerError
  from llm_input.runs import RunFolder, holder, is_locked

  path = pathlib.Path(out)
  if path.exists() and not path.is_dir():
    raise TokenizerError(f"--out {out!r} is an existing file; give a folder path")
  if is_locked(path.parent):
    raise TokenizerError(f"--out {out!r} is inside a run folder that a trainer is writing "
                         f"({holder(RunFolder(path.parent))}); choose another --out")
  run = RunFolder(path.parent)
  if path.resolve() == run.tokenizer_dir.resolve() and run.has_config():
    raise TokenizerError(f"--out {out!r} is the tokenizer of the run in {run.path} (its "
                         "checkpoints are in its ids); choose another --out, and train a new run "
                         "with it by --config.tokenizer.path")


def cmd_tokenizer_train(args, overrides) -> int:
  from llm_input import tokenizers

  _check_tokenizer_out(args.out)
  texts = _tokenizer_texts(args)
  start = time.perf_counter()
  options = tokenizers.TokenizerOptions(
      lowercase=args.lowercase, byte_fallback=args.byte_fallback, split_digits=args.split_digits,
      character_coverage=args.character_coverage, normalization=args.normalization,
      max_sentences=args.max_sentences, seed=args.seed)
  tokenizer = tokenizers.train(args.kind, args.vocab_size, texts, options)
  seconds = time.perf_counter() - start
  folder = tokenizer.save(args.out)
  note = ""
  if args.kind in ("char", "word") and tokenizer.vocab_size < args.vocab_size:
    note = (f" (the text has only {tokenizer.vocab_size - tokenizer.num_special_ids:,} distinct "
            f"{args.kind}s, all kept)")
  if tokenizer.fixed_vocab_size is not None and args.vocab_size != tokenizer.vocab_size:
    note = f" ({args.kind} vocabulary is fixed at {tokenizer.fixed_vocab_size} ids)"
  print(f"trained {args.kind} tokenizer: vocab_size {tokenizer.vocab_size:,}{note} in "
        f"{seconds:.1f} s -> {folder}")
  return 0


def cmd_tokenizer_import(args, overrides) -> int:
  from llm_input import tokenizers
  from llm_input.errors import TokenizerError

  _check_tokenizer_out(args.out)
  specials = {}
  for item in args.special or ():
    name, _, value = item.rpartition("=")
    if not name or not value.isdigit():
      raise TokenizerError(f"--special {item!r}: give TOKEN=ID, e.g. '<|endoftext|>=50256'")
    specials[name] = int(value)
  tokenizer = tokenizers.import_tokenizer(
      args.source, pattern=args.pattern, specials=specials or None,
      roles={"bos": args.bos, "eos": args.eos, "pad": args.pad, "unk": args.unk})
  folder = tokenizer.save(args.out)
  roles = ", ".join(f"{role} {i} {tokenizer.id_to_piece(i)!r}" for role, i in tokenizer.special_ids.items())
  print(f"imported {tokenizer.kind} tokenizer: vocab_size {tokenizer.vocab_size:,} ({roles}) -> {folder}")
  return 0


def cmd_tokenizer_stats(args, overrides) -> int:
  from llm_input import tokenizers
  from llm_input.tokenizers import stats

  tokenizer = tokenizers.load(args.tokenizer)
  result = stats.compute(tokenizer, _tokenizer_texts(args))
  if args.json:
    keys = ("tokens_per_word", "bytes_per_token", "chars_per_token", "unk_rate",
            "words_with_unk_rate", "vocab_size", "vocab_used", "encode_mb_per_s")
    print(json.dumps({k: getattr(result, k) for k in keys}))
  else:
    print(f"{tokenizer.kind} tokenizer at {args.tokenizer}")
    print(stats.format_table(result))
  return 0


def cmd_tokenizer_compare(args, overrides) -> int:
  from llm_input import tokenizers
  from llm_input.errors import TokenizerError
  from llm_input.tokenizers import stats
  from llm_input.tokenizers import inputs as inputs_lib

  if not args.input and not args.corpus:
    raise TokenizerError("give the texts to compare on: --input FILE_OR_GLOB (repeatable) and/or --corpus NAME")
  loaded = [(name, tokenizers.load(name)) for name in args.tokenizer]  # every folder checked first
  texts = [(pattern, inputs_lib.read_inputs([pattern])) for pattern in args.input or ()]
  if args.corpus:
    texts.append((f"{args.corpus} ({args.split})", _corpus_documents(args)))
  rows = [{"tokenizer": name, "kind": tokenizer.kind,
           "text": label, "stats": stats.compute(tokenizer, docs).to_dict()}
          for name, tokenizer in loaded for label, docs in texts]
  if args.plot:
    stats.compare_plot(rows, args.plot)
  if args.json:
    print(json.dumps(rows))
  else:
    print(stats.compare_table(rows))
    if args.plot:
      print(f"plot: {args.plot}")
  return 0


def cmd_tokenizer_show(args, overrides) -> int:
  from llm_input import tokenizers

  tokenizer = tokenizers.load(args.tokenizer)
  for text in args.text:
    pieces = tokenizer.pieces(text)
    print(f"{text!r} -> {len(pieces)} {tokenizer.kind} tokens")
    print("  ids:    " + " ".join(str(i) for _, i in pieces))
    print("  pieces: " + " ".join(repr(p) for p, _ in pieces))
  return 0


def _join_job(args) -> bool:
  """Joins a multi-process job when the flags (or their environment variables) describe one."""
  from llm_input import distributed

  return distributed.initialize(args.coordinator, args.num_processes, args.process_id, args.multihost)


def _is_lead() -> bool:
  import jax

  return jax.process_index() == 0


def cmd_launch_local(args, overrides) -> int:
  from llm_input import distributed

  command = list(args.command)
  if command and command[0] == "--":
    command = command[1:]
  return distributed.launch_local(args.processes, command, args.devices_per_process)


def cmd_train(args, overrides) -> int:
  from llm_input import config as config_lib
  from llm_input.runs import RunFolder

  # The config file and the workdir are checked before joining a job and importing JAX.
  cfg = config_lib.load(args.config, overrides)
  RunFolder(args.workdir).check_trainable()
  _join_job(args)
  from llm_input.train import loop

  if args.branch_from:
    from llm_input.train import branch

    from llm_input import distributed

    if _is_lead():
      branch.prepare_branch(cfg, args.workdir, args.branch_from)
    distributed.barrier("llm_input: cooldown branch prepared")
  result = loop.train(cfg, args.workdir, allow_config_change=args.allow_config_change)
  if result["status"] == "preempted" or not _is_lead():
    return 0
  workdir = result["workdir"]
  if result.get("validation"):
    v = result["validation"]
    print(f"final validation: loss {v['loss']:.4f}, perplexity {v['perplexity']:.2f}, "
          f"bits per byte {v['bits_per_byte']:.4f}")
  print(f"run folder: {workdir}\n  config.json, tokenizer/, checkpoints/, metrics.jsonl, "
        f"tensorboard/, samples.txt\n  look at it: cat {workdir}/samples.txt; "
        f"tensorboard --logdir {workdir}/tensorboard; "
        f"llm-input sample --run {workdir} --prompt 'ROMEO:'")
  return 0


def cmd_sample(args, overrides) -> int:
  from llm_input.errors import ConfigError
  from llm_input.runs import RunFolder
  from llm_input.train.sample_config import SampleConfig

  # Flags and the run folder checked before JAX is imported and the checkpoint read
  # (SampleConfig names the flags as sample.*).
  SampleConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
               top_p=args.top_p)
  if args.num < 1:
    raise ConfigError(f"--num must be >= 1, got {args.num}")
  RunFolder(args.run).readable_step(args.step)
  _join_job(args)
  from llm_input.train import reload as run_lib

  run = run_lib.load_run(args.run, step=args.step)
  if not _is_lead():
    return 0  # every process joins the job; process 0 samples and prints
  unknown = run.tokenizer.unknown_parts(args.prompt)
  if unknown:
    print(f"note: {len(unknown)} part(s) of the prompt are outside the {run.tokenizer.kind} "
          f"vocabulary and become <unk>: {', '.join(repr(u) for u in unknown[:8])}"
          + (" ..." if len(unknown) > 8 else ""), file=sys.stderr)
  prompt_tokens = len(run.prompt_ids(args.prompt))
  if run.sampler.kept_prompt(prompt_tokens) < prompt_tokens:
    print(f"note: the prompt is {prompt_tokens} tokens; the model keeps its last "
          f"{run.sampler.kept_prompt(prompt_tokens)} (context {run.sampler.context})", file=sys.stderr)
  for i in range(args.num):
    text = run.generate(args.prompt, args.max_new_tokens, temperature=args.temperature,
                        top_k=args.top_k, top_p=args.top_p, seed=args.seed + i)
    print(f"{args.prompt}{text}")
    if i + 1 < args.num:
      print("---")
  return 0


def cmd_info(args, overrides) -> int:
  """Versions, devices and host-memory mode: what to paste into a bug report or a results row."""
  import importlib.metadata as md

  import jax

  from llm_input import host_memory

  info = {"python": platform.python_version(), "platform": platform.platform(),
          "packages": {}, "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()], "host_memory": host_memory.status()}
  for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "sentencepiece",
               "tensorflow-datasets", "ml-collections"):
    try:
      info["packages"][name] = md.version(name)
    except md.PackageNotFoundError:
      info["packages"][name] = None
  if args.json:
    print(json.dumps(info))
  else:
    print(f"python {info['python']} on {info['platform']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    print(f"backend {info['backend']}: {len(info['devices'])} device(s) {info['devices'][0]}")
    print(f"host memory: {info['host_memory']}")
  return 0


def cmd_bench(args, overrides) -> int:
  from llm_input import config as config_lib

  cfg = config_lib.load(args.config, overrides)  # a bad config refused before JAX is imported
  _join_job(args)
  from llm_input.train import bench

  result = bench.run(cfg, steps=args.steps, skip_peak=args.skip_peak,
                     compile_depths=args.compile_depths, loop_steps=args.loop_steps,
                     parts=args.breakdown, plain_jax=args.plain_jax, profile=args.profile)
  if _is_lead():
    print(json.dumps(result, indent=None if args.json else 2))
    if "profile" in result and not args.json:
      print(bench.format_profile(result["profile"]))
  return 0


def cmd_sweep(args, overrides) -> int:
  from llm_input import sweep as sweep_lib
  from llm_input.errors import ConfigError

  sweep = sweep_lib.load(args.file, args.arg, args.root)
  if args.seeds is not None:
    if args.seeds < 1:
      raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    sweep.seeds = list(range(args.seeds))
  shard = sweep_lib.parse_shard(args.shard)
  if args.print:
    print("\n".join(sweep.commands(shard)))
    return 0
  if args.table:
    from llm_input.analysis import sweep_tables
    from llm_input.runs import RunFolder

    finished = [RunFolder(f) for f, _ in sweep.expand(validate=False) if RunFolder(f).finished()]
    if args.baselines:  # each finished run's Kneser-Ney baselines, once per set of tokens
      from llm_input.analysis import ngram

      cache: dict = {}
      for run in finished:
        if not run.read_baselines():
          ngram.run_baselines(run.path, cache=cache, say=lambda *_: None)
    if args.documents:  # each finished run's loss per held-out document, for the bootstrap
      from llm_input.analysis import documents

      for run in finished:
        documents.run_documents(run.path, say=lambda *_: None)
    rows = sweep_lib.collect(sweep)
    records = {run.name: record for run in finished if (record := run.read_documents())}
    out = args.out or str(pathlib.Path(args.file).parent)
    paths = sweep_tables.write_table(sweep, rows, out, x=args.x, y=args.y, documents=records)
    print(pathlib.Path(paths["markdown"]).read_text())
    print(f"wrote {paths['markdown']}, {paths['csv']}, {paths['plot']}")
    return 0
  sweep_lib.run_all(sweep, refresh=args.refresh, shard=shard)
  print(f"sweep {sweep.name}: done; tabulate with `llm-input sweep {args.file} --table`")
  return 0


def cmd_baseline_ngram(args, overrides) -> int:
  from llm_input import tokenizers
  from llm_input.analysis import ngram
  from llm_input.data import pipeline
  from llm_input.errors import ConfigError

  if args.run:
    if args.corpus or args.tokenizer or args.seq_len:
      raise ConfigError("give --run (its corpus, tokenizer and seq_len) or --corpus with "
                        "--tokenizer [--seq-len], not both")
    from llm_input.runs import RunFolder

    run = RunFolder(args.run)
    cfg = pipeline.PipelineConfig.from_config(run.read_config())
    tokenizer = tokenizers.load(run.tokenizer_dir)
  else:
    if not (args.corpus and args.tokenizer):
      raise ConfigError("baseline ngram needs --run RUN, or --corpus C and --tokenizer FOLDER")
    tokenizer = tokenizers.load(args.tokenizer)
    cfg = pipeline.PipelineConfig(corpus=args.corpus, data_dir=args.data_dir,
                                  seq_len=args.seq_len or 256)
  cfg.validate()
  if not isinstance(args.order, int) or not 1 <= args.order <= ngram.MAX_ORDER:
    raise ConfigError(f"--order must be an integer from 1 to {ngram.MAX_ORDER}, got {args.order}")
  ngram.KneserNey(args.order, tokenizer.vocab_size, args.discount)  # checks --discount first
  say = (lambda *_: None) if args.json else print
  if args.run:  # written to the run folder, where tables and the report read them
    rows = ngram.run_baselines(args.run, args.order, args.discount, say=say)["rows"]
  else:
    rows = ngram.baselines(cfg, tokenizer, range(1, args.order + 1), args.discount, say=say)
  if args.json:
    print(json.dumps({"corpus": cfg.corpus, "tokenizer": tokenizer.kind,
                      "vocab_size": tokenizer.vocab_size, "seq_len": cfg.seq_len, "rows": rows}))
    return 0
  print(f"interpolated Kneser-Ney (discount {args.discount}) on {cfg.corpus}'s validation split, "
        f"{tokenizer.kind} tokenizer ({tokenizer.vocab_size:,} ids), the evaluation's targets at "
        f"seq_len {cfg.seq_len}:")
  for r in rows:
    print(f"  order {r['order']}: {r['bits_per_byte']:.4f} bits per byte, {r['nats_per_token']:.4f} "
          f"nats per token ({r['targets']:,} targets, {r['target_bytes']:,} bytes; "
          f"{r['train_tokens']:,} training tokens)")
  return 0


def cmd_eval(args, overrides) -> int:
  from llm_input.analysis import documents

  say = (lambda *_: None) if args.json else print
  result = documents.run_documents(args.run, say=say)
  if args.json:
    print(json.dumps(result))
    return 0
  docs = result["documents"]
  print(f"{args.run}: step {result['step']}, {result['split']} split, {len(docs)} documents, "
        f"{result['bits_per_byte']:.4f} bits per byte (in val_documents.json)")
  for d in docs:
    print(f"  document {d['index']}: {d['bits_per_byte']:.4f} bits per byte ({d['bytes']:,} target "
          f"bytes, {d['tokens']:,} tokens)")
  return 0


def cmd_explore(args, overrides) -> int:
  from llm_input.explore import server

  explorer = server.Explorer(args.run, args.tokenizer or [])
  for r in explorer.runs.values():
    print(f"{r.name}: {r.error or r.run.folder.state()}")
  httpd = server.make_server(explorer, args.port)
  url = f"http://127.0.0.1:{httpd.server_address[1]}/?" + "&".join(f"run={n}" for n in list(explorer.runs)[:2])
  print(f"explorer: {url}  (Ctrl-C stops it)", flush=True)
  try:
    httpd.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    httpd.server_close()
  return 0


def cmd_import_hf(args, overrides) -> int:
  from llm_input.interop import huggingface

  huggingface.import_hf(getattr(args, "from"), args.out, overrides, tokenizer_path=args.tokenizer)
  return 0


def cmd_export_hf(args, overrides) -> int:
  from llm_input.interop import huggingface

  huggingface.export_hf(args.run, args.out, step=args.step, dtype=args.dtype)
  return 0


def _sentences(arg: str | None) -> list[str] | None:
  """The non-blank lines of `--sentences FILE` (None without the flag)."""
  from llm_input.errors import ConfigError
  from llm_input.tokenizers import inputs as inputs_lib

  if not arg:
    return None
  path = pathlib.Path(arg)
  if not path.is_file():
    raise ConfigError(f"--sentences {arg!r} is not a file; give a text file with one sentence per line")
  return [s for s in inputs_lib.read_text(path).splitlines() if s.strip()]


def cmd_check_hf(args, overrides) -> int:
  from llm_input.interop import huggingface

  result = huggingface.check_hf(args.run, getattr(args, "from"), _sentences(args.sentences),
                                args.tolerance)
  if args.json:
    print(json.dumps(result))
  else:
    print(f"{'sentence':<56} {'tokens':>6} {'max |dlogit|':>12} {'relative':>10} {'KL mean':>10} "
          f"{'KL max':>10} {'top-1 agree':>11}")
    for r in result["rows"]:
      print(f"{r['sentence'][:56]:<56} {r['tokens']:>6} {r['max_abs_diff']:>12.3g} "
            f"{r['max_rel_diff']:>10.3g} {r['kl_mean']:>10.3g} {r['kl_max']:>10.3g} "
            f"{r['top1_agree']:>11.0%}")
    verdict = "same model" if result["ok"] else "DIFFERENT"
    print(f"{verdict}: largest difference {result['max_abs_diff']:.3g} ({result['max_rel_diff']:.3g} "
          f"of the largest logit; tolerance {result['tolerance']:g}), KL(HF || ours) "
          f"{result['kl_mean']:.3g} nats per token on average, {result['kl_max']:.3g} at most "
          f"(transformers {result['transformers']}, torch {result['torch']})")
  return 0 if result["ok"] else 1


def cmd_report(args, overrides) -> int:
  from llm_input.errors import ConfigError

  if bool(args.run) == bool(args.sweep):
    raise ConfigError("give exactly one of --run DIR or --sweep experiments/NAME[/sweep.py]")
  if args.run:  # the flags and the run folder checked before the heavy imports
    from llm_input.runs import RunFolder

    sentences = _sentences(args.sentences)
    probes = args.probes.split(",") if args.probes else None
    RunFolder(args.run).readable_step()
  _join_job(args)
  if not _is_lead():
    return 0  # the report reads one checkpoint on one device: process 0 writes it
  from llm_input.analysis import report

  if args.sweep:
    path = pathlib.Path(args.sweep)
    out = report.sweep_report(str(path / "sweep.py" if path.is_dir() else path), args.arg, args.root)
  else:
    out = report.run_report(args.run, sentences=sentences, probes=probes)
  print(f"report: {out}")
  return 0


def build_parser() -> argparse.ArgumentParser:
  from llm_input import distributed
  from llm_input.tokenizers import KINDS
  from llm_input.tokenizers.options import NORMALIZATIONS

  parser = argparse.ArgumentParser(prog="llm-input", description=__doc__)
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("info", help="versions, devices and host-memory mode of this machine")
  p.add_argument("--json", action="store_true")
  p.set_defaults(func=cmd_info)

  p = sub.add_parser("params", help="parameter table and count of a config or a run folder "
                     "(abstract, no allocation)")
  p.add_argument("--config", default=None, help="configs/NAME.py[:arg]")
  p.add_argument("--run", default=None, help="a run folder (trained or imported): its config.json "
                 "and tokenizer")
  p.add_argument("--json", action="store_true")
  p.add_argument("--devices", type=int, default=0,
                 help="also estimate training memory per device for the config's mesh on N devices")
  p.add_argument("--compile", action="store_true",
                 help="compile the real train step for --devices simulated CPU devices and print "
                 "XLA's memory per device and every collective (nothing is allocated)")
  p.set_defaults(func=cmd_params, takes_overrides=True)

  p = sub.add_parser("preflight", help="compile the train step with XLA:TPU for a TPU topology "
                     "on this machine: memory vs HBM, collectives, fits or not (needs libtpu)")
  p.add_argument("--config", required=True, help="configs/NAME.py[:arg]")
  p.add_argument("--topology", required=True, help="e.g. v5p:8x8x4 (256 chips), v5e:2x2, v4:2x2x1")
  p.add_argument("--mesh", default=None, help="data,fsdp,tensor sizes (one may be -1); default: "
                 "the config's mesh")
  p.add_argument("--json", action="store_true")
  p.set_defaults(func=cmd_preflight, takes_overrides=True)

  tok = sub.add_parser("tokenizer", help="train, measure and inspect tokenizers")
  tok_sub = tok.add_subparsers(dest="tokenizer_command", required=True)
  t = tok_sub.add_parser("train", help="train a tokenizer and save it to a folder")
  t.add_argument("--kind", required=True, choices=KINDS)
  t.add_argument("--vocab-size", type=int, required=True,
                 help="vocabulary size including specials (a cap for char and word)")
  t.add_argument("--input", nargs="+", help="UTF-8 files or globs")
  _corpus_args(t)
  t.add_argument("--out", required=True, help="folder to write (replaced atomically)")
  t.add_argument("--lowercase", action="store_true", help="word: lower-case before counting")
  t.add_argument("--byte-fallback", action=argparse.BooleanOptionalAction, default=True,
                 help="bpe/unigram: unseen characters become UTF-8 bytes instead of <unk>")
  t.add_argument("--split-digits", action=argparse.BooleanOptionalAction, default=True)
  t.add_argument("--character-coverage", type=float, default=1.0)
  t.add_argument("--normalization", default="identity", choices=NORMALIZATIONS)
  t.add_argument("--max-sentences", type=int, default=2_000_000,
                 help="bpe/unigram: lines sampled for training (bounds memory)")
  t.add_argument("--seed", type=int, default=0)
  t.set_defaults(func=cmd_tokenizer_train)

  t = tok_sub.add_parser("import", help="a tokenizer made elsewhere (Hugging Face tokenizer.json, "
                         "GPT-2 vocab.json + merges.txt, *.tiktoken, SentencePiece *.model) as a "
                         "tokenizer folder, with its original ids")
  t.add_argument("--from", dest="source", required=True, help="file or folder to import")
  t.add_argument("--out", required=True, help="folder to write (replaced atomically)")
  t.add_argument("--pattern", default=None, help="tiktoken: the split pattern, gpt2|cl100k|o200k "
                 "or a regular expression")
  t.add_argument("--special", action="append", metavar="TOKEN=ID",
                 help="tiktoken: a special token and its id (repeatable; default: the named "
                 "pattern's, or <|endoftext|> after the ranks)")
  for role in ("bos", "eos", "pad", "unk"):
    t.add_argument(f"--{role}", default=None, metavar="TOKEN",
                   help=f"the special token that is {role} (default: tokenizer_config.json, then the usual names)")
  t.set_defaults(func=cmd_tokenizer_import)

  t = tok_sub.add_parser("stats", help="tokens per word, bytes per token, unknown rate, ...")
  t.add_argument("--tokenizer", required=True)
  t.add_argument("--input", nargs="+")
  _corpus_args(t, default_split="validation")
  t.add_argument("--json", action="store_true")
  t.set_defaults(func=cmd_tokenizer_stats)

  t = tok_sub.add_parser("compare", help="the field's metrics for several tokenizers on the same "
                         "texts: fertility, continued words, compression, Rényi efficiency, ...")
  t.add_argument("--tokenizer", action="append", required=True, help="tokenizer folder (repeatable)")
  t.add_argument("--input", action="append", help="UTF-8 files or a glob: one text (repeatable)")
  _corpus_args(t, default_split="validation")
  t.add_argument("--json", action="store_true")
  t.add_argument("--plot", default=None, help="write bar charts of the metrics to this PNG")
  t.set_defaults(func=cmd_tokenizer_compare)

  t = tok_sub.add_parser("show", help="the pieces and ids of a text")
  t.add_argument("--tokenizer", required=True)
  t.add_argument("text", nargs="+")
  t.set_defaults(func=cmd_tokenizer_show)

  data = sub.add_parser("data", help="prepare corpora, count them, benchmark the pipeline")
  data_sub = data.add_subparsers(dest="data_command", required=True)
  d = data_sub.add_parser("prepare", help="build a corpus once under the data dir")
  d.add_argument("--corpus", default="shakespeare", help="shakespeare | text:GLOB | tfds:NAME")
  d.add_argument("--data-dir", default=None, help="default: $LLM_INPUT_DATA or ~/.cache/llm_input")
  d.add_argument("--doc-split", default="file", choices=["file", "blank_line"])
  d.add_argument("--validation-percent", type=float, default=5.0,
                 help="text: and shakespeare: share of documents held out by key hash "
                      "(data.validation_percent; shakespeare 12 = 3 plays)")
  d.set_defaults(func=cmd_data_prepare)
  d = data_sub.add_parser("stats", help="documents, bytes, words (and tokens) per split")
  d.add_argument("--corpus", default="shakespeare")
  d.add_argument("--data-dir", default=None)
  d.add_argument("--doc-split", default="file", choices=["file", "blank_line"])
  d.add_argument("--tokenizer", default=None)
  d.add_argument("--json", action="store_true")
  d.set_defaults(func=cmd_data_stats)
  d = data_sub.add_parser("tokenize", help="tokenize a corpus once into its token store")
  d.add_argument("--corpus", default="shakespeare")
  d.add_argument("--data-dir", default=None)
  d.add_argument("--doc-split", default="file", choices=["file", "blank_line"])
  d.add_argument("--tokenizer", required=True, help="tokenizer folder")
  d.add_argument("--workers", type=int, default=0, help="processes (0 = every core)")
  d.add_argument("--no-bos", action="store_true", help="documents without <s> (data.add_bos=False)")
  d.add_argument("--no-eos", action="store_true", help="documents without </s> (data.add_eos=False)")
  d.set_defaults(func=cmd_data_tokenize)
  d = data_sub.add_parser("bench", help="training-batch read and tokenization throughput")
  d.add_argument("--corpus", default="shakespeare")
  d.add_argument("--data-dir", default=None)
  d.add_argument("--tokenizer", required=True)
  d.add_argument("--seq-len", type=int, default=256)
  d.add_argument("--batch-size", type=int, default=8)
  d.add_argument("--seconds", type=float, default=10.0)
  d.add_argument("--json", action="store_true")
  d.set_defaults(func=cmd_data_bench)

  p = sub.add_parser("train", help="train (or resume) a run in --workdir")
  p.add_argument("--config", required=True, help="configs/NAME.py[:arg]")
  p.add_argument("--workdir", required=True, help="run folder, e.g. runs/tiny")
  distributed.add_arguments(p)
  p.add_argument("--allow-config-change", action="store_true",
                 help="resume with changed optimizer/schedule/train settings (recorded in the run)")
  p.add_argument("--branch-from", default=None, help="a longer wsd run: start from its checkpoint "
                 "where this run's decay begins (a cooldown branch; see llm_input/train/branch.py)")
  p.set_defaults(func=cmd_train, takes_overrides=True)

  p = sub.add_parser("sample", help="generate text from a run's latest checkpoint")
  p.add_argument("--run", required=True)
  p.add_argument("--prompt", default="")
  p.add_argument("--max-new-tokens", type=int, default=200)
  p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
  p.add_argument("--top-k", type=int, default=0)
  p.add_argument("--top-p", type=float, default=0.95)
  p.add_argument("--num", type=int, default=1)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  distributed.add_arguments(p)
  p.set_defaults(func=cmd_sample)

  p = sub.add_parser("bench", help="matmul peak, train step tokens/s, MFU, compile time, memory")
  p.add_argument("--config", required=True)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--skip-peak", action="store_true")
  p.add_argument("--compile-depths", default="", help="e.g. 12,48: also time compiling scanned stacks of these depths")
  p.add_argument("--plain-jax", action="store_true",
                 help="also time a hand-written plain-JAX GPT-2 step, alternating with ours")
  p.add_argument("--breakdown", action="store_true",
                 help="also time forward+loss, forward+backward and the optimizer update alone")
  p.add_argument("--loop-steps", type=int, default=0,
                 help="also run the real loop (data, metrics, checkpoints) this many steps")
  p.add_argument("--profile", action="store_true",
                 help="also trace the step (jax.profiler) and split its time by model part, "
                      "forward and backward, device busy vs waiting, XLA's FLOPs vs ours")
  p.add_argument("--json", action="store_true")
  distributed.add_arguments(p)
  p.set_defaults(func=cmd_bench, takes_overrides=True)

  p = sub.add_parser("sweep", help="run, print or tabulate a sweep (experiments/NAME/sweep.py)")
  p.add_argument("file")
  p.add_argument("--arg", default=None, help="passed to get_sweep(arg), e.g. a scale")
  p.add_argument("--root", default=None, help="parent of the run folders (default runs/sweeps)")
  p.add_argument("--print", action="store_true", help="one `llm-input train` command per run")
  p.add_argument("--table", action="store_true", help="tabulate finished runs: md, csv, png")
  p.add_argument("--documents", action="store_true", help="--table: first compute each finished "
                 "run's loss per held-out document (`llm-input eval`; val_documents.json), then "
                 "add a bootstrap over seeds and documents to results.md")
  p.add_argument("--baselines", action="store_true", help="--table: first compute each finished "
                 "run's Kneser-Ney baselines (baselines.json; once per set of tokens), shown as "
                 "kn1_ and kn_best_ columns")
  p.add_argument("--refresh", action="store_true",
                 help="also reopen finished runs to rewrite their summary.json (no training)")
  p.add_argument("--seeds", type=int, default=None, help="run every arm with seeds 0..N-1 "
                 "(or set seeds=[...] in the sweep file); --table then gives mean ± std per arm")
  p.add_argument("--shard", default=None, help="K/N: run (or --print) only the K-th of N disjoint "
                 "slices of the runs (by a hash of the run name), e.g. one per machine; --table "
                 "still gathers every finished run")
  p.add_argument("--out", default=None, help="where --table writes (default: the sweep's folder)")
  p.add_argument("--x", default=None, help="--table: label bars by this column")
  p.add_argument("--y", default="val_bits_per_byte", help="--table: plotted column")
  p.set_defaults(func=cmd_sweep)

  p = sub.add_parser("report", help="a self-contained HTML report of a run or a sweep")
  p.add_argument("--run", default=None, help="run folder")
  p.add_argument("--sweep", default=None, help="experiments/NAME or its sweep.py")
  p.add_argument("--sentences", default=None, help="file with one sentence per line")
  p.add_argument("--probes", default=None, help="comma-separated probe words, e.g. king,love")
  p.add_argument("--arg", default=None, help="--sweep: get_sweep(arg)")
  p.add_argument("--root", default=None, help="--sweep: parent of the run folders")
  distributed.add_arguments(p)
  p.set_defaults(func=cmd_report)

  base = sub.add_parser("baseline", help="count-model baselines on a corpus and tokenizer")
  base_sub = base.add_subparsers(dest="baseline_command", required=True)
  b = base_sub.add_parser("ngram", help="interpolated Kneser-Ney bits per byte of orders 1..N on "
                          "the validation split, with the model's accounting")
  b.add_argument("--run", default=None, help="a run folder: its corpus, tokenizer and seq_len")
  b.add_argument("--corpus", default=None, help="shakespeare | text:GLOB | tfds:NAME (with --tokenizer)")
  b.add_argument("--tokenizer", default=None, help="a tokenizer folder")
  b.add_argument("--order", type=int, default=3, help="highest order (1-5); every order up to it is scored")
  b.add_argument("--discount", type=float, default=0.75)
  b.add_argument("--seq-len", type=int, default=None, help="--corpus: evaluation windows "
                 "(default 256); --run uses the run's data.seq_len")
  b.add_argument("--data-dir", default=None)
  b.add_argument("--json", action="store_true")
  b.set_defaults(func=cmd_baseline_ngram)

  p = sub.add_parser("eval", help="a run's validation loss per held-out document (val_documents.json, "
                     "for intervals over documents: `sweep --table --documents`)")
  p.add_argument("--run", required=True, help="a run folder (its latest checkpoint)")
  p.add_argument("--json", action="store_true")
  p.set_defaults(func=cmd_eval)

  p = sub.add_parser("explore", help="a local page (127.0.0.1) over run folders: tokens, "
                     "predictions, attention, neighbours, logit lens, updated as you type")
  p.add_argument("--run", action="append", required=True, help="a run folder (repeat for side by side)")
  p.add_argument("--tokenizer", action="append", help="another tokenizer folder to compare (repeatable)")
  p.add_argument("--port", type=int, default=8765)
  p.set_defaults(func=cmd_explore)

  p = sub.add_parser("import-hf", help="a local Hugging Face model folder (GPT-2, Llama, Mistral, "
                     "Qwen2) as a run folder that sample, report and export-hf read")
  p.add_argument("--from", required=True, help="folder with config.json, model.safetensors (or "
                 "a sharded index) and the tokenizer files; nothing is downloaded")
  p.add_argument("--out", required=True, help="the run folder to write (new or empty)")
  p.add_argument("--tokenizer", default=None, help="tokenizer files elsewhere than --from")
  p.set_defaults(func=cmd_import_hf, takes_overrides=True)

  p = sub.add_parser("export-hf", help="a run as a Hugging Face folder that "
                     "transformers.AutoModelForCausalLM.from_pretrained reads")
  p.add_argument("--run", required=True, help="run folder")
  p.add_argument("--out", required=True, help="the folder to write (new or empty)")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  p.add_argument("--dtype", default=None, choices=("float32", "bfloat16"),
                 help="stored dtype (default: an imported model's own, else float32)")
  p.set_defaults(func=cmd_export_hf)

  p = sub.add_parser("check-hf", help="compare a run's logits with transformers' for a Hugging "
                     "Face folder (needs the hf extra: torch, transformers)")
  p.add_argument("--run", required=True, help="run folder")
  p.add_argument("--from", required=True, help="the Hugging Face folder it should equal")
  p.add_argument("--sentences", default=None, help="file with one sentence per line")
  p.add_argument("--tolerance", type=float, default=1e-4,
                 help="largest logit difference, relative to the largest logit (exit 1 above it)")
  p.add_argument("--json", action="store_true")
  p.set_defaults(func=cmd_check_hf)

  p = sub.add_parser("launch-local", help="run a command as N JAX processes on this machine "
                     "(the multi-host rehearsal): launch-local --processes 2 -- train ...")
  p.add_argument("--processes", type=int, required=True)
  p.add_argument("--devices-per-process", type=int, default=1, help="simulated CPU devices each")
  p.add_argument("command", nargs=argparse.REMAINDER, help="-- then an llm-input command")
  p.set_defaults(func=cmd_launch_local)
  return parser


def _corpus_args(parser, default_split: str = "train") -> None:
  parser.add_argument("--corpus", default=None, help="a named corpus instead of --input "
                      "(shakespeare | text:GLOB | tfds:NAME)")
  parser.add_argument("--split", default=default_split, help="split of --corpus to read")
  parser.add_argument("--data-dir", default=None)


def main(argv: list[str] | None = None) -> int:
  from llm_input.errors import UserError

  parser = build_parser()
  args, rest = parser.parse_known_args(argv)
  overrides = _split_overrides(rest) if getattr(args, "takes_overrides", False) else []
  if rest and not getattr(args, "takes_overrides", False):
    parser.error(f"unrecognised arguments: {' '.join(rest)}")
  try:
    return args.func(args, overrides) or 0
  except UserError as err:
    print(f"llm-input: {err.label}: {err}", file=sys.stderr)
    return 2
  except Exception as err:  # noqa: BLE001
    if _lost_peer(err):
      # Another process of the job died: say so in one line and leave at once (JAX's own
      # shutdown would wait for the dead peer and then abort with a stack dump).
      print(f"llm-input: lost a peer process of this job ({str(err).splitlines()[0][:160]}); "
            "every process stops: rerun the same launch to resume from the last checkpoint",
            file=sys.stderr, flush=True)
      sys.stdout.flush()
      os._exit(3)

    from llm_input import fileio  # noqa: PLC0415

    failed = fileio.write_failure(err)
    if failed is None:
      raise
    code, path = failed
    what, path = fileio.WRITE_FAILURES[code], path or "the run folder"
    label, fix = (("read-only", "make it writable (or use another --workdir)")
                  if code == errno.EROFS else ("disk full", "free space"))
    print(f"llm-input: {label}: {what} while writing {path}; {fix} and rerun the same command "
          "(earlier checkpoints are intact)", file=sys.stderr)
    return 2


def _lost_peer(err: BaseException) -> bool:
  text = str(err)
  return type(err).__name__ in ("JaxRuntimeError", "XlaRuntimeError") and any(
      marker in text for marker in ("Gloo", "Connection closed by peer", "heartbeat", "unhealthy"))


def entry() -> None:
  """The console command: huge pages for XLA:CPU's buffers (see host_memory), then `main`."""
  from llm_input import host_memory

  host_memory.reexec_with_huge_pages()  # returns unless it re-executes
  _quiet_libtpu_without_tpus()
  _leave(main())


def _leave(code: int) -> None:
  """Exits with `code`. After a failed background write (orbax's save onto a full or read-only
  disk) its signalling threads wait forever for a commit that never comes and would hold the
  interpreter's exit: a failed command gives them 5 seconds, then leaves without them."""
  def stuck():
    return [t for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()]

  if code:
    deadline = time.monotonic() + 5
    for thread in stuck():
      try:
        thread.join(max(0.01, deadline - time.monotonic()))
      except Exception:  # noqa: BLE001 (orbax's threads raise TimeoutError from join)
        pass
    if stuck():
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(code)
  sys.exit(code)


def _quiet_libtpu_without_tpus() -> None:
  """With the tpu extra installed (for `preflight`) on a machine without TPUs or a CUDA
  plugin, JAX would try libtpu first and print a page of warnings before falling back to the
  CPU: start on the CPU directly. An explicit JAX_PLATFORMS always wins."""
  if "JAX_PLATFORMS" in os.environ or importlib.util.find_spec("libtpu") is None:
    return
  if glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
    return  # a TPU VM
  if any(importlib.util.find_spec(f"jax_cuda{v}_plugin") for v in (12, 13)):
    return
  os.environ["JAX_PLATFORMS"] = "cpu"


if __name__ == "__main__":
  entry()

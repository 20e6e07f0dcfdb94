"""Every config field with its default and a one-line comment. Presets override it.

Every field is read by the code (tests parse every preset); an unknown `--config.x` is an error.
Use: `llm-input params --config configs/base.py` (any field: `--config.model.d_model=512`).
"""

import ml_collections


ARGS = ()  # the accepted `:ARG` suffixes (config.load refuses others)

def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  del arg
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0  # Parameter init and data order.

  cfg.model = ml_collections.ConfigDict()
  m = cfg.model
  m.vocab_size = 0  # Rows of the embedding table; 0 = the tokenizer's vocab_size.
  m.d_model = 768  # Width of every token vector.
  m.num_layers = 12  # Transformer blocks.
  m.num_heads = 12  # Query heads; d_head = d_model / num_heads.
  m.num_kv_heads = ml_collections.FieldReference(None, field_type=int)  # None: = num_heads; 1: multi-query.
  m.d_mlp = ml_collections.FieldReference(None, field_type=int)  # None: 4*d_model (gelu), ~8/3*d_model (swiglu).
  m.mlp = "gelu"  # gelu | swiglu.
  m.positions = "learned"  # none | learned | sinusoidal | rope.
  m.max_len = 1024  # Rows of the learned position table.
  m.rope_base = 10000.0  # RoPE frequency base.
  m.norm = "layernorm"  # layernorm | rmsnorm.
  m.norm_eps = 1e-5  # Added to the variance in every norm.
  m.use_bias = True  # Biases in every linear layer.
  m.qkv_bias = ml_collections.FieldReference(None, field_type=bool)  # Q/K/V biases alone (Qwen2); None: = use_bias.
  m.tie_embeddings = True  # Output head = embedding table transposed.
  m.scale_embeddings = False  # Multiply token vectors by sqrt(d_model).
  m.causal = True  # Causal mask (False only for analysis).
  m.attention_impl = "blocked"  # blocked (causal query blocks) | reference (one L x L matrix) | fused (jax.nn.dot_product_attention).
  m.attention_block = 128  # blocked: queries per block (key blocks wholly in the future are skipped).
  m.attention_scale = "sqrt"  # sqrt: scores Q K^T / sqrt(d_head) | none: unscaled (the sqrt(d_k) experiment).
  m.scan_layers = True  # Scan over stacked layers (compile time flat in depth).
  m.remat = "none"  # none | full | dots: activation recomputation in the backward pass.
  m.head_loss_chunk = 0  # > 0: on one device, the train step's head + loss this many positions at a time (no (B, L, V) logits).
  m.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).
  m.init_std = 0.02  # Std of the normal init of embeddings and projections.

  cfg.tokenizer = ml_collections.ConfigDict()
  t = cfg.tokenizer
  t.kind = "bpe"  # char | byte | bpe | unigram | word.
  t.path = ""  # A tokenizer folder used as it is (e.g. from `llm-input tokenizer import`); "" = train tokenizer.kind.
  t.vocab_size = 50257  # Including specials; a cap for char and word; fixed (259) for byte.
  t.byte_fallback = True  # bpe/unigram: unseen characters become UTF-8 bytes, not <unk>.
  t.split_digits = True  # bpe/unigram: every digit is its own piece.
  t.character_coverage = 1.0  # bpe/unigram: share of characters that must be in the vocabulary.
  t.normalization = "identity"  # bpe/unigram: identity (exact round trip) | nfkc | nmt_nfkc.
  t.lowercase = False  # word: lower-case before counting.
  t.max_sentences = 2_000_000  # bpe/unigram: lines sampled for training (bounds memory).

  cfg.data = ml_collections.ConfigDict()
  d = cfg.data
  d.corpus = "shakespeare"  # shakespeare | text:PATH_OR_GLOB | tfds:NAME.
  d.seq_len = 1024  # Tokens per training sequence.
  d.batch_size = 8  # Global batch (sequences per step, over all devices and hosts).
  d.add_bos = True  # Start every document with <s>.
  d.add_eos = True  # End every document with </s>.
  d.doc_split = "file"  # text: corpora: one document per file, or per blank-line block.
  d.data_dir = ""  # Prepared corpora; "" = $LLM_INPUT_DATA or ~/.cache/llm_input.
  d.validation_corpus = ""  # text: corpora: held-out files, e.g. "text:held_out/*.txt" ("" = by hash).
  d.validation_percent = 5.0  # text: and shakespeare: share of documents held out by hash of their name.
  d.train_split = "train"  # The corpus's split to train on (TFDS datasets name their own).
  d.validation_split = "validation"  # The split evaluated (e.g. "test" for a TFDS dataset without validation).
  d.tokenize_workers = 0  # Processes that build the token store; 0 = every core.

  cfg.optimizer = ml_collections.ConfigDict()
  o = cfg.optimizer
  o.learning_rate = 6e-4  # Peak learning rate (AdamW).
  o.b1 = 0.9  # Adam first-moment decay.
  o.b2 = 0.95  # Adam second-moment decay.
  o.eps = 1e-8  # Adam epsilon.
  o.weight_decay = 0.1  # Decoupled weight decay.
  o.decay_all = False  # False: no decay on norms, biases and embeddings.
  o.grad_clip_norm = 1.0  # Global-norm clipping; 0 disables.
  o.z_loss = 0.0  # Weight of log(Z)^2 in the loss.
  o.grad_accum_steps = 1  # Micro-batches per step (batch_size must divide evenly).

  cfg.schedule = ml_collections.ConfigDict()
  cfg.schedule.kind = "cosine"  # cosine | linear | constant | wsd (warmup-stable-decay), after linear warmup.
  cfg.schedule.warmup_steps = 100  # Linear warmup steps.
  cfg.schedule.warmup_fraction = 0.0  # > 0: warmup = this share of the run's steps (replaces warmup_steps).
  cfg.schedule.decay_fraction = 0.2  # wsd: the last share of the run's steps decays linearly.
  cfg.schedule.final_lr_fraction = 0.1  # Decay to this fraction of the peak.

  cfg.train = ml_collections.ConfigDict()
  cfg.train.steps = 1000  # Optimizer steps (ignored when flops_budget > 0).
  cfg.train.flops_budget = 0.0  # If > 0: steps = budget / analytic FLOPs per step (equal compute).
  cfg.train.eval_every = 200  # Evaluate on the validation split every N steps (and at the end).
  cfg.train.eval_batches = 0  # Validation batches per evaluation; 0 = the whole split.
  cfg.train.log_every = 10  # Write metrics every N steps.
  cfg.train.on_nonfinite = "stop"  # stop | rollback (to the last good checkpoint, skipping the batches since).
  cfg.train.loss_spike_factor = 0.0  # > 1: a loss above this x the recent median counts as divergence; 0 = off.

  cfg.mesh = ml_collections.ConfigDict()
  cfg.mesh.data = -1  # Data-parallel axis size; -1 = all remaining devices.
  cfg.mesh.fsdp = 1  # Fully-sharded data-parallel axis size.
  cfg.mesh.tensor = 1  # Tensor-parallel axis size.
  # Logical axis of a parameter dimension -> mesh axis (a name, a tuple of names, or None =
  # replicated). A dimension its mesh axes do not divide stays replicated, and training says so.
  cfg.mesh.rules = ml_collections.ConfigDict({
      "batch": ("data", "fsdp"),  # Rows of a batch.
      "vocab": "tensor",  # Embedding rows / output head columns.
      "embed": "fsdp",  # d_model: FSDP shards every weight along it.
      "heads": "tensor",  # Query heads (and the output projection's input).
      "kv_heads": "tensor",  # Key/value heads (fewer with grouped-query attention).
      "mlp": "tensor",  # MLP hidden width.
      "head_dim": None,  # d_head.
      "layers": None,  # The scanned layer axis.
      # Activations also use batch, heads, kv_heads, head_dim, mlp and vocab, and:
      "length": None,  # Sequence positions.
      "act_embed": None,  # The residual stream's d_model (whole on every device).
  })

  cfg.checkpoint = ml_collections.ConfigDict()
  cfg.checkpoint.every_steps = 500  # Save every N steps...
  cfg.checkpoint.every_minutes = 10.0  # ...and every M minutes of wall clock (0 = off).
  cfg.checkpoint.keep = 3  # Keep the last k checkpoints.
  cfg.checkpoint.async_save = True  # Write in the background while training continues.
  cfg.checkpoint.save_step0 = True  # Keep the untrained model (the analysis compares against it).
  cfg.checkpoint.keep_steps = ()  # Steps always saved and kept, e.g. the branch points of wsd cooldowns.

  cfg.sample = ml_collections.ConfigDict()
  cfg.sample.prompts = ("ROMEO:", "The bank by the river", "Hello")  # Written to samples.txt.
  cfg.sample.max_new_tokens = 200  # Tokens generated per prompt (char/byte: characters).
  cfg.sample.temperature = 0.8  # 0 = greedy.
  cfg.sample.top_k = 0  # Keep the k most likely tokens; 0 = all.
  cfg.sample.top_p = 0.95  # Nucleus: smallest set with this much probability; 1 = all.

  cfg.logging = ml_collections.ConfigDict()
  cfg.logging.tensorboard = True  # TensorBoard event files in the run folder.
  cfg.logging.progress_bar = True  # tqdm bar with loss, tokens/s and ETA.
  return cfg

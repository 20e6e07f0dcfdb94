"""Every config field with its default. Presets (tiny.py, gpt2_small.py, ...) override it.

Use: `llm-input params --config configs/base.py` (any field: `--config.model.d_model=512`).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  del arg
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0  # Parameter init and data order.

  cfg.model = ml_collections.ConfigDict()
  m = cfg.model
  m.vocab_size = 50257  # Rows of the embedding table (>= the tokenizer's vocab_size).
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
  m.tie_embeddings = True  # Output head = embedding table transposed.
  m.scale_embeddings = False  # Multiply token vectors by sqrt(d_model).
  m.causal = True  # Causal mask (False only for analysis).
  m.attention_impl = "reference"  # reference (explicit einsum) | fused (jax.nn.dot_product_attention).
  m.scan_layers = True  # Scan over stacked layers (compile time flat in depth).
  m.remat = "none"  # none | full | dots: activation recomputation in the backward pass.
  m.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).
  m.init_std = 0.02  # Std of the normal init of embeddings and projections.

  cfg.data = ml_collections.ConfigDict()
  cfg.data.seq_len = 1024  # Tokens per training sequence.
  return cfg

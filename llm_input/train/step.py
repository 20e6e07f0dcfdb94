"""Train state, loss, optimizer, and the jit-compiled train and eval steps.

The state is a dict of pure pytrees {params, opt_state, step, rng}: params are the model's
`nnx.to_pure_dict`, so the same arrays go to optax, orbax and the sharding rules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from llm_input.model import transformer
from llm_input.model.config import ConfigError, ModelConfig
from llm_input.train import sharding as sharding_lib


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  learning_rate: float = 3e-4
  b1: float = 0.9
  b2: float = 0.95
  eps: float = 1e-8
  weight_decay: float = 0.1
  decay_all: bool = False  # False: no decay on norms, biases and embeddings
  grad_clip_norm: float = 1.0  # 0 disables clipping
  z_loss: float = 0.0  # weight of log(Z)^2, keeps the softmax normaliser near 1
  grad_accum_steps: int = 1
  schedule: str = "cosine"  # cosine | linear | constant (each after linear warmup)
  warmup_steps: int = 100
  final_lr_fraction: float = 0.1  # cosine/linear decay to this fraction of the peak
  total_steps: int = 1000

  def __post_init__(self):
    if self.schedule not in ("cosine", "linear", "constant"):
      raise ConfigError(f"schedule.kind: unknown {self.schedule!r}; allowed: cosine, linear, constant")
    if self.learning_rate <= 0:
      raise ConfigError(f"optimizer.learning_rate must be > 0, got {self.learning_rate}")
    if self.grad_accum_steps < 1:
      raise ConfigError(f"optimizer.grad_accum_steps must be >= 1, got {self.grad_accum_steps}")
    if self.warmup_steps < 0 or self.total_steps < 1:
      raise ConfigError("schedule.warmup_steps must be >= 0 and train.steps >= 1 "
                        f"(got {self.warmup_steps}, {self.total_steps})")
    if not 0 <= self.final_lr_fraction <= 1:
      raise ConfigError(f"schedule.final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}")


def learning_rate_schedule(cfg: OptimConfig) -> optax.Schedule:
  # Step 0 already trains at lr / warmup_steps (a zero first step would waste a batch).
  warmup = optax.linear_schedule(cfg.learning_rate / max(cfg.warmup_steps, 1), cfg.learning_rate,
                                 max(cfg.warmup_steps, 1))
  decay_steps = max(cfg.total_steps - cfg.warmup_steps, 1)
  final = cfg.learning_rate * cfg.final_lr_fraction
  if cfg.schedule == "cosine":
    decay = optax.cosine_decay_schedule(cfg.learning_rate, decay_steps, alpha=cfg.final_lr_fraction)
  elif cfg.schedule == "linear":
    decay = optax.linear_schedule(cfg.learning_rate, final, decay_steps)
  else:
    decay = optax.constant_schedule(cfg.learning_rate)
  return optax.join_schedules([warmup, decay], [cfg.warmup_steps])


def decay_mask(params: dict) -> dict:
  """True for weight matrices of attention and MLP; False for norms, biases, embeddings."""

  def mask(path, leaf):
    names = [getattr(k, "key", getattr(k, "name", "")) for k in path]
    name = str(names[-1])
    return name.endswith("_kernel") and "embedding" not in names

  return jax.tree_util.tree_map_with_path(mask, params)


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
  parts = []
  if cfg.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  parts.append(optax.adamw(learning_rate_schedule(cfg), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                           weight_decay=cfg.weight_decay,
                           mask=None if cfg.decay_all else decay_mask))
  return optax.chain(*parts)


@jax.custom_vjp
def log_z_and_target_logit(logits_BxLxV: jnp.ndarray, targets_BxL: jnp.ndarray):
  """(log Z, target logit, max logit) per position, float32.

  The loss is log Z - target logit. Written with its own backward, d logits = g_z * softmax +
  g_t * onehot(target), computed in one pass that recomputes the exponentials, so neither the
  forward (a fused exp-and-sum) nor the backward materialises a second (B, L, V) array
  besides the gradient itself; autodiff of logsumexp + take_along_axis stores exp(logits)
  and scatters into a zero array.
  """
  max_BxL = jnp.max(logits_BxLxV, axis=-1)
  log_z_BxL = max_BxL + jnp.log(jnp.sum(jnp.exp(logits_BxLxV - max_BxL[..., None]), axis=-1))
  target_BxL = jnp.take_along_axis(logits_BxLxV, targets_BxL[..., None], axis=-1)[..., 0]
  return log_z_BxL, target_BxL, max_BxL


def _log_z_fwd(logits_BxLxV, targets_BxL):
  out = log_z_and_target_logit(logits_BxLxV, targets_BxL)
  return out, (logits_BxLxV, targets_BxL, out[0])


def _log_z_bwd(residuals, grads):
  logits_BxLxV, targets_BxL, log_z_BxL = residuals
  g_z_BxL, g_target_BxL, _ = grads  # the max is reported, not differentiated
  vocab = jax.lax.broadcasted_iota(jnp.int32, logits_BxLxV.shape, logits_BxLxV.ndim - 1)
  d_logits = (jnp.exp(logits_BxLxV - log_z_BxL[..., None]) * g_z_BxL[..., None]
              + jnp.where(vocab == targets_BxL[..., None], g_target_BxL[..., None], 0.0))
  return d_logits.astype(logits_BxLxV.dtype), None


log_z_and_target_logit.defvjp(_log_z_fwd, _log_z_bwd)


class Trainer:
  """Holds the model structure, optimizer and shardings; builds the jitted steps."""

  def __init__(self, model_cfg: ModelConfig, optim_cfg: OptimConfig, mesh, seed: int = 0,
               rules=sharding_lib.DEFAULT_RULES):
    self.model_cfg, self.optim_cfg, self.mesh, self.seed = model_cfg, optim_cfg, mesh, seed
    abstract = transformer.abstract(model_cfg)
    self.graphdef, _ = nnx.split(abstract, nnx.Param)
    self.optimizer = make_optimizer(optim_cfg)
    self.param_shardings = sharding_lib.param_shardings(abstract, mesh, rules)
    self.abstract_state = jax.eval_shape(self._init_state)
    self.state_shardings = self._state_shardings()
    self.batch_sharding = sharding_lib.batch_sharding(mesh)
    self.train_step = self._build_train_step()
    self.eval_step = self._build_eval_step()

  # -- state -------------------------------------------------------------------------------
  def _init_state(self) -> dict:
    model = transformer.create(self.model_cfg, seed=self.seed)
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    return {"params": params, "opt_state": self.optimizer.init(params),
            "step": jnp.zeros((), jnp.int32),
            "rng": jax.random.key_data(jax.random.key(self.seed + 1))}

  def _state_shardings(self) -> dict:
    flat_params = {tuple(k.key for k in path): s for path, s in
                   jax.tree_util.tree_flatten_with_path(self.param_shardings)[0]}
    replicated = sharding_lib.replicated(self.mesh)

    def find(path, leaf):
      keys = tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey))
      for start in range(len(keys)):
        sharding = flat_params.get(keys[start:])
        if sharding is not None and len(sharding.spec) <= len(leaf.shape):
          return sharding
      return replicated

    return jax.tree_util.tree_map_with_path(find, self.abstract_state)

  def init_state(self) -> dict:
    """Initialises the state directly into its shardings (never whole on one device)."""
    return jax.jit(self._init_state, out_shardings=self.state_shardings)()

  def model(self, params: dict) -> transformer.Transformer:
    return nnx.merge(self.graphdef, params)

  # -- loss --------------------------------------------------------------------------------
  def loss_sums(self, params: dict, batch: dict) -> tuple[jnp.ndarray, dict]:
    """Sum of masked token losses (nats, float32) and its parts."""
    model = self.model(params)
    logits_BxLxV = model(batch["inputs"], batch["positions"], batch["segment_ids"])
    log_z_BxL, target_logit_BxL, max_logit_BxL = log_z_and_target_logit(logits_BxLxV, batch["targets"])
    mask_BxL = batch["loss_mask"].astype(jnp.float32)
    token_loss_BxL = (log_z_BxL - target_logit_BxL) * mask_BxL
    loss_sum = token_loss_BxL.sum()
    z_sum = jnp.square(log_z_BxL * mask_BxL).sum()
    # Correct = the target has the highest logit (argmax without another pass over V; an
    # exact tie counts as correct).
    correct = ((target_logit_BxL >= max_logit_BxL) * mask_BxL).sum()
    return loss_sum, {"loss_sum": loss_sum, "z_sum": z_sum, "tokens": mask_BxL.sum(),
                      "bytes": (batch["target_bytes"] * batch["loss_mask"]).sum().astype(jnp.float32),
                      "correct": correct}

  def _build_train_step(self) -> Callable:
    cfg = self.optim_cfg
    accum = cfg.grad_accum_steps

    def objective(params, batch):
      loss_sum, parts = self.loss_sums(params, batch)
      return loss_sum + cfg.z_loss * parts["z_sum"], parts

    grad_fn = jax.grad(objective, has_aux=True)

    def train_step(state, batch):
      params = state["params"]
      if accum == 1:
        grads, parts = grad_fn(params, batch)
      else:
        micro = jax.tree.map(lambda x: x.reshape(accum, x.shape[0] // accum, *x.shape[1:]), batch)

        def one(carry, micro_batch):
          grads, parts = grad_fn(params, micro_batch)
          return jax.tree.map(jnp.add, carry, (grads, parts)), None

        zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(grad_fn, params,
                                                            jax.tree.map(lambda x: x[0], micro)))
        (grads, parts), _ = jax.lax.scan(one, zeros, micro)
      # Gradients of the summed loss -> gradients of the mean loss per target token.
      tokens = jnp.maximum(parts["tokens"], 1.0)
      grads = jax.tree.map(lambda g: g / tokens, grads)
      updates, opt_state = self.optimizer.update(grads, state["opt_state"], params)
      new_params = optax.apply_updates(params, updates)
      metrics = {
          "loss": parts["loss_sum"] / tokens,
          "z_loss": parts["z_sum"] / tokens,
          "accuracy": parts["correct"] / tokens,
          "bits_per_byte": parts["loss_sum"] / (math.log(2) * jnp.maximum(parts["bytes"], 1.0)),
          "tokens": parts["tokens"],
          "grad_norm": optax.tree.norm(grads),
          "param_norm": optax.tree.norm(params),
          "update_norm": optax.tree.norm(updates),
          "learning_rate": learning_rate_schedule(cfg)(state["step"]),
      }
      rng = jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"]))
      new_state = {"params": new_params, "opt_state": opt_state, "step": state["step"] + 1, "rng": rng}
      return new_state, metrics

    replicated = sharding_lib.replicated(self.mesh)
    return jax.jit(train_step, in_shardings=(self.state_shardings, self.batch_sharding),
                   out_shardings=(self.state_shardings, replicated), donate_argnums=(0,))

  def _build_eval_step(self) -> Callable:
    def eval_step(params, batch):
      _, parts = self.loss_sums(params, batch)
      return {k: parts[k] for k in ("loss_sum", "tokens", "bytes", "correct")}

    return jax.jit(eval_step, in_shardings=(self.state_shardings["params"], self.batch_sharding),
                   out_shardings=sharding_lib.replicated(self.mesh))


def summarize_eval(sums: dict) -> dict:
  """Loss per token, perplexity and bits per byte from summed eval parts."""
  tokens = max(float(sums["tokens"]), 1.0)
  loss = float(sums["loss_sum"]) / tokens
  return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
          "bits_per_byte": float(sums["loss_sum"]) / (math.log(2) * max(float(sums["bytes"]), 1.0)),
          "accuracy": float(sums["correct"]) / tokens, "tokens": int(sums["tokens"]),
          "bytes": int(sums["bytes"])}


def flops_per_step(cfg: ModelConfig, batch: int, seq_len: int) -> float:
  """Analytic training FLOPs: 6 x (non-embedding-lookup params) x tokens, plus attention.

  Matmul parameters: every kernel plus the output head (the input lookup is a gather, not a
  matmul). Attention scores and the weighted sum cost 2 x 2 x L x L x d_model per layer and
  sequence forward; causal attention needs only half of that, counted once (x 1/2); backward
  is twice the forward (x 3 in all).
  """
  d, f, h, k, dh = cfg.d_model, cfg.mlp_width, cfg.num_heads, cfg.kv_heads, cfg.d_head
  attention_params = d * h * dh + 2 * d * k * dh + h * dh * d
  mlp_params = (3 if cfg.mlp == "swiglu" else 2) * d * f
  matmul_params = cfg.num_layers * (attention_params + mlp_params) + d * cfg.vocab_size
  tokens = batch * seq_len
  dense = 6 * matmul_params * tokens
  attention = 3 * cfg.num_layers * batch * (2 * 2 * seq_len * seq_len * h * dh) / 2
  return float(dense + attention)

"""Train state, loss, optimizer, and the jit-compiled train and eval steps.

The state is a dict of pure pytrees {params, opt_state, step, rng}: params are the model's
`nnx.to_pure_dict`, so the same arrays go to optax, orbax and the sharding rules.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from llm_input.model import transformer
from llm_input.model.config import ModelConfig
from llm_input.model.layers import activation_layout, constrain
from llm_input.train import sharding as sharding_lib
from llm_input.train.optim import OptimConfig, learning_rate_schedule, make_optimizer


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def log_z_and_target_logit(logits_BxLxV: jnp.ndarray, targets_BxL: jnp.ndarray,
                           vocab_split: bool = True):
  """(log Z, target logit, max logit) per position, float32.

  The loss is log Z - target logit. Written with its own backward, d logits = g_z * softmax +
  g_t * onehot(target), computed in one pass that recomputes the exponentials, so neither the
  forward (a fused exp-and-sum) nor the backward materialises a second (B, L, V) array
  besides the gradient itself; autodiff of logsumexp + take_along_axis stores exp(logits)
  and scatters into a zero array.
  """
  max_BxL = jnp.max(logits_BxLxV, axis=-1)
  log_z_BxL = max_BxL + jnp.log(jnp.sum(jnp.exp(logits_BxLxV - max_BxL[..., None]), axis=-1))
  if vocab_split:
    # A masked sum rather than a gather: with the vocabulary split over devices, each sums
    # its own columns and only (B, L) numbers are reduced (a gather would collect the logits).
    vocab = jax.lax.broadcasted_iota(jnp.int32, logits_BxLxV.shape, logits_BxLxV.ndim - 1)
    target_BxL = jnp.sum(jnp.where(vocab == targets_BxL[..., None], logits_BxLxV, 0.0), axis=-1)
  else:
    # Whole rows on each device: a gather reads B x L numbers instead of a pass over B x L x V
    # (on a 2-core CPU, 8% of the tiny preset's step).
    target_BxL = jnp.take_along_axis(logits_BxLxV, targets_BxL[..., None], axis=-1)[..., 0]
  return log_z_BxL, target_BxL, max_BxL


def _log_z_fwd(logits_BxLxV, targets_BxL, vocab_split):
  out = log_z_and_target_logit(logits_BxLxV, targets_BxL, vocab_split)
  return out, (logits_BxLxV, targets_BxL, out[0])


def _log_z_bwd(vocab_split, residuals, grads):
  del vocab_split  # the one-hot term is fused into the same pass either way
  logits_BxLxV, targets_BxL, log_z_BxL = residuals
  g_z_BxL, g_target_BxL, _ = grads  # the max is reported, not differentiated
  vocab = jax.lax.broadcasted_iota(jnp.int32, logits_BxLxV.shape, logits_BxLxV.ndim - 1)
  d_logits = (jnp.exp(logits_BxLxV - log_z_BxL[..., None]) * g_z_BxL[..., None]
              + jnp.where(vocab == targets_BxL[..., None], g_target_BxL[..., None], 0.0))
  return constrain(d_logits.astype(logits_BxLxV.dtype), ("batch", "length", "vocab")), None


log_z_and_target_logit.defvjp(_log_z_fwd, _log_z_bwd)


def _head_loss_chunks(x_BxLxD, w_DxV, targets_BxL, mask_BxL, z_loss: float, chunk: int, grads: bool):
  """Sums over the batch (objective, loss, z, correct), `chunk` positions at a time; with
  `grads`, also d objective / d x and d objective / d w (float32 accumulation)."""
  batch, length, d = x_BxLxD.shape
  chunk = max(c for c in range(1, min(chunk, length) + 1) if length % c == 0)
  n = length // chunk
  split = lambda a: a.reshape(batch, n, chunk, *a.shape[2:]).swapaxes(0, 1)  # noqa: E731

  def body(carry, inputs):
    x_c, t_c, m_c = inputs
    x_2d = constrain(x_c.reshape(batch * chunk, d), ("batch", "act_embed"))
    logits = (x_2d @ w_DxV).astype(jnp.float32)  # (B * chunk, V): in cache, never all of them at once
    top = jnp.max(logits, axis=-1)
    exp = jnp.exp(logits - top[:, None])
    total = jnp.sum(exp, axis=-1)
    log_z = top + jnp.log(total)
    target_logit = jnp.take_along_axis(logits, t_c.reshape(-1, 1), axis=-1)[:, 0]
    mask = m_c.reshape(-1).astype(jnp.float32)
    loss, z = jnp.sum((log_z - target_logit) * mask), jnp.sum(jnp.square(log_z * mask))
    sums = jnp.stack([loss + z_loss * z, loss, z, jnp.sum((target_logit >= top) * mask)])
    if not grads:
      return carry + sums, None
    sums_acc, d_w = carry
    # d objective / d logits = mask * (softmax * (1 + 2 z_loss log Z) - onehot(target))
    scale = mask * (1.0 + 2.0 * z_loss * log_z) / total
    vocab = jax.lax.broadcasted_iota(jnp.int32, logits.shape, 1)
    d_logits = (exp * scale[:, None] - jnp.where(vocab == t_c.reshape(-1, 1), mask[:, None], 0.0))
    d_logits = d_logits.astype(x_2d.dtype)
    d_x = (d_logits @ w_DxV.T).reshape(batch, chunk, d)
    # x^T written out (B*chunk x D, in cache) before the matmul: XLA would fold the transpose
    # into the dot, whose transposed-operand form runs at about half the speed on XLA:CPU
    # (512 x 128 x 4096: 57-63 vs 110-135 GFLOP/s on 2 AVX2 cores; the head+loss's forward and
    # backward 131.8 -> 97.4 ms, experiments/tiny_step_speed/transposed_dots.py).
    x_t = jax.lax.optimization_barrier(x_2d.T)
    d_w = d_w + jnp.matmul(x_t, d_logits, preferred_element_type=jnp.float32)
    return (sums_acc + sums, d_w), d_x

  inputs = (split(x_BxLxD), split(targets_BxL), split(mask_BxL))
  if not grads:
    sums, _ = jax.lax.scan(body, jnp.zeros(4, jnp.float32), inputs)
    return sums, None
  (sums, d_w), d_x = jax.lax.scan(body, (jnp.zeros(4, jnp.float32), jnp.zeros(w_DxV.shape, jnp.float32)), inputs)
  return sums, (d_x.swapaxes(0, 1).reshape(x_BxLxD.shape), d_w)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def fused_head_loss(x_BxLxD, w_DxV, targets_BxL, mask_BxL, z_loss: float, chunk: int):
  """[objective, loss sum, z sum, correct] of the output head and the loss together, `chunk`
  positions at a time (`model.head_loss_chunk`): each chunk's logits are made, used and
  dropped while in cache, and under differentiation the same pass computes the gradients
  (objective = loss + z_loss * z; its cotangent scales them in the backward). The numbers
  equal `log_z_and_target_logit` over the whole (B, L, V) logits array."""
  return _head_loss_chunks(x_BxLxD, w_DxV, targets_BxL, mask_BxL, z_loss, chunk, grads=False)[0]


def _fused_fwd(x_BxLxD, w_DxV, targets_BxL, mask_BxL, z_loss, chunk):
  return _head_loss_chunks(x_BxLxD, w_DxV, targets_BxL, mask_BxL, z_loss, chunk, grads=True)


def _fused_bwd(z_loss, chunk, residuals, grads):
  d_x, d_w = residuals
  g = grads[0]  # only the objective is differentiated; the other sums are reported
  return (d_x * g.astype(d_x.dtype)), (d_w * g).astype(d_x.dtype), None, None


fused_head_loss.defvjp(_fused_fwd, _fused_bwd)


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
    self.batch_sharding = sharding_lib.batch_sharding(mesh, rules)
    self.data_parallel = sharding_lib.data_parallel_size(mesh, rules)
    self.activation_layout = sharding_lib.activation_layout(mesh, rules)
    # Whether the logits' vocabulary axis is split over devices (the loss then avoids a gather).
    self.vocab_split = sharding_lib.spec_for(
        (1, 1, model_cfg.vocab_size), ("batch", "length", "vocab"), mesh, dict(rules))[2] is not None
    # The chunked head + loss on one device only: on a mesh its output matrix (sharded over fsdp
    # or tensor) and the gradient of that matrix (reduced over the batch axes) would be gathered
    # and reduced inside the chunk loop, once per chunk (FSDP over 8: 5.7x the parameter bytes
    # per step instead of 2.5-3x); the (B, L, V) path's collectives happen once.
    self.fused_head_loss = model_cfg.head_loss_chunk > 0 and mesh.devices.size == 1
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
    """The objective (sum of masked token losses in nats, float32, plus the z-loss term) and
    its parts."""
    model = self.model(params)
    z_loss = self.optim_cfg.z_loss
    mask_BxL = batch["loss_mask"].astype(jnp.float32)
    parts = {"tokens": mask_BxL.sum(),
             "bytes": (batch["target_bytes"] * batch["loss_mask"]).sum().astype(jnp.float32)}
    if self.fused_head_loss:
      x_BxLxD = model(batch["inputs"], batch["positions"], batch["segment_ids"], features=True)
      with jax.named_scope("head_and_loss"):
        w_DxV = model.embedding.output_matrix(x_BxLxD.dtype)
        objective, loss_sum, z_sum, correct = fused_head_loss(
            x_BxLxD, w_DxV, batch["targets"], batch["loss_mask"], z_loss, self.model_cfg.head_loss_chunk)
      return objective, {**parts, "loss_sum": loss_sum, "z_sum": z_sum, "correct": correct}
    logits_BxLxV = model(batch["inputs"], batch["positions"], batch["segment_ids"])
    with jax.named_scope("loss"):
      log_z_BxL, target_logit_BxL, max_logit_BxL = log_z_and_target_logit(
          logits_BxLxV, batch["targets"], self.vocab_split)
    token_loss_BxL = (log_z_BxL - target_logit_BxL) * mask_BxL
    loss_sum = token_loss_BxL.sum()
    z_sum = jnp.square(log_z_BxL * mask_BxL).sum()
    # Correct = the target has the highest logit (argmax without another pass over V; an
    # exact tie counts as correct).
    correct = ((target_logit_BxL >= max_logit_BxL) * mask_BxL).sum()
    return loss_sum + z_loss * z_sum, {**parts, "loss_sum": loss_sum, "z_sum": z_sum, "correct": correct}

  def _with_layout(self, fn: Callable) -> Callable:
    """fn traced with the activation sharding constraints on (forward and backward)."""
    def traced(*args):
      with activation_layout(self.activation_layout):
        return fn(*args)
    return traced

  def _build_train_step(self) -> Callable:
    cfg = self.optim_cfg
    accum = cfg.grad_accum_steps

    grad_fn = jax.grad(self.loss_sums, has_aux=True)

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
      with jax.named_scope("optimizer"):
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
    return jax.jit(self._with_layout(train_step), in_shardings=(self.state_shardings, self.batch_sharding),
                   out_shardings=(self.state_shardings, replicated), donate_argnums=(0,))

  def _build_eval_step(self) -> Callable:
    def eval_step(params, batch):
      _, parts = self.loss_sums(params, batch)
      return {k: parts[k] for k in ("loss_sum", "tokens", "bytes", "correct")}

    return jax.jit(self._with_layout(eval_step), in_shardings=(self.state_shardings["params"], self.batch_sharding),
                   out_shardings=sharding_lib.replicated(self.mesh))


def summarize_eval(sums: dict) -> dict:
  """Loss per token, perplexity and bits per byte from summed eval parts."""
  tokens = max(float(sums["tokens"]), 1.0)
  loss = float(sums["loss_sum"]) / tokens
  try:
    perplexity = math.exp(loss)
  except OverflowError:  # a diverged model (loss above ~709 nats)
    perplexity = math.inf
  return {"loss": loss, "perplexity": perplexity,
          "bits_per_byte": float(sums["loss_sum"]) / (math.log(2) * max(float(sums["bytes"]), 1.0)),
          "accuracy": float(sums["correct"]) / tokens, "tokens": int(sums["tokens"]),
          "bytes": int(sums["bytes"])}

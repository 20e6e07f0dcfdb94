"""Training: mesh and sharding rules, state and step, checkpoints, the loop, metrics."""

"""Errors for bad input: each message names the problem and the fix; the CLI prints it alone."""


class UserError(ValueError):
  """Base of every error caused by a config, a file or a folder the user gave."""

  label = "error"


class ConfigError(UserError):
  label = "config error"


class TokenizerError(UserError):
  label = "tokenizer error"


class DataError(UserError):
  label = "data error"


class CheckpointError(UserError):
  label = "checkpoint error"


class DiskFullError(UserError):
  label = "disk full"

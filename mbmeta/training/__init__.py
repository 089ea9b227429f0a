"""mbmeta.training."""

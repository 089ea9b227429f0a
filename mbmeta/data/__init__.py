"""mbmeta.data."""

"""Compute engines that build the 20-minute summary tier outside the local store (Spark)."""

"""Thin adapters that switch LRD on inside inference stacks people already run."""

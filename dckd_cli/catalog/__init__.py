"""Facts the whole package reads, written once: methods, architectures, tasks.

Leaf modules (they import nothing from dckd_cli and nothing heavy), so settings, models,
methods and the CLI's help texts can all read them.
"""

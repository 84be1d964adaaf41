"""Edges that show the conversation and ask for decisions: a notebook widget, a terminal.

``kernel`` tells which one fits the running cell and makes ``%%agent`` cells awaitable;
``widget`` is the only module that imports ipywidgets; ``terminal`` uses ``input()``.
"""

"""The effectiveness suite: real tasks, a checker each, two loops side by side (run.py)."""

"""Running a step in the live kernel: the executor, its output capture, and the IPython adapter.

* :mod:`.executor`: :class:`~.executor.IPythonExecutor`, the
  :class:`~agent_magic.conversation.Executor` that runs Python through ``run_cell`` and
  ``sh`` in its own process group, with a step time limit;
* :mod:`.capture`: :class:`~.capture.StepCapture`, the one output capture (what a step
  printed, displayed and returned, as a bounded digest and as nbformat outputs);
* :mod:`.fold`: a failed step's traceback as a display that folds;
* :mod:`.signals`: the step's SIGINT handling (the user's interrupt, the time limit);
* :mod:`.ipython`: the only module that touches private IPython/ipykernel internals.

Widgets, the ``%%agent`` cell rewriter and frontend detection live in :mod:`agent_magic.ui`.
"""

"""Training one run: the trainer, its step, epoch loop, evaluation, optimizer and schedule,
weight average, checkpoints, and the run directory's files (rundir.py, which imports no torch)."""
